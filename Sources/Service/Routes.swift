import Embedding
import HTTP

/// The service's HTTP API.
enum Routes {
    /// The API-key scopes (`auth.keysFile`): what each route needs.
    enum Scope {
        static let embed = "embed", read = "read", write = "write", admin = "admin"
        static let all: Set<String> = [embed, read, write, admin]
    }

    /// The routes of the API besides the probes: while the towers load, each answers 503 `starting`.
    static let apiRoutes: [(HTTPMethod, String)] = [
        (.post, "/embed"), (.post, "/v1/embeddings"), (.post, "/match"), (.post, "/user_embedding"),
        (.post, "/admin/reload"), (.get, "/items/{id}"), (.delete, "/items/{id}"), (.post, "/items/batch_get"),
        (.post, "/tokenize"),
    ]

    /// What is served from the moment the port is bound: the probes and metrics, and 503 for the rest.
    static func starting(readiness: Readiness, metrics: ServiceMetrics, protectMetrics: Bool = false) -> Router {
        var router = Router()
        probes(&router, readiness: readiness, metrics: metrics, protectMetrics: protectMetrics)
        for (method, pattern) in apiRoutes {
            router.add(method, pattern) { _, _ in
                throw HTTPError(.serviceUnavailable, code: "starting", message: "the service is still loading",
                                headers: HTTPHeaders([("Retry-After", "1")]))
            }
        }
        return router
    }

    /// `reloadSecurity`: reads the certificate and keys files again (on `POST /admin/reload`, as on SIGHUP).
    static func router(readiness: Readiness, metrics: ServiceMetrics, pipeline: EmbeddingPipeline,
                       reloader: CodebookReloader, configuration: ServiceConfiguration,
                       reloadSecurity: @escaping @Sendable () -> Void = {},
                       authenticator: Authenticator? = nil) -> Router {
        var router = Router()
        let limits = configuration.limits

        let embed = EmbedRoute(pipeline: pipeline, limits: limits, settings: configuration.embedding,
                               rotate: configuration.codebook.rotateEmbeddings)
        router.post("/embed", scope: Scope.embed) { request, context in
            try await embed.handle(request, quota: ItemQuota(authenticator: authenticator, keyName: context.keyName))
        }
        let openAI = OpenAIEmbeddingsRoute(embed: embed)
        router.post("/v1/embeddings", scope: Scope.embed) { request, context in
            try await openAI.handle(request, quota: ItemQuota(authenticator: authenticator, keyName: context.keyName))
        }

        let matcher = Matcher(pipeline: pipeline, rotate: configuration.codebook.rotateEmbeddings,
                              maxIdBytes: limits.maxIdBytes, precision: configuration.match.precision)
        let match = MatchRoute(matcher: matcher, embed: embed, limits: configuration.match,
                               stages: RouteStages(label: "omniembed_match_seconds", names: ["decode", "resolve", "compute", "encode"],
                                                   factory: metrics.factory))
        router.post("/match", scope: Scope.embed) { request, _ in try await match.match(request) }
        router.post("/user_embedding", scope: Scope.embed) { request, _ in try await match.userEmbedding(request) }

        router.post("/admin/reload", scope: Scope.admin) { _, context in
            context.logger.notice("audit: reload", metadata: ["key": "\(context.keyName ?? "-")"])
            reloadSecurity()
            return try reloader.reload()
        }

        let items = ItemsRoute(store: pipeline.store, codebooks: pipeline.codebooks,
                               rotate: configuration.codebook.rotateEmbeddings, maxIdBytes: limits.maxIdBytes)
        router.get("/items/{id}", scope: Scope.read) { _, context in try items.get(context) }
        let batchGet = BatchGetRoute(matcher: matcher, dimensions: embed.dimensions, maxIDs: limits.maxItems,
                                     stages: RouteStages(label: "omniembed_batch_get_seconds", names: ["decode", "fetch", "encode"],
                                                         factory: metrics.factory))
        router.post("/items/batch_get", scope: Scope.read) { request, _ in try batchGet.handle(request) }
        router.delete("/items/{id}", scope: Scope.write) { _, context in try items.delete(context) }

        let tokenize = TokenizeRoute(pipeline: pipeline, limits: limits)
        router.post("/tokenize", scope: Scope.embed) { request, _ in try tokenize.handle(request) }

        probes(&router, readiness: readiness, metrics: metrics, protectMetrics: configuration.auth.protectMetrics)
        return router
    }

    /// `/healthz`, `/readyz`, `/metrics` and `/openapi.json`.
    private static func probes(_ router: inout Router, readiness: Readiness, metrics: ServiceMetrics, protectMetrics: Bool) {
        // Probes are polled constantly: their bodies are constant bytes, not encoded per request.
        let ok = HTTPResponse(status: .ok, headers: HTTPHeaders([("Content-Type", "application/json")]),
                              body: Array(#"{"status":"ok"}"#.utf8))
        let ready = HTTPResponse(status: .ok, headers: HTTPHeaders([("Content-Type", "application/json")]),
                                 body: Array(#"{"status":"ready"}"#.utf8))

        router.get("/healthz", immediate: { _, _ in ok })

        router.get("/readyz", immediate: { _, _ in
            switch readiness.state {
            case .ready:
                if let reason = readiness.unavailableDependency {
                    throw HTTPError(.serviceUnavailable, code: "store_unavailable", message: reason,
                                    headers: HTTPHeaders([("Retry-After", "1")]))
                }
                return ready
            case .starting:
                throw HTTPError(.serviceUnavailable, code: "starting", message: "the service is still loading",
                                headers: HTTPHeaders([("Retry-After", "1")]))
            case .draining:
                throw HTTPError(.serviceUnavailable, code: "draining", message: "the service is shutting down")
            }
        })

        // The API described (OpenAPI 3.1): Sources/Service/Resources/openapi.json, embedded at build time.
        let openAPI = HTTPResponse(status: .ok, headers: HTTPHeaders([("Content-Type", "application/json")]),
                                   body: PackageResources.openapi_json)
        router.get("/openapi.json", immediate: { _, _ in openAPI })

        router.get("/metrics", scope: protectMetrics ? Scope.admin : nil, immediate: { _, _ in
            HTTPResponse(status: .ok,
                         headers: HTTPHeaders([("Content-Type", "text/plain; version=0.0.4; charset=utf-8")]),
                         body: metrics.exposition())
        })
    }
}
