import ArgumentParser
import Embedding
import Foundation
import Service

/// One stored item as `omniembed export` writes it and `import` reads it: the whole record, so that a bank moves
/// between backends and clusters unchanged (floats written in their shortest exact form).
struct BankLine: Codable {
    struct Model: Codable {
        var id: String
        var revision: String
    }
    struct Vectors: Codable {
        var text: [Float]?
        var image: [Float]?
        var audio: [Float]?
    }
    var id: String
    var contentHash: String
    var model: Model
    var embedding: [Float]
    var modalities: Vectors
    var semanticID: [Int]?
    var codebookVersion: String?
    var truncated: Bool
    var images: Int
    var audioSeconds: Double
    var createdAt: Double
    var updatedAt: Double

    enum CodingKeys: String, CodingKey {
        case id, contentHash = "content_hash", model, embedding, modalities, semanticID = "semantic_id"
        case codebookVersion = "codebook_version", truncated, images, audioSeconds = "audio_seconds"
        case createdAt = "created_at", updatedAt = "updated_at"
    }

    init(_ record: ItemStore.Record) {
        id = record.id
        contentHash = record.contentHash
        model = Model(id: record.modelID, revision: record.revision)
        embedding = record.embedding
        modalities = Vectors(text: record.modalities.text, image: record.modalities.image, audio: record.modalities.audio)
        semanticID = record.semanticID
        codebookVersion = record.codebookVersion
        truncated = record.truncated
        images = record.images
        audioSeconds = record.audioSeconds
        createdAt = record.createdAt
        updatedAt = record.updatedAt
    }

    var record: ItemStore.Record {
        ItemStore.Record(id: id, contentHash: contentHash, modelID: model.id, revision: model.revision, embedding: embedding,
                         modalities: Modalities(text: modalities.text, image: modalities.image, audio: modalities.audio),
                         semanticID: semanticID, codebookVersion: codebookVersion, truncated: truncated, images: images,
                         audioSeconds: audioSeconds, createdAt: createdAt, updatedAt: updatedAt)
    }
}

/// `omniembed export`: the configured bank to JSONL (every record, whole) or to NPY + ids (the fused vectors of
/// the configured model revision, for analysis or another index).
struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write the item store to a JSONL file (every record) or a .npy of vectors and a file of ids.")

    @OptionGroup var settingsOptions: SettingsOptions

    @Option(name: .long, help: "The file to write: .jsonl, or .npy (then also OUTPUT.ids, one id per line).")
    var output: String

    func run() async throws {
        let settings = try await settingsOptions.load()
        let store = try ItemStore(try settings.store.itemStoreBackend())
        defer { store.close() }
        if output.hasSuffix(".npy") {
            let model = try ModelIdentity(of: settings.pipeline)
            var ids: [String] = [], vectors: [Float] = [], dimensions = 0, skipped = 0
            try store.forEachPage { page in
                for record in page {
                    guard record.modelID == model.id, record.revision == model.revision,
                          dimensions == 0 || record.embedding.count == dimensions else { skipped += 1; continue }
                    dimensions = record.embedding.count
                    ids.append(record.id)
                    vectors += record.embedding
                }
            }
            try NPY.writeFloat32(vectors, rows: ids.count, columns: dimensions, to: output)
            try Data((ids.joined(separator: "\n") + (ids.isEmpty ? "" : "\n")).utf8)
                .write(to: URL(fileURLWithPath: output + ".ids"), options: .atomic)
            note("exported \(ids.count) vectors of \(model.id)@\(model.revision) from \(store.location) to \(output) and \(output).ids"
                 + (skipped > 0 ? " (\(skipped) items of other model revisions left out)" : ""))
            return
        }
        guard FileManager.default.createFile(atPath: output + ".partial", contents: nil),
              let sink = FileHandle(forWritingAtPath: output + ".partial") else {
            throw ValidationError("cannot write \(output)")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var count = 0
        try store.forEachPage { page in
            var chunk = Data()
            for record in page {
                chunk += try encoder.encode(BankLine(record))
                chunk.append(UInt8(ascii: "\n"))
            }
            try sink.write(contentsOf: chunk)
            count += page.count
        }
        try sink.close()
        guard rename(output + ".partial", output) == 0 else { throw ValidationError("cannot write \(output): \(String(cString: strerror(errno)))") }
        note("exported \(count) items from \(store.location) to \(output)")
    }
}

