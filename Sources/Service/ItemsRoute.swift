import Embedding
import Foundation
import HTTP

/// `GET /items/{id}` (what the store holds for an item) and `DELETE /items/{id}`.
/// The embedding is served as `/embed` serves it (in the codebook's rotated space when one is loaded and
/// `codebook.rotateEmbeddings`); the per-modality vectors as the towers give them.
struct ItemsRoute: Sendable {
    let store: ItemStore?
    let codebooks: CodebookSlot
    let rotate: Bool
    let maxIdBytes: Int

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
        /// The codebook of `semantic_id` and, when rotated, of `embedding`.
        var codebookVersion: String?
        var createdAt: String
        var updatedAt: String

        enum CodingKeys: String, CodingKey {
            case id, contentHash = "content_hash", model, embedding, modalities, modalitiesUsed = "modalities_used"
            case semanticID = "semantic_id", codebookVersion = "codebook_version", createdAt = "created_at", updatedAt = "updated_at"
        }
    }

    private func enabledStore() throws(HTTPError) -> ItemStore {
        guard let store else {
            throw HTTPError(.notFound, code: "store_disabled", message: "the item store is disabled (store.enabled)")
        }
        return store
    }

    /// The percent-decoded id, held to the rule ids meet everywhere (`%00` would otherwise name a shorter id).
    private func id(_ context: RequestContext) throws(HTTPError) -> String {
        guard let id = context.parameters["id"] else {
            throw HTTPError(.badRequest, code: "invalid_id", message: "missing item id")
        }
        do throws(EmbeddingError) {
            try ItemID.check(id, field: "/items/{id}", maxBytes: maxIdBytes)
        } catch {
            throw HTTPError(error)
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
        // A vector of another size (another model) has no place in this codebook's space.
        let codebook = codebooks.current.flatMap { $0.dimensions == record.embedding.count ? $0 : nil }
        let current = codebook != nil && record.codebookVersion == codebook?.version
        var (embedding, modalities) = (record.embedding, record.modalities)
        if rotate, let codebook {
            // Every vector handed out in the served space: the fused one and each modality's.
            let present = modalities.present
            let rotated = codebook.rotate(embedding + present.flatMap { modalities[$0]! }, count: 1 + present.count)
            let d = codebook.dimensions
            embedding = Array(rotated[0..<d])
            for (offset, modality) in present.enumerated() {
                modalities[modality] = Array(rotated[(offset + 1) * d..<(offset + 2) * d])
            }
        }
        return .json(Response(
            id: record.id, contentHash: record.contentHash, model: Response.Model(id: record.modelID, revision: record.revision),
            embedding: embedding,
            modalities: Response.Modalities(text: modalities.text, image: modalities.image, audio: modalities.audio),
            modalitiesUsed: record.modalities.present.map(\.rawValue), semanticID: current ? record.semanticID : codebook?.codes(record.embedding, count: 1).first,
            codebookVersion: codebook?.version, createdAt: date(record.createdAt), updatedAt: date(record.updatedAt)))
    }

    func delete(_ context: RequestContext) throws -> HTTPResponse {
        let store = try enabledStore()
        let id = try id(context)
        let deleted: Bool
        do { deleted = try store.delete(id) } catch { throw HTTPError(error) }
        // The audit trail: who deleted what, or tried to (the key's name, never the key).
        context.logger.notice("audit: delete", metadata: ["id": "\(id)", "key": "\(context.keyName ?? "-")",
                                                          "result": deleted ? "deleted" : "not_found"])
        guard deleted else { throw HTTPError(.notFound, code: "item_not_found", message: "no item '\(id)' in the store") }
        return HTTPResponse(status: .noContent)
    }
}
