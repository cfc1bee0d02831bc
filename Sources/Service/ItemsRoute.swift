import Embedding
import Foundation
import HTTP

/// `GET /items/{id}` (what the store holds for an item) and `DELETE /items/{id}`.
struct ItemsRoute: Sendable {
    let store: ItemStore?

    struct Response: Encodable {
        struct Modalities: Encodable {
            var text: [Float]?
            var image: [Float]?
            var audio: [Float]?
        }
        struct Model: Encodable {
            var id: String
            var revision: String
        }
        var id: String
        var contentHash: String
        var model: Model
        var embedding: [Float]
        var modalities: Modalities
        var modalitiesUsed: [String]
        var semanticID: [Int]?
        var createdAt: String
        var updatedAt: String

        enum CodingKeys: String, CodingKey {
            case id, contentHash = "content_hash", model, embedding, modalities, modalitiesUsed = "modalities_used"
            case semanticID = "semantic_id", createdAt = "created_at", updatedAt = "updated_at"
        }
    }

    private func enabledStore() throws(HTTPError) -> ItemStore {
        guard let store else {
            throw HTTPError(.notFound, code: "store_disabled", message: "the item store is disabled (store.enabled)")
        }
        return store
    }

    private func id(_ context: RequestContext) throws(HTTPError) -> String {
        guard let id = context.parameters["id"], !id.isEmpty else {
            throw HTTPError(.badRequest, code: "invalid_id", message: "missing item id")
        }
        return id
    }

    func get(_ context: RequestContext) throws -> HTTPResponse {
        let store = try enabledStore()
        let id = try id(context)
        let record: ItemStore.Record?
        do { record = try store.record(id) } catch { throw HTTPError(error) }
        guard let record else { throw HTTPError(.notFound, code: "item_not_found", message: "no item '\(id)' in the store") }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        func date(_ seconds: Double) -> String { formatter.string(from: Date(timeIntervalSince1970: seconds)) }
        return .json(Response(
            id: record.id, contentHash: record.contentHash, model: Response.Model(id: record.modelID, revision: record.revision),
            embedding: record.embedding,
            modalities: Response.Modalities(text: record.modalities.text, image: record.modalities.image,
                                            audio: record.modalities.audio),
            modalitiesUsed: record.modalities.present.map(\.rawValue), semanticID: record.semanticID,
            createdAt: date(record.createdAt), updatedAt: date(record.updatedAt)))
    }

    func delete(_ context: RequestContext) throws -> HTTPResponse {
        let store = try enabledStore()
        let id = try id(context)
        let deleted: Bool
        do { deleted = try store.delete(id) } catch { throw HTTPError(error) }
        guard deleted else { throw HTTPError(.notFound, code: "item_not_found", message: "no item '\(id)' in the store") }
        return HTTPResponse(status: .noContent)
    }
}