/// `omniembed import`: records from `export` into the configured bank (inserted or replaced, committed in groups).
struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Read an `omniembed export` JSONL file (or a .npy of vectors with its .ids file) into the item store.",
        discussion: """
            JSONL records keep everything they carry. A .npy (rows of unit vectors of the configured model's size) \
            with OUTPUT.ids gives vectors only: they are stored as the configured model revision's, with no content \
            hash, so that /embed recomputes an item it is sent again.
            """)

    @OptionGroup var settingsOptions: SettingsOptions

    @Option(name: .long, help: "The file to read: .jsonl, or .npy (with INPUT.ids).")
    var input: String

    func run() async throws {
        let settings = try await settingsOptions.load()
        let store = try ItemStore(try settings.store.itemStoreBackend())
        defer { store.close() }
        var records: [ItemStore.Record] = []
        var count = 0
        func flush() async throws {
            try await store.put(records)
            count += records.count
            records.removeAll(keepingCapacity: true)
        }
        func check(_ id: String, _ vector: [Float], line: Int) throws {
            do { try ItemID.check(id, field: "id", maxBytes: settings.limits.maxIdBytes) } catch {
                throw ValidationError("\(input):\(line): \(error.message)")
            }
            guard !vector.isEmpty, vector.allSatisfy(\.isFinite) else {
                throw ValidationError("\(input):\(line): the embedding must be finite and not empty")
            }
        }
        if input.hasSuffix(".npy") {
            let (vectors, rows, columns) = try NPY.readFloats(input)
            let ids = try String(contentsOfFile: input + ".ids", encoding: .utf8).split(separator: "\n").map(String.init)
            guard ids.count == rows else { throw ValidationError("\(input): \(rows) rows, \(ids.count) ids in \(input).ids") }
            let model = try ModelIdentity(of: settings.pipeline)
            let now = Date().timeIntervalSince1970
            for (row, id) in ids.enumerated() {
                let vector = Array(vectors[row * columns..<(row + 1) * columns])
                try check(id, vector, line: row + 1)
                records.append(ItemStore.Record(id: id, contentHash: "", modelID: model.id, revision: model.revision,
                                                embedding: vector, modalities: Modalities(), semanticID: nil,
                                                truncated: false, images: 0, audioSeconds: 0, createdAt: now, updatedAt: now))
                if records.count == 500 { try await flush() }
            }
        } else {
            guard let source = fopen(input, "r") else { throw ValidationError("cannot read \(input)") }
            defer { fclose(source) }
            let decoder = JSONDecoder()
            var (line, buffer, capacity): (Int, UnsafeMutablePointer<CChar>?, Int) = (0, nil, 0)
            defer { free(buffer) }
            while true {
                let length = getline(&buffer, &capacity, source)
                if length < 0 { break }
                line += 1
                let bytes = Data(bytes: buffer!, count: length)
                guard bytes.contains(where: { $0 != UInt8(ascii: "\n") && $0 != UInt8(ascii: " ") }) else { continue }
                let record: ItemStore.Record
                do { record = try decoder.decode(BankLine.self, from: bytes).record } catch {
                    throw ValidationError("\(input):\(line): not a record of `omniembed export`: \(error)")
                }
                try check(record.id, record.embedding, line: line)
                records.append(record)
                if records.count == 500 { try await flush() }
            }
        }
        try await flush()
        note("imported \(count) items from \(input) into \(store.location)")
    }
}

private func note(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
