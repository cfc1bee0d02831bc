#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import Models
import Service

/// Offline backfill: embeds a JSONL file of items with the same tokenizer and encoder as the service.
struct EmbedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Embed a JSONL file of items offline.",
        discussion: """
            Each input line is an item {"id": "...", "text": "..."}; each output line is {"id": "...", "embedding": [...]}, \
            in input order. The model comes from the configuration (model.directory), as for `serve`.
            """
    )

    @Option(name: .long, help: "JSONL file of items to embed.")
    var input: String

    @Option(name: .long, help: "JSONL file to write (replaced if it exists).")
    var output: String

    @Option(name: .long, help: "JSON configuration file (config/default.json in the repository).")
    var config: String?

    @Option(name: .long, help: "Items per encoder batch.")
    var batchSize: Int = 32

    struct Item: Decodable {
        var id: String
        var text: String
    }

    struct Line: Encodable {
        var id: String
        var embedding: [Float]
    }

    func run() async throws {
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
        let settings = try await ServiceConfiguration.load(file: config, environment: ProcessInfo.processInfo.environment)
        let model = try settings.loadTextModel()

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
        let jsonEncoder = JSONEncoder()
        var batch: [Item] = []
        var lineNumber = 0, written = 0, truncated = 0, bytesRead = 0
        func flush() throws {
            guard !batch.isEmpty else { return }
            let result = model.embed(batch.map(\.text))
            truncated += result.truncated.count
            for (item, embedding) in zip(batch, result.embeddings) {
                var line = try jsonEncoder.encode(Line(id: item.id, embedding: embedding))
                line.append(UInt8(ascii: "\n"))
                guard line.withUnsafeBytes({ fwrite($0.baseAddress, 1, $0.count, sink) }) == line.count else {
                    throw ValidationError("cannot write \(output): \(String(cString: strerror(errno)))")
                }
            }
            written += batch.count
            batch.removeAll(keepingCapacity: true)
            progress.show(items: written, bytes: bytesRead)
        }

        var buffer: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(buffer) }
        while true {
            let length = getline(&buffer, &capacity, source)
            if length < 0 { break }
            lineNumber += 1
            bytesRead += length
            let bytes = UnsafeRawBufferPointer(start: buffer, count: length)
            guard bytes.contains(where: { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\n") && $0 != UInt8(ascii: "\r") }) else {
                continue  // blank line
            }
            do {
                batch.append(try decoder.decode(Item.self, from: Data(bytes)))
            } catch {
                throw ValidationError("\(input):\(lineNumber): not an item {\"id\": string, \"text\": string}")
            }
            if batch.count == batchSize { try flush() }
        }
        try flush()
        progress.finish()
        FileHandle.standardError.write(Data("embedded \(written) items into \(output)\(truncated > 0 ? " (\(truncated) truncated to \(settings.maxTokens) tokens)" : "")\n".utf8))
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
