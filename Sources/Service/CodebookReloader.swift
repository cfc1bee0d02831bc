import CoreMetrics
import Embedding
import Foundation
import HTTP
import Logging

/// Loads the newest codebook again (`POST /admin/reload`, SIGHUP) without stopping the service: from
/// `codebook.path`, or from a shared bank (where replicas also follow new versions by themselves). It is read and
/// checked while requests go on with the loaded ones, then put in front; one that is missing, unreadable or fitted
/// for another model leaves the loaded codebooks in place.
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

    /// The newest codebook: the shared bank's when it keeps them, else the file at `path`.
    private func read() throws(HTTPError) -> SemanticCodebook {
        if let store = pipeline.store, store.sharesCodebooks {
            let stored: StoredCodebook?
            do { stored = try store.codebooks(newest: 1).first } catch { throw HTTPError(error) }
            guard let stored else {
                throw HTTPError(.notFound, code: "codebook_not_found", message: "no codebook in \(store.location) (run omniembed fit)")
            }
            do { return try SemanticCodebook(bytes: stored.bytes, path: "the bank's codebook \(stored.version)") } catch {
                throw HTTPError(.unprocessableContent, code: "invalid_codebook", message: "\(error)")
            }
        }
        guard FileManager.default.fileExists(atPath: path) else {
            throw HTTPError(.notFound, code: "codebook_not_found", message: "no codebook at \(path) (run omniembed fit)")
        }
        do { return try SemanticCodebook(path: path) } catch {
            throw HTTPError(.unprocessableContent, code: "invalid_codebook", message: "\(error)")
        }
    }

    func reload() throws(HTTPError) -> HTTPResponse {
        let previous = pipeline.codebooks.current?.version
        do throws(HTTPError) {
            let codebook = try read()
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
