#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import CoreMetrics
import Embedding
import Foundation
import Logging
import Service

/// Offline backfill: a JSONL file of items through the same pipeline (decoding, batchers, fusion) and item store
/// as the service, at `batch` priority.
struct EmbedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Embed a JSONL file of items offline, through the service's pipeline and item store.",
        discussion: """
            Each input line is an item as /embed takes it: {"id", "text", "fields": {"title", "ocr", "asr", "author", \
            "tags"}, "images": [{"data": base64}], "audio": {"data": base64}}. Each output line is {"id", "embedding", \
            "modalities_used", "cached"}, in input order. Items are stored (and unchanged ones answered from the store) \
            unless --no-store or store.enabled is false. Models, limits and the store come from the configuration, \
            as for `serve`.
            """
    )

    @Option(name: .long, help: "JSONL file of items to embed.")
    var input: String

    @Option(name: .long, help: "JSONL file to write (replaced if it exists).")
    var output: String

    @OptionGroup var settingsOptions: SettingsOptions

    @Option(name: .long, help: "Items per pipeline call; up to four calls are in flight, so the batchers stay fed.")
    var batchSize: Int = 32

    @Option(name: .long, help: "Output size: one of embedding.dimensions (default: the full size).")
    var dimensions: Int?

    @Flag(inversion: .prefixedNo, help: "Write the items to the item store.")
    var store = true

    @Option(name: .long, help: ArgumentHelp(
        "I/N: embed only the lines whose number (from 0) is I modulo N, for N jobs over one file against a shared bank.",
        valueName: "I/N"))
    var shard: Shard = Shard(index: 0, count: 1)

    /// Every `count`-th line of the input, starting at line `index` (0-based).
    struct Shard: ExpressibleByArgument, CustomStringConvertible {
        var index: Int
        var count: Int

        init(index: Int, count: Int) {
            self.index = index
            self.count = count
        }

        init?(argument: String) {
            let parts = argument.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2, let index = Int(parts[0]), let count = Int(parts[1]),
                  count >= 1, count <= 1_000_000, (0..<count).contains(index) else { return nil }
            self.init(index: index, count: count)
        }

        var description: String { "\(index)/\(count)" }
    }

    struct Line: Encodable {
        var id: String
        var embedding: [Float]
        var modalitiesUsed: [String]
        var cached: Bool
        enum CodingKeys: String, CodingKey {
            case id, embedding, modalitiesUsed = "modalities_used", cached
        }
    }

    func run() async throws {
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
        let settings = try await settingsOptions.load()
        let size = dimensions ?? settings.embedding.dimensions[0]
        guard settings.embedding.dimensions.contains(size) else {
            throw ValidationError("--dimensions must be one of \(settings.embedding.dimensions)")
        }
        var logger = Logger(label: "omniembed.embed")
        logger.logLevel = .warning
        let pipeline = try settings.makePipeline(logger: logger, metricsFactory: NOOPMetricsHandler.instance)
        defer { pipeline.shutdown() }

        guard let source = fopen(input, "r") else {
            throw ValidationError("cannot read \(input): \(String(cString: strerror(errno)))")
        }
        defer { fclose(source) }
        guard let sink = fopen(output, "w") else {
            throw ValidationError("cannot write \(output): \(String(cString: strerror(errno)))")
        }
        defer { fclose(sink) }
        let totalBytes = (try? FileManager.default.attributesOfItem(atPath: input)[.size] as? Int) ?? 0
        let progress = Progress(totalBytes: totalBytes, enabled: isatty(STDERR_FILENO) == 1)

        let decoder = JSONDecoder()
        let encoder = JSONEncoder()
        var lineNumber = 0, written = 0, truncated = 0, cached = 0, bytesRead = 0
        var chunk: [(line: Int, input: ItemInput)] = []
        var inFlight: [(lines: [Int], task: Task<EmbeddingPipeline.Outcome, any Error>)] = []
        let options = EmbeddingPipeline.Options(priority: .batch, deadline: .now + .seconds(365 * 24 * 3600),
                                                store: store && pipeline.store != nil, partial: true)

        func writeOldest() async throws {
            let (lines, task) = inFlight.removeFirst()
            let outcome = try await task.value
            for (line, result) in zip(lines, outcome.items) {
                let item: EmbeddedItem
                do { item = try result.get() } catch { throw ValidationError("\(input):\(line): \(error.message)") }
                truncated += item.truncated ? 1 : 0
                cached += item.cached ? 1 : 0
                var bytes = try encoder.encode(Line(id: item.id, embedding: Matryoshka.prefix(item.embedding, dimensions: size),
                                                    modalitiesUsed: item.modalities.present.map(\.rawValue), cached: item.cached))
                bytes.append(UInt8(ascii: "\n"))
                guard bytes.withUnsafeBytes({ fwrite($0.baseAddress, 1, $0.count, sink) }) == bytes.count else {
                    throw ValidationError("cannot write \(output): \(String(cString: strerror(errno)))")
                }
            }
            written += lines.count
            progress.show(items: written, bytes: bytesRead)
        }
        func submit() async throws {
            guard !chunk.isEmpty else { return }
            let inputs = chunk.map(\.input)
            inFlight.append((chunk.map(\.line), Task { try await pipeline.embed(inputs, options: options) }))
            chunk.removeAll(keepingCapacity: true)
            if inFlight.count >= 4 { try await writeOldest() }
        }

        var buffer: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(buffer) }
        while true {
            let length = getline(&buffer, &capacity, source)
            if length < 0 { break }
            lineNumber += 1
            bytesRead += length
            guard (lineNumber - 1) % shard.count == shard.index else { continue }
            let bytes = UnsafeRawBufferPointer(start: buffer, count: length)
            guard bytes.contains(where: { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\n") && $0 != UInt8(ascii: "\r") }) else {
                continue  // blank line
            }
            let payload: ItemPayload
            do {
                payload = try decoder.decode(ItemPayload.self, from: Data(bytes))
            } catch {
                throw ValidationError("\(input):\(lineNumber): not an item {\"id\": string, \"text\"/\"fields\"/\"images\"/\"audio\"}")
            }
            do {
                chunk.append((lineNumber, try payload.input(at: lineNumber - 1, limits: settings.limits)))
            } catch {
                throw ValidationError("\(input):\(lineNumber): \(error.message)")
            }
            if chunk.count == batchSize { try await submit() }
        }
        try await submit()
        while !inFlight.isEmpty { try await writeOldest() }
        progress.finish()
        var summary = "embedded \(written) items into \(output)"
        if shard.count > 1 { summary += " (shard \(shard.index)/\(shard.count))" }
        if cached > 0 { summary += " (\(cached) unchanged, from the store)" }
        if truncated > 0 { summary += " (\(truncated) truncated to \(settings.maxTokens) tokens)" }
        FileHandle.standardError.write(Data((summary + "\n").utf8))
    }
}

/// A one-line progress bar on stderr, drawn only when stderr is a terminal.
struct Progress {
    let totalBytes: Int
    let enabled: Bool

    func show(items: Int, bytes: Int) {
        guard enabled else { return }
        let fraction = totalBytes > 0 ? min(1, Double(bytes) / Double(totalBytes)) : 0
        let width = 30
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        FileHandle.standardError.write(Data("\r[\(bar)] \(Int(fraction * 100))% \(items) items".utf8))
    }

    func finish() {
        if enabled { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
