import HTTP

/// The service's HTTP API.
enum Routes {
    static func router(readiness: Readiness, metrics: ServiceMetrics) -> Router {
        var router = Router()

        router.get("/healthz") { _, _ in
            .json(["status": "ok"])
        }

        router.get("/readyz") { _, _ in
            switch readiness.state {
            case .ready:
                return .json(["status": "ready"])
            case .starting:
                throw HTTPError(.serviceUnavailable, code: "starting", message: "the service is still loading",
                                headers: HTTPHeaders([("Retry-After", "1")]))
            case .draining:
                throw HTTPError(.serviceUnavailable, code: "draining", message: "the service is shutting down")
            }
        }

        router.get("/metrics") { _, _ in
            HTTPResponse(status: .ok,
                         headers: HTTPHeaders([("Content-Type", "text/plain; version=0.0.4; charset=utf-8")]),
                         body: metrics.exposition())
        }

        return router
    }
}
