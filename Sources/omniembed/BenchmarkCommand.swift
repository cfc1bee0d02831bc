import ArgumentParser
import Foundation
import Models
import Service

/// Encoder throughput on this machine, for `scripts/bench-text` and for sizing a deployment.
struct BenchmarkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "benchmark",
        abstract: "Measure the text encoder's throughput.",
        discussion: """
            Encodes batches of random token ids of exactly --length tokens, after one warm-up batch, until \
            --seconds have passed and at least --minimum-runs batches ran; prints one JSON line per cell with the \
            median seconds per batch and items/s. Threads come from the configuration (model.threads, \
            model.blasThreads).
            """
    )

    @Option(name: .long, help: "JSON configuration file (config/default.json in the repository).")
    var config: String?

    @Option(name: .long, parsing: .upToNextOption, help: "Batch sizes.")
    var batchSizes: [Int] = [1, 8, 32, 128]

    @Option(name: .long, parsing: .upToNextOption, help: "Sequence lengths in tokens, special tokens included.")
    var lengths: [Int] = [16, 64, 128, 256]

    @Option(name: .long, help: "Time to spend per cell.")
    var seconds: Double = 2

    @Option(name: .long, help: "Fewest timed batches per cell.")
    var minimumRuns: Int = 3

    struct Cell: Encodable {
        var batch: Int
        var length: Int
        var threads: Int
        var secondsPerBatch: Double
        var itemsPerSecond: Double
        var runs: Int
    }

    func run() async throws {
        guard batchSizes.allSatisfy({ $0 > 0 }), lengths.allSatisfy({ $0 > 0 }), minimumRuns > 0 else {
            throw ValidationError("batch sizes, lengths and --minimum-runs must be positive")
        }
        let settings = try await ServiceConfiguration.load(file: config, environment: ProcessInfo.processInfo.environment)
        let encoder = try settings.loadTextModel().encoder
        guard let longest = lengths.max(), longest <= encoder.configuration.maxPositions else {
            throw ValidationError("lengths must be at most the model's \(encoder.configuration.maxPositions) positions")
        }
        var generator = SystemRandomNumberGenerator()
        let vocabulary = Int32(encoder.configuration.vocabularySize)
        let output = JSONEncoder()
        output.keyEncodingStrategy = .convertToSnakeCase

        for length in lengths {
            for batchSize in batchSizes {
                let batch = (0..<batchSize).map { _ in
                    (0..<length).map { _ in Int32.random(in: 1000..<vocabulary, using: &generator) }
                }
                _ = encoder.embed(batch)
                var samples: [Double] = []
                let started = ContinuousClock.now
                while samples.count < minimumRuns || ContinuousClock.now - started < .seconds(seconds) {
                    let t0 = ContinuousClock.now
                    _ = encoder.embed(batch)
                    let elapsed = ContinuousClock.now - t0
                    samples.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
                }
                samples.sort()
                let median = samples[samples.count / 2]
                let cell = Cell(batch: batchSize, length: length, threads: encoder.threads, secondsPerBatch: median,
                                itemsPerSecond: Double(batchSize) / median, runs: samples.count)
                print(String(decoding: try output.encode(cell), as: UTF8.self))
            }
        }
    }
}
