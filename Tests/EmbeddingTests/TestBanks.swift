import Foundation
@testable import Embedding

/// The store backends the store tests run on: SQLite in a temporary file, and PostgreSQL in a database of its own
/// on the cluster `scripts/test` starts (`OMNIEMBED_TEST_POSTGRES_URL` and `_PASSWORD`; without them the
/// PostgreSQL cases fail, saying so).
enum TestBank: String, CaseIterable, CustomStringConvertible, Sendable {
    case sqlite, postgres

    var description: String { rawValue }

    struct MissingCluster: Error, CustomStringConvertible {
        var description: String { "OMNIEMBED_TEST_POSTGRES_URL is not set: run through scripts/test, or source scripts/check/postgres.sh" }
    }

    /// A new, empty bank of this kind; the same `Backend` opens it again.
    func fresh() throws -> ItemStore.Backend {
        switch self {
        case .sqlite:
            let path = FileManager.default.temporaryDirectory
                .appendingPathComponent("omniembed-store-\(UUID().uuidString)/items.sqlite").path
            return .sqlite(path: path, durability: .full)
        case .postgres:
            let environment = ProcessInfo.processInfo.environment
            guard let url = environment["OMNIEMBED_TEST_POSTGRES_URL"] else { throw MissingCluster() }
            let settings = Self.postgres(url: url, password: environment["OMNIEMBED_TEST_POSTGRES_PASSWORD"])
            let name = "test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
            let connection = try PostgresConnection(parameters: [("dbname", settings.url), ("password", settings.password ?? "")])
            try connection.execute("CREATE DATABASE \(name)")
            let server = url[..<url.lastIndex(of: "/")!]
            return .postgres(Self.postgres(url: "\(server)/\(name)", password: settings.password))
        }
    }

    static func postgres(url: String, password: String?) -> ItemStore.PostgresSettings {
        ItemStore.PostgresSettings(url: url, password: password, poolSize: 4, statementTimeout: .seconds(10),
                                   connectTimeout: .seconds(5))
    }
}
