import Embedding
import Foundation
import HTTP
import Locking
import Logging
import Testing
@testable import Service
import TestSupport

/// The service's routes called in process through `RouterResponder`, without a socket: what a route answers, with
/// the real pipeline behind it. What is about the wire stays in the live tests.
@Suite struct RouteTests {
    /// One router over one pipeline for the suite (loading the models takes seconds).
    static let routes = Task { () throws -> (InProcessClient, Readiness) in
        let configuration = ServiceLiveTests().testConfiguration()
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let metrics = ServiceMetrics()
        let pipeline = try configuration.makePipeline(logger: logger, metricsFactory: metrics.factory)
        let reloader = CodebookReloader(path: configuration.codebook.path, pipeline: pipeline, logger: logger,
                                        metricsFactory: metrics.factory)
        let readiness = Readiness()
        let router = Routes.router(readiness: readiness, metrics: metrics, pipeline: pipeline, reloader: reloader,
                                   configuration: configuration)
        let responder = RouterResponder(router: router, logger: logger, metricsFactory: metrics.factory,
                                        compression: configuration.compression)
        let keys = try APIKeys(parsing: Self.keys.map(\.line).joined(separator: "\n"), scopes: Routes.Scope.all)
        var secured = configuration
        secured.auth.protectMetrics = true
        let securedRouter = Routes.router(readiness: readiness, metrics: metrics, pipeline: pipeline, reloader: reloader,
                                          configuration: secured)
        Self.secured.withLock {
            $0 = InProcessClient(RouterResponder(router: securedRouter, logger: logger, metricsFactory: metrics.factory,
                                                 authenticator: Authenticator(keys)))
        }
        return (InProcessClient(responder), readiness)
    }

    /// One key per scope, named after it.
    static let keys = Routes.Scope.all.sorted().map { try! APIKeys.generate(name: $0, scopes: [$0], allowed: Routes.Scope.all) }
    /// The same routes behind those keys (`auth.protectMetrics` on).
    static let secured = Locked<InProcessClient?>(nil)

    @Test func everyRouteNeedsItsScope() async throws {
        _ = try await Self.routes.value
        let client = try #require(Self.secured.withLock { $0 })
        let routes: [(HTTPMethod, String, String?, String)] = [
            (.post, "/embed", #"{"items": [{"id": "a", "text": "x"}], "store": false}"#, "embed"),
            (.post, "/v1/embeddings", #"{"input": "x"}"#, "embed"), (.post, "/tokenize", #"{"texts": ["x"]}"#, "embed"),
            (.post, "/match", #"{"user": {}, "candidates": []}"#, "embed"),
            (.post, "/user_embedding", #"{"user": {"history": []}}"#, "embed"),
            (.get, "/items/a", nil, "read"), (.post, "/items/batch_get", #"{"ids": ["a"]}"#, "read"),
            (.delete, "/items/a", nil, "write"), (.post, "/admin/reload", "{}", "admin"),
            (.get, "/metrics", nil, "admin"),
        ]
        for (method, path, body, scope) in routes {
            #expect(await client.execute(method, path, body: body).status.code == 401, "\(path) without a key")
            #expect(await client.execute(method, path, headers: [("Authorization", "Bearer oe_wrong")], body: body)
                .status.code == 401, "\(path) with a wrong key")
            for (name, (key, _)) in zip(Routes.Scope.all.sorted(), Self.keys) {
                let status = await client.execute(method, path, headers: [("Authorization", "Bearer \(key)")], body: body)
                    .status.code
                if name == scope {
                    #expect(status != 401 && status != 403, "\(path) with the \(name) key: \(status)")
                } else {
                    #expect(status == 403, "\(path) with the \(name) key: \(status)")
                }
            }
        }
        #expect(await client.execute(.get, "/healthz").status.code == 200)
        #expect(await client.execute(.get, "/openapi.json").status.code == 200)
    }

    func json(_ response: HTTPResponse) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
    }

    func errorCode(_ response: HTTPResponse) throws -> String? {
        (try json(response)["error"] as? [String: Any])?["code"] as? String
    }

    @Test func tokenizeAnswersWhatTheTextTowerReads() async throws {
        let (client, _) = try await Self.routes.value
        let response = await client.execute(.post, "/tokenize", body: #"{"texts": ["Hello, world"]}"#)
        #expect(response.status.code == 200)
        let data = try #require(try json(response)["data"] as? [[String: Any]])
        #expect(data.first?["tokens"] as? [String] == ["[CLS]", "hello", ",", "world", "[SEP]"])
        #expect(data.first?["truncated"] as? Bool == false)
    }

    @Test func matchComputesFeaturesOfInlineVectorsAndRefusesBadRequests() async throws {
        let (client, _) = try await Self.routes.value
        let unit = (0..<384).map { $0 == 0 ? "1" : "0" }.joined(separator: ",")
        let other = (0..<384).map { $0 == 1 ? "1" : "0" }.joined(separator: ",")
        let body = """
            {"user": {"history": [{"id": "h", "embedding": [\(unit)]}]},
             "candidates": [{"id": "same", "embedding": [\(unit)]}, {"id": "orthogonal", "embedding": [\(other)]}],
             "features": ["user_cos", "max_cos"]}
            """
        let response = await client.execute(.post, "/match", body: body)
        #expect(response.status.code == 200)
        let data = try #require(try json(response)["data"] as? [[String: Any]])
        #expect(data.map { $0["id"] as? String } == ["same", "orthogonal"])
        #expect(abs((data[0]["user_cos"] as? Double ?? 0) - 1) < 1e-6)
        #expect(abs(data[1]["max_cos"] as? Double ?? 1) < 1e-6)

        let empty = await client.execute(.post, "/match", body: #"{"user": {"history": ["a"]}, "candidates": []}"#)
        #expect(empty.status.code == 422)
        #expect(try errorCode(empty) == "no_candidates")
        let short = await client.execute(.post, "/match", body: #"{"user": {}, "candidates": [{"id": "c", "embedding": [1, 0]}]}"#)
        #expect(short.status.code == 422)
        #expect(try errorCode(short) == "invalid_embedding")
        let nameless = await client.execute(.post, "/match", body: #"{"user": {}, "candidates": [{"embedding": [1, 0]}]}"#)
        #expect(nameless.status.code == 400)
        #expect(try errorCode(nameless) == "invalid_json")
    }

    @Test func embedRefusesAnEmptyRequestAndUnknownRoutesAre404() async throws {
        let (client, _) = try await Self.routes.value
        let empty = await client.execute(.post, "/embed", body: #"{"items": []}"#)
        #expect(empty.status.code == 422)
        #expect(try errorCode(empty) == "no_items")
        let unknown = await client.execute(.get, "/nowhere")
        #expect(unknown.status.code == 404)
        let wrongMethod = await client.execute(.get, "/embed")
        #expect(wrongMethod.status.code == 405)
    }

    @Test func readinessFollowsTheService() async throws {
        let (client, readiness) = try await Self.routes.value
        #expect(await client.execute(.get, "/healthz").status.code == 200)
        #expect(await client.execute(.get, "/readyz").status.code == 503)
        readiness.markReady()
        #expect(await client.execute(.get, "/readyz").status.code == 200)
    }
}
