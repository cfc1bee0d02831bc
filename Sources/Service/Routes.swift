import Embedding
import HTTP
import Models

/// The service's HTTP API.
enum Routes {
    static func router(readiness: Readiness, metrics: ServiceMetrics, pipeline: EmbeddingPipeline,
                       reloader: CodebookReloader, configuration: ServiceConfiguration) -> Router {
        var router = Router()
        let limits = configuration.limits

        let embed = EmbedRoute(pipeline: pipeline, limits: limits, settings: configuration.embedding,
                               rotate: configuration.codebook.rotateEmbeddings)
        router.post("/embed") { request, _ in try await embed.handle(request) }
        let openAI = OpenAIEmbeddingsRoute(embed: embed)
        router.post("/v1/embeddings") { request, _ in try await openAI.handle(request) }

        let match = MatchRoute(pipeline: pipeline, embed: embed, limits: configuration.match,
                               rotate: configuration.codebook.rotateEmbeddings,
                               stages: MatchRoute.Stages(factory: metrics.factory))
        router.post("/match") { request, _ in try await match.match(request) }
        router.post("/user_embedding") { request, _ in try await match.userEmbedding(request) }

        router.post("/admin/reload") { _, _ in try reloader.reload() }

        let items = ItemsRoute(store: pipeline.store, codebooks: pipeline.codebooks,
                               rotate: configuration.codebook.rotateEmbeddings)
        router.get("/items/{id}") { _, context in try items.get(context) }
        router.delete("/items/{id}") { _, context in try items.delete(context) }

        let tokenize = TokenizeRoute(tokenizer: pipeline.towers.text.tokenizer, limits: limits)
        router.post("/tokenize") { request, _ in try tokenize.handle(request) }

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

        router.get("/metrics", immediate: { _, _ in
            HTTPResponse(status: .ok,
                         headers: HTTPHeaders([("Content-Type", "text/plain; version=0.0.4; charset=utf-8")]),
                         body: metrics.exposition())
        })

        return router
    }
}
