import CoreMetrics
import Embedding
import Foundation
import HTTP
import Logging

/// Loads the codebook at `codebook.path` again (`POST /admin/reload`, SIGHUP) without stopping the service: the
/// new file is read and checked while requests go on with the old codebook, then swapped in whole. A file that
/// is missing, unreadable or fitted for another model leaves the loaded codebook in place.
struct CodebookReloader: Sendable {
    let path: String
    let pipeline: EmbeddingPipeline
    let logger: Logger
    let reloads: Counter
    let failures: Counter

    init(path: String, pipeline: EmbeddingPipeline, logger: Logger, metricsFactory: any MetricsFactory) {
        self.path = path
        self.pipeline = pipeline
        self.logger = logger
        reloads = Counter(label: "omniembed_codebook_reloads_total", dimensions: [("result", "ok")], factory: metricsFactory)
        failures = Counter(label: "omniembed_codebook_reloads_total", dimensions: [("result", "failed")], factory: metricsFactory)
    }

    struct Response: Encodable {
        var codebookVersion: String
        var previousVersion: String?
        var codeCounts: [Int]
        var dimensions: Int

        enum CodingKeys: String, CodingKey {
            case codebookVersion = "codebook_version", previousVersion = "previous_version", codeCounts = "code_counts"
            case dimensions
        }
    }

    func reload() throws(HTTPError) -> HTTPResponse {
        let previous = pipeline.codebooks.current?.version
        do throws(HTTPError) {
            guard FileManager.default.fileExists(atPath: path) else {
                throw HTTPError(.notFound, code: "codebook_not_found", message: "no codebook at \(path) (run omniembed fit)")
            }
            let codebook: SemanticCodebook
            do { codebook = try SemanticCodebook(path: path) } catch {
                throw HTTPError(.unprocessableContent, code: "invalid_codebook", message: "\(error)")
            }
            do { try pipeline.install(codebook) } catch { throw HTTPError(error) }
            reloads.increment()
            logger.info("codebook loaded", metadata: ["version": "\(codebook.version)", "previous": "\(previous ?? "none")",
                                                      "path": "\(path)"])
            return .json(Response(codebookVersion: codebook.version, previousVersion: previous,
                                  codeCounts: codebook.codeCounts, dimensions: codebook.dimensions))
        } catch {
            failures.increment()
            logger.error("codebook reload failed; keeping the loaded one",
                         metadata: ["error": "\(error.message)", "loaded": "\(previous ?? "none")"])
            throw error
        }
    }
}
