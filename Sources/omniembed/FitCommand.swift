#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Embedding
import Foundation
import Models
import Service
import Tensor

/// `omniembed fit`: the PCA rotation and residual k-means codebooks that semantic IDs come from.
struct FitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fit",
        abstract: "Fit the semantic-ID codebook (PCA rotation + residual k-means) on stored items or a file of vectors.",
        discussion: """
            By default it learns from every item in the item store embedded by the configured model (its revision \
            is written into the codebook, and the service refuses a codebook of another revision). --vectors takes \
            a .npy (2-D float32/float64) or a JSONL file (one array, or {"embedding": [...]}, per line) instead; \
            the codebook is then stamped with the configured model as well (the vectors are taken to be its), or \
            with no model under --unstamped, which a service serves only with codebook.allowUnstamped. The \
            codebook is written atomically to codebook.path (or --output); its version is the first 16 hex digits \
            of the file's SHA-256. A running service picks it up on POST /admin/reload or SIGHUP.
            """
    )

    @OptionGroup var settingsOptions: SettingsOptions

    @Option(name: .long, help: "Fit on this .npy or .jsonl file of vectors instead of the item store.")
    var vectors: String?

    @Flag(name: .long, help: "With --vectors: name no model in the codebook (served only with codebook.allowUnstamped).")
    var unstamped = false

    @Option(name: .long, help: "Where to write the codebook (default: codebook.path from the configuration).")
    var output: String?

    @Option(name: .long, help: "Residual k-means levels.")
    var levels = 3

    @Option(name: .long, help: "Centroids per level.")
    var clusters = 256

    @Option(name: .long, help: "Lloyd iterations per level (fewer when the assignment stops changing).")
    var iterations = 20

    @Option(name: .long, help: "Random seed (k-means++ sampling).")
    var seed: UInt64 = 0

    @Option(name: .long, help: "Initial centroids: kmeans++ (on a sample) or random (distinct random points).")
    var initialisation = "kmeans++"

    @Option(name: .long, help: "k-means++ seeds each level from this many random points per centroid.")
    var seedingSample = 64

    @Option(name: .long, help: "Passes of joint codebook refinement after the levels are fitted (0: none); a pass is kept only when it lowers the error.")
    var refinementPasses = 2

    @Option(name: .long, help: "A final FSQ level: levels per direction, e.g. 8,8,8 (none by default).")
    var fsq: String?

    @Option(name: .long, help: "Threads (0: one per processor).")
    var threads = 0

    @Option(name: .long, help: "Also write every item's codes here, as a .npy of int32 (items × levels).")
    var codes: String?

    @Option(name: .long, help: "Also write the report here, as JSON.")
    var report: String?

    @Option(name: .long, help: ArgumentHelp(
        "The codebook version the new one replaces: also work out, per level, each old code's majority new code and each new code's majority old code (to warm-start rankers' SID embedding tables); kept with the codebook in a shared bank.",
        valueName: "VERSION"))
    var previous: String?

    @Option(name: .long, help: "With --previous: also write the code mapping here, as JSON.")
    var mapping: String?

    func run() async throws {
        guard levels >= 1, clusters >= 2, iterations >= 0, threads >= 0, seedingSample >= 1, refinementPasses >= 0 else {
            throw ValidationError("--levels must be ≥ 1, --clusters ≥ 2, --seeding-sample ≥ 1, --iterations, --refinement-passes and --threads ≥ 0")
        }
        let fsqLevels: [Int] = try fsq.map { text in
            let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) >= 2 }) else {
                throw ValidationError("--fsq must list integers ≥ 2, e.g. 8,8,8")
            }
            return values.map { $0! }
        } ?? []
        guard mapping == nil || previous != nil else { throw ValidationError("--mapping goes with --previous") }
        let settings = try await settingsOptions.load()
        let destination = output ?? settings.codebook.path
        guard !destination.isEmpty else { throw ValidationError("no --output and codebook.path is empty") }
        let data: [Float], count: Int, dimensions: Int, model: ModelIdentity?
        if let vectors {
            (data, count, dimensions) = try Self.readVectors(vectors)
            model = unstamped ? nil : try ModelIdentity(of: settings.pipeline)
            note("read \(count) vectors of \(dimensions) dimensions from \(vectors)"
                 + (model.map { " (stamped as \($0.id)@\($0.revision))" } ?? " (unstamped)"))
        } else {
            guard !unstamped else { throw ValidationError("--unstamped goes with --vectors") }
            guard settings.store.enabled else { throw ValidationError("store.enabled is false: give --vectors") }
            let identity = try ModelIdentity(of: settings.pipeline)
            let store = try ItemStore(try settings.store.itemStoreBackend())
            defer { store.close() }
            let read = try store.embeddings(modelID: identity.id, revision: identity.revision)
            let others = try store.revisions().filter { $0.modelID != identity.id || $0.revision != identity.revision }
            if !others.isEmpty {
                note("skipped \(others.map(\.items).reduce(0, +)) items of other model revisions "
                     + others.map { "\($0.modelID)@\($0.revision): \($0.items)" }.joined(separator: ", "))
            }
            (data, count, dimensions, model) = (read.vectors, read.ids.count, read.dimensions, identity)
            note("read \(count) items of \(identity.id)@\(identity.revision) from \(store.location)")
        }
        guard count >= clusters else {
            throw ValidationError("\(count) vectors: at least --clusters (\(clusters)) are needed")
        }

        // Timed from here: reading the input is I/O, not fitting.
        let started = ContinuousClock.now
        var options = CodebookFitting.Options()
        options.levels = levels
        options.clusters = clusters
        options.iterations = iterations
        options.seed = seed
        options.seedingPointsPerCluster = seedingSample
        options.refinementPasses = refinementPasses
        guard let initialisation = CodebookFitting.Initialisation(rawValue: initialisation) else {
            throw ValidationError("--initialisation must be one of \(CodebookFitting.Initialisation.allCases.map(\.rawValue))")
        }
        options.initialisation = initialisation
        options.fsqLevels = fsqLevels
        options.threads = threads == 0 ? ProcessInfo.processInfo.activeProcessorCount : threads
        // The fit splits rows over threads itself; each GEMM runs on one.
        BLAS.setThreads(1)
        let bar = FitProgress(levels: levels, iterations: iterations, enabled: isatty(STDERR_FILENO) == 1)
        let (codebook, itemCodes, fitReport) = try CodebookFitting.fit(
            data, count: count, dimensions: dimensions, model: model, options: options, progress: bar.show)
        bar.finish()
        let fitted = ContinuousClock.now - started

        try SafetensorsWriter.write(codebook.bytes(), to: destination)
        let written = try SemanticCodebook(path: destination)
        let length = written.codeLength
        if let codes { try NPY.writeInt32(itemCodes, rows: count, columns: length, to: codes) }
        let bank = vectors == nil && settings.store.enabled ? try ItemStore(try settings.store.itemStoreBackend()) : nil
        defer { bank?.close() }
        var codeMapping: String?
        if let previous {
            let old = try Self.previousCodebook(previous, bank: bank, path: settings.codebook.path)
            guard old.dimensions == dimensions else {
                throw ValidationError("codebook \(previous) is of \(old.dimensions) dimensions, these vectors of \(dimensions)")
            }
            let oldCodes = old.codes(data, count: count).flatMap { $0 }
            let json = CodeMapping.between(old: oldCodes, oldLength: old.codeLength, new: itemCodes.map(Int.init), newLength: length,
                                           count: count, from: previous, to: written.version)
            codeMapping = String(decoding: json, as: UTF8.self)
            if let mapping { try json.write(to: URL(fileURLWithPath: mapping), options: .atomic) }
        }
        // A shared bank keeps the codebook, and every replica loads it (NOTIFY, else within a second).
        if let bank, bank.sharesCodebooks {
            try bank.saveCodebook(StoredCodebook(
                version: written.version, bytes: try Array(Data(contentsOf: URL(fileURLWithPath: destination))),
                createdAt: Date().timeIntervalSince1970, modelID: written.model?.id, modelRevision: written.model?.revision,
                previousVersion: previous, mapping: codeMapping))
            note("saved codebook \(written.version) to \(bank.location)")
        }

        var lines = ["fitted \(count) vectors of \(dimensions) dimensions in \(String(format: "%.2f", fitted.seconds)) s "
                     + "→ \(destination) (codebook_version \(written.version))",
                     "level  codes  error      relative  utilisation  iterations"]
        for (index, level) in fitReport.levels.enumerated() {
            lines.append(String(format: "%-6d %-6d %-10.6f %-9.4f %-12.4f %d", index + 1, clusters, level.error,
                                level.relativeError, level.utilisation, level.iterations))
        }
        if let utilisation = fitReport.fsqUtilisation {
            lines.append(String(format: "fsq    %-6d -          -         %-12.4f -", written.fsq?.codeCount ?? 0, utilisation))
        }
        lines.append("refinement passes kept: \(fitReport.refinementPasses) of \(refinementPasses)")
        lines.append(String(format: "collision rate %.6f (share of items whose full code another item also has)",
                            fitReport.collisionRate))
        print(lines.joined(separator: "\n"))
        if let report {
            let json: [String: Any] = [
                "items": count, "dimensions": dimensions, "codebook_version": written.version, "seconds": fitted.seconds,
                "code_counts": written.codeCounts, "collision_rate": fitReport.collisionRate,
                "mean_squared_norm": fitReport.meanSquaredNorm, "refinement_passes": fitReport.refinementPasses,
                "levels": fitReport.levels.map {
                    ["error": $0.error, "relative_error": $0.relativeError, "utilisation": $0.utilisation,
                     "iterations": $0.iterations] as [String: Any]
                },
                "fsq_utilisation": fitReport.fsqUtilisation as Any? ?? NSNull(),
            ]
            try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys, .prettyPrinted])
                .write(to: URL(fileURLWithPath: report), options: .atomic)
        }
    }

    /// The codebook `version`: from the shared bank, or the one at `codebook.path`.
    static func previousCodebook(_ version: String, bank: ItemStore?, path: String) throws -> SemanticCodebook {
        if let bank, bank.sharesCodebooks, let stored = try bank.codebook(version: version) {
            return try SemanticCodebook(bytes: stored.bytes, path: "the bank's codebook \(version)")
        }
        if let codebook = try EmbeddingPipeline.loadCodebook(at: path), codebook.version == version { return codebook }
        throw ValidationError("--previous \(version): no such codebook in the bank or at \(path)")
    }

    private func note(_ message: String) {
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }

    /// A .npy or JSONL file of vectors, all of one size.
    static func readVectors(_ path: String) throws -> ([Float], Int, Int) {
        if path.hasSuffix(".npy") {
            let (values, rows, columns) = try NPY.readFloats(path)
            guard values.allSatisfy(\.isFinite) else { throw ValidationError("\(path): has NaN or infinite values") }
            return (values, rows, columns)
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ValidationError("cannot read \(path) as UTF-8 text")
        }
        var values: [Float] = [], count = 0, dimensions = 0
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where !line.allSatisfy(\.isWhitespace) {
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8))
            let numbers = (object as? [Any]) ?? ((object as? [String: Any])?["embedding"] as? [Any])
            guard let vector = numbers?.compactMap({ ($0 as? NSNumber)?.floatValue }), vector.count == numbers?.count,
                  !vector.isEmpty, vector.allSatisfy(\.isFinite) else {
                throw ValidationError("\(path):\(number + 1): not an array of numbers or {\"embedding\": [numbers]}")
            }
            if dimensions == 0 { dimensions = vector.count }
            guard vector.count == dimensions else {
                throw ValidationError("\(path):\(number + 1): \(vector.count) values; the first line has \(dimensions)")
            }
            values += vector
            count += 1
        }
        return (values, count, dimensions)
    }
}

/// The fit's progress on stderr: one bar per level over its iterations, when stderr is a terminal; a line per
/// level otherwise.
struct FitProgress: Sendable {
    let levels: Int
    let iterations: Int
    let enabled: Bool

    func show(_ progress: CodebookFitting.Progress) {
        switch progress {
        case .rotation:
            write("PCA rotation…\n")
        case .level(let level, let iteration, let total, let moved):
            if enabled {
                let width = 30
                let filled = total > 0 ? width * iteration / total : width
                let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
                if iteration == 1, level > 0 { write("\n") }
                write("\rlevel \(level + 1)/\(levels) [\(bar)] iteration \(iteration)/\(total), \(moved) items moved   ")
            } else if iteration == 1 {
                write("level \(level + 1)/\(levels)…\n")
            }
        case .refinement(let pass, let total):
            if enabled, pass == 1 { write("\n") }
            write("refinement pass \(pass)/\(total)…\n")
        case .fsq:
            if enabled { write("\n") }
            write("FSQ level…\n")
        }
    }

    func finish() {
        if enabled { write("\n") }
    }

    private func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}
