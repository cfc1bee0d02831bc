import Embedding
import HTTP

/// The service's HTTP API.
enum Routes {
    /// The routes of the API besides the probes: while the towers load, each answers 503 `starting`.
    static let apiRoutes: [(HTTPMethod, String)] = [
        (.post, "/embed"), (.post, "/v1/embeddings"), (.post, "/match"), (.post, "/user_embedding"),
        (.post, "/admin/reload"), (.get, "/items/{id}"), (.delete, "/items/{id}"), (.post, "/tokenize"),
    ]

    /// What is served from the moment the port is bound: the probes and metrics, and 503 for the rest.
    static func starting(readiness: Readiness, metrics: ServiceMetrics) -> Router {
        var router = Router()
        probes(&router, readiness: readiness, metrics: metrics)
        for (method, pattern) in apiRoutes {
            router.add(method, pattern) { _, _ in
                throw HTTPError(.serviceUnavailable, code: "starting", message: "the service is still loading",
                                headers: HTTPHeaders([("Retry-After", "1")]))
            }
        }
        return router
    }

    static func router(readiness: Readiness, metrics: ServiceMetrics, pipeline: EmbeddingPipeline,
                       reloader: CodebookReloader, configuration: ServiceConfiguration) -> Router {
        var router = Router()
        let limits = configuration.limits

        let embed = EmbedRoute(pipeline: pipeline, limits: limits, settings: configuration.embedding,
                               rotate: configuration.codebook.rotateEmbeddings)
        router.post("/embed") { request, _ in try await embed.handle(request) }
        let openAI = OpenAIEmbeddingsRoute(embed: embed)
        router.post("/v1/embeddings") { request, _ in try await openAI.handle(request) }

        let matcher = Matcher(pipeline: pipeline, rotate: configuration.codebook.rotateEmbeddings,
                              maxIdBytes: limits.maxIdBytes)
        let match = MatchRoute(matcher: matcher, embed: embed, limits: configuration.match,
                               stages: MatchRoute.Stages(factory: metrics.factory))
        router.post("/match") { request, _ in try await match.match(request) }
        router.post("/user_embedding") { request, _ in try await match.userEmbedding(request) }

        router.post("/admin/reload") { _, _ in try reloader.reload() }

        let items = ItemsRoute(store: pipeline.store, codebooks: pipeline.codebooks,
                               rotate: configuration.codebook.rotateEmbeddings, maxIdBytes: limits.maxIdBytes)
        router.get("/items/{id}") { _, context in try items.get(context) }
        router.delete("/items/{id}") { _, context in try items.delete(context) }

        let tokenize = TokenizeRoute(pipeline: pipeline, limits: limits)
        router.post("/tokenize") { request, _ in try tokenize.handle(request) }

        probes(&router, readiness: readiness, metrics: metrics)
        return router
    }

    /// `/healthz`, `/readyz`, `/metrics` and `/openapi.json`.
    private static func probes(_ router: inout Router, readiness: Readiness, metrics: ServiceMetrics) {
        // Probes are polled constantly: their bodies are constant bytes, not encoded per request.
        let ok = HTTPResponse(status: .ok, headers: HTTPHeaders([("Content-Type", "application/json")]),
                              body: Array(#"{"status":"ok"}"#.utf8))
        let ready = HTTPResponse(status: .ok, headers: HTTPHeaders([("Content-Type", "application/json")]),
                                 body: Array(#"{"status":"ready"}"#.utf8))

        router.get("/healthz", immediate: { _, _ in ok })

        router.get("/readyz", immediate: { _, _ in
            switch readiness.state {
            case .ready:
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

        router.get("/metrics", immediate: { _, _ in
            HTTPResponse(status: .ok,
                         headers: HTTPHeaders([("Content-Type", "text/plain; version=0.0.4; charset=utf-8")]),
                         body: metrics.exposition())
        })
    }
}
