import HTTP
import Models

/// The service's HTTP API.
enum Routes {
    static func router(readiness: Readiness, metrics: ServiceMetrics, towers: Towers,
                       limits: ServiceConfiguration.RequestLimits) -> Router {
        var router = Router()

        let embed = EmbedRoute(towers: towers, limits: limits)
        router.post("/embed") { request, _ in try embed.handle(request) }

        let tokenize = TokenizeRoute(tokenizer: towers.text.tokenizer, limits: limits)
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
