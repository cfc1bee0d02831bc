import Logging
import CoreMetrics
import Testing
@testable import HTTP
import TestSupport

/// Scoped routes through `RouterResponder` with an `Authenticator`, called in process.
@Suite struct AuthenticatorTests {
    static let scopes: Set<String> = ["embed", "read", "write", "admin"]

    func client(keys: String, authenticator: Authenticator? = nil) throws -> (InProcessClient, Authenticator) {
        var router = Router()
        router.post("/embed", scope: "embed") { _, context in .text("embedded for \(context.keyName ?? "-")") }
        router.get("/items/{id}", scope: "read") { _, _ in .text("item") }
        router.get("/healthz", immediate: { _, _ in .text("ok") })
        router.get("/metrics", scope: "admin", immediate: { _, _ in .text("metrics") })
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let authenticator = try authenticator ?? Authenticator(APIKeys(parsing: keys, scopes: Self.scopes))
        let responder = RouterResponder(router: router, logger: logger, metricsFactory: NOOPMetricsHandler.instance,
                                        authenticator: authenticator)
        return (InProcessClient(responder), authenticator)
    }

    @Test func everyScopeBoundary() async throws {
        let embedder = try APIKeys.generate(name: "embedder", scopes: ["embed"], allowed: APIKeysTests.scopes)
        let reader = try APIKeys.generate(name: "reader", scopes: ["read", "embed"], allowed: APIKeysTests.scopes)
        let (client, _) = try client(keys: embedder.line + "\n" + reader.line)
        func status(_ method: HTTPMethod, _ path: String, key: String?) async -> (Int, String) {
            let headers = key.map { [("Authorization", "Bearer \($0)")] } ?? []
            let response = await client.execute(method, path, headers: headers, body: method == .post ? "{}" : nil)
            return (response.status.code, String(decoding: response.body, as: UTF8.self))
        }
        let none = await client.execute(.post, "/embed", body: "{}")
        #expect(none.status.code == 401 && none.headers["WWW-Authenticate"] == "Bearer")
        #expect(await status(.post, "/embed", key: "oe_wrong").0 == 401)
        #expect(await status(.post, "/embed", key: embedder.key) == (200, "embedded for embedder"))
        #expect(await status(.post, "/embed", key: reader.key) == (200, "embedded for reader"))
        let forbidden = await status(.get, "/items/1", key: embedder.key)
        #expect(forbidden.0 == 403 && forbidden.1.contains("'read'"))
        #expect(await status(.get, "/items/1", key: reader.key).0 == 200)
        #expect(await status(.get, "/metrics", key: reader.key).0 == 403)
        #expect(await status(.get, "/metrics", key: nil).0 == 401)
        #expect(await status(.get, "/healthz", key: nil).0 == 200)
    }

    @Test func replacedKeysTakeEffectAtOnce() async throws {
        let old = try APIKeys.generate(name: "old", scopes: ["embed"], allowed: APIKeysTests.scopes)
        let new = try APIKeys.generate(name: "new", scopes: ["embed"], allowed: APIKeysTests.scopes)
        let (client, authenticator) = try client(keys: old.line)
        let headers = { (key: String) in [("Authorization", "Bearer \(key)")] }
        #expect(await client.execute(.post, "/embed", headers: headers(old.key), body: "{}").status.code == 200)
        authenticator.replace(try APIKeys(parsing: new.line, scopes: Self.scopes))
        #expect(await client.execute(.post, "/embed", headers: headers(old.key), body: "{}").status.code == 401)
        #expect(await client.execute(.post, "/embed", headers: headers(new.key), body: "{}").status.code == 200)
    }

    @Test func aKeyOverItsRequestRateGets429WithRetryAfter() async throws {
        let limited = try APIKeys.generate(name: "limited", scopes: ["embed"], allowed: APIKeysTests.scopes)
        let other = try APIKeys.generate(name: "other", scopes: ["embed"], allowed: APIKeysTests.scopes)
        let keys = try APIKeys(parsing: limited.line + "\n" + other.line, scopes: Self.scopes)
        let (client, _) = try client(keys: "", authenticator: Authenticator(keys, requestsPerSecond: 0.01))
        let call = { (key: String) in
            await client.execute(.post, "/embed", headers: [("Authorization", "Bearer \(key)")], body: "{}")
        }
        #expect(await call(limited.key).status.code == 200)
        let refused = await call(limited.key)
        #expect(refused.status.code == 429 && refused.headers["Retry-After"] == "100")
        #expect(await call(other.key).status.code == 200)  // each key has its own bucket
    }

    @Test func itemsAreCountedPerKey() throws {
        let authenticator = Authenticator(try APIKeys(parsing: "", scopes: Self.scopes), itemsPerSecond: 10)
        let start = MonotonicInstant(nanoseconds: 5_000_000_000)
        try authenticator.admitItems(8, keyName: "a", now: start)
        #expect(throws: HTTPError.self) { try authenticator.admitItems(8, keyName: "a", now: start) }
        try authenticator.admitItems(8, keyName: "b", now: start)
        try authenticator.admitItems(8, keyName: "a", now: start + .milliseconds(700))
        try authenticator.admitItems(1000, keyName: "c", now: start)  // more than a second's worth: when full
        try authenticator.admitItems(1000, keyName: nil, now: start)  // no key, no quota
    }

    @Test func withoutAnAuthenticatorEveryRouteIsOpen() async throws {
        var router = Router()
        router.post("/embed", scope: "embed") { _, _ in .text("open") }
        let responder = RouterResponder(router: router, logger: Logger(label: "test"), metricsFactory: NOOPMetricsHandler.instance)
        #expect(await InProcessClient(responder).execute(.post, "/embed", body: "{}").status.code == 200)
    }
}
