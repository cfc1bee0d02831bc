import Embedding
import HTTP

/// The bodies `/match` and `/user_embedding` take.
extension MatchRoute {
    /// A history entry or candidate as the request gives it: a stored id, `{"id", "embedding"}` (history entries
    /// may leave out the id) or, for candidates, an item to embed (`{"id", "text"/"fields"/...}`).
    typealias Entry = VectorSource<ItemPayload>

    struct User: Decodable {
        var history: [Entry]?
        var historyEmbeddings: [[Float]]?
        var weights: [Float]?

        enum CodingKeys: String, CodingKey {
            case history, historyEmbeddings = "history_embeddings", weights
        }
    }

    struct Request: Decodable {
        var user: User
        var candidates: [Entry]?
        var features: [String]?
        var topK: Int?
        var simTop: Int?
        var recent: Int?
        var dimensions: Int?
        var codebookVersion: String?
        var timeoutMs: Int?
        var encodingFormat: String?

        enum CodingKeys: String, CodingKey {
            case user, candidates, features, topK = "top_k", simTop = "sim_top", recent, dimensions
            case codebookVersion = "codebook_version", timeoutMs = "timeout_ms", encodingFormat = "encoding_format"
        }

        /// A body with history and candidates by id only (the common shape: thousands of ids, where `JSONDecoder`
        /// takes a microsecond each) read straight from the bytes; `nil` for anything else (inline vectors or
        /// items, nulls, unknown or repeated fields, errors), which `JSONDecoder` then reads.
        @Sendable static func idsOnly(_ bytes: [UInt8]) -> Request? {
            JSONReader.read(bytes) { reader in
                var request = Request(user: User())
                func set<T>(_ field: WritableKeyPath<Request, T?>, _ value: T?) -> Bool {
                    request[keyPath: field] = value
                    return value != nil
                }
                let read = reader.object { reader, key in
                    switch CodingKeys(rawValue: key) {
                    case .user:
                        return reader.object { reader, key in
                            switch User.CodingKeys(rawValue: key) {
                            case .history: set(\.user.history, reader.array { $0.string() }?.map { .id($0) })
                            case .weights: set(\.user.weights, reader.array { $0.float() })
                            default: false
                            }
                        } && request.user.history != nil
                    case .candidates: return set(\.candidates, reader.array { $0.string() }?.map { .id($0) })
                    case .features: return set(\.features, reader.array { $0.string() })
                    case .topK: return set(\.topK, reader.int())
                    case .simTop: return set(\.simTop, reader.int())
                    case .recent: return set(\.recent, reader.int())
                    case .dimensions: return set(\.dimensions, reader.int())
                    case .codebookVersion: return set(\.codebookVersion, reader.string())
                    case .timeoutMs: return set(\.timeoutMs, reader.int())
                    case .encodingFormat: return set(\.encodingFormat, reader.string())
                    case nil: return false
                    }
                }
                return read ? request : nil
            }
        }
    }
}

extension VectorSource: Decodable where Item == ItemPayload {
    private enum Keys: String, CodingKey { case id, embedding }

    public init(from decoder: any Decoder) throws {
        if let id = try? decoder.singleValueContainer().decode(String.self) {
            self = .id(id)
            return
        }
        let container = try decoder.container(keyedBy: Keys.self)
        if container.contains(.embedding) {
            self = .vector(id: try container.decodeIfPresent(String.self, forKey: .id),
                           try container.decode([Float].self, forKey: .embedding))
        } else {
            self = .item(try ItemPayload(from: decoder))
        }
    }
}
