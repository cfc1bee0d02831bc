import CoreMetrics
import Logging
import Testing
@testable import HTTP
import TestSupport

@Suite struct RouterTests {
    /// A literal pattern shadows a parameter one on the paths both fit: `/items/batch_get` allows only its own
    /// method, while every other `/items/...` is the `{id}` routes'.
    @Test func literalSegmentsWinOverParameters() async throws {
        var router = Router()
        router.get("/items/{id}") { _, context in HTTPResponse(status: .ok, body: Array("item \(context.parameters["id"]!)".utf8)) }
        router.delete("/items/{id}") { _, _ in HTTPResponse(status: .noContent) }
        router.post("/items/batch_get") { _, _ in HTTPResponse(status: .ok, body: Array("batch".utf8)) }
        let client = InProcessClient(RouterResponder(router: router, logger: .init(label: "test"), metricsFactory: NOOPMetricsHandler.instance))
        #expect(await String(decoding: client.execute(.post, "/items/batch_get", body: "{}").body, as: UTF8.self) == "batch")
        let wrong = await client.execute(.get, "/items/batch_get")
        #expect(wrong.status.code == 405 && wrong.headers["Allow"] == "POST")
        #expect(await String(decoding: client.execute(.get, "/items/a7").body, as: UTF8.self) == "item a7")
        let other = await client.execute(.post, "/items/a7", body: "{}")
        #expect(other.status.code == 405 && other.headers["Allow"] == "DELETE, GET, HEAD")
        #expect(await client.execute(.get, "/nothing").status.code == 404)
        #expect(await client.execute(.head, "/items/a7").status.code == 200)
    }
}
