/// Why a store backend could not do what it was asked.
enum StoreError: Error, CustomStringConvertible {
    /// The database cannot be reached, or is shutting down: retrying later may succeed.
    case unavailable(String)
    /// The database refused the statement, or the data is not what the schema says.
    case failed(String)

    var description: String {
        switch self {
        case .unavailable(let message), .failed(let message): message
        }
    }
}
