import ArgumentParser
import Foundation
import Media
import Models
import Service

/// Encoder throughput on this machine, for `scripts/bench/bench-text` and for sizing a deployment.
struct BenchmarkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "benchmark",
        abstract: "Measure the towers' throughput.",
        discussion: """
            --tower text encodes batches of random token ids of exactly each --lengths value; --tower image runs \
            batches of random 3×224×224 inputs through the image tower (--lengths is ignored); --texts FILE tokenises and \
            encodes the file's lines in batches of each --batch-sizes value; --decode FILE times \
            decoding and preprocessing one image file (full-size and DCT-scaled); --audio FILE times the audio tower \
            on one WAV file, end to end (decode, resample, log-mel, musicnn) and the model alone; --video FILE times \
            decoding a video's cover and --frames frames to preprocessed image tower inputs and its soundtrack to \
            16 kHz samples, on one thread (as the decode pool runs an item). Each cell runs one warm-up, then \
            until --seconds have passed and at least --minimum-runs ran; one JSON line per cell with the median \
            seconds per batch and items/s. Threads come from the configuration (model.threads, model.blasThreads).
            """
    )

    enum Tower: String, ExpressibleByArgument { case text, image }

    @Option(name: .long, help: "text or image.")
    var tower: Tower = .text

    @Option(name: .long, help: "Time decoding and preprocessing this JPEG or PNG file instead.")
    var decode: String?

    @Option(name: .long, help: "Time the audio tower end to end on this WAV file instead.")
    var audio: String?

    @Option(name: .long, help: "Time decoding this video's cover, --frames frames and soundtrack to tower inputs instead.")
    var video: String?

    @Option(name: .long, help: "Frames sampled from --video besides the cover.")
    var frames = 5

    @Option(name: .long, help: "Time tokenising and encoding the texts of this file (one per line) in batches instead.")
    var texts: String?

    @OptionGroup var settingsOptions: SettingsOptions

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
        var length: Int?
        var threads: Int
        var secondsPerBatch: Double
        var itemsPerSecond: Double
        var runs: Int
    }

    func run() async throws {
        guard batchSizes.allSatisfy({ $0 > 0 }), lengths.allSatisfy({ $0 > 0 }), minimumRuns > 0 else {
            throw ValidationError("batch sizes, lengths and --minimum-runs must be positive")
        }
        let settings = try await settingsOptions.load()
        if let decode { return try timeDecoding(decode, settings: settings) }
        if let audio { return try timeAudio(audio, settings: settings) }
        if let video { return try timeVideo(video, settings: settings) }
        if let texts { return try timeTexts(texts, settings: settings) }
        switch tower {
        case .text: try timeText(settings)
        case .image: try timeImages(settings)
        }
    }

    /// Median seconds of `body` over the cell's runs, after one warm-up.
    func median(_ body: () throws -> Void) rethrows -> (seconds: Double, runs: Int) {
        try body()
        var samples: [Double] = []
        let started = ContinuousClock.now
        while samples.count < minimumRuns || ContinuousClock.now - started < .seconds(seconds) {
            let t0 = ContinuousClock.now
            try body()
            let elapsed = ContinuousClock.now - t0
            samples.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
        }
        samples.sort()
        return (samples[samples.count / 2], samples.count)
    }

    func emit<T: Encodable>(_ value: T) throws {
        let output = JSONEncoder()
        output.keyEncodingStrategy = .convertToSnakeCase
        print(String(decoding: try output.encode(value), as: UTF8.self))
    }

    func timeText(_ settings: ServiceConfiguration) throws {
        let encoder = try settings.loadTextModel().encoder
        guard let longest = lengths.max(), longest <= encoder.configuration.maxPositions else {
            throw ValidationError("lengths must be at most the model's \(encoder.configuration.maxPositions) positions")
        }
        var generator = SystemRandomNumberGenerator()
        let vocabulary = Int32(encoder.configuration.vocabularySize)
        for length in lengths {
            for batchSize in batchSizes {
                let batch = (0..<batchSize).map { _ in
                    (0..<length).map { _ in Int32.random(in: 1000..<vocabulary, using: &generator) }
                }
                let (time, runs) = median { _ = encoder.embed(batch) }
                try emit(Cell(batch: batchSize, length: length, threads: encoder.threads, secondsPerBatch: time,
                              itemsPerSecond: Double(batchSize) / time, runs: runs))
            }
        }
    }

    /// The offline encoder on real texts: consecutive batches of the file's lines, tokenisation included.
    func timeTexts(_ path: String, settings: ServiceConfiguration) throws {
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        guard !lines.isEmpty else { throw ValidationError("\(path) has no texts") }
        let model = try settings.loadTextModel()
        for batchSize in batchSizes {
            var next = 0
            let (time, runs) = median {
                let batch = (0..<batchSize).map { lines[(next + $0) % lines.count] }
                next += batchSize
                _ = model.embed(batch)
            }
            try emit(Cell(batch: batchSize, length: nil, threads: model.encoder.threads, secondsPerBatch: time,
                          itemsPerSecond: Double(batchSize) / time, runs: runs))
        }
    }

    func timeImages(_ settings: ServiceConfiguration) throws {
        let model = try settings.loadImageModel()
        let side = EfficientNetLite.inputSize
        for batchSize in batchSizes {
            let batch = (0..<batchSize).map { _ in (0..<3 * side * side).map { _ in Float.random(in: -1...1) } }
            let (time, runs) = median { _ = model.run(batch) }
            try emit(Cell(batch: batchSize, length: nil, threads: model.threads, secondsPerBatch: time,
                          itemsPerSecond: Double(batchSize) / time, runs: runs))
        }
    }

    struct AudioTiming: Encodable {
        var file: String
        var audioSeconds: Double
        var patches: Int
        var endToEndSeconds: Double
        var modelSeconds: Double
    }

    func timeAudio(_ path: String, settings: ServiceConfiguration) throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let model = try settings.loadAudioModel()
        let decoder = WAVDecoder(maxDuration: Double(settings.audio.maxSeconds))
        let mel = MelSpectrogram.musicnn()
        let recording = try decoder.decode(bytes)
        let patches = Musicnn.patches(mel.musicnnInput(Resampler.resample(recording, to: mel.sampleRate).samples))
        let endToEnd = try median {
            let audio = try decoder.decode(bytes)
            _ = model.run(Musicnn.patches(mel.musicnnInput(Resampler.resample(audio, to: mel.sampleRate).samples)))
        }
        let modelOnly = median { _ = model.run(patches) }
        try emit(AudioTiming(file: path, audioSeconds: recording.duration, patches: patches.count,
                             endToEndSeconds: endToEnd.seconds, modelSeconds: modelOnly.seconds))
    }

    struct VideoTiming: Encodable {
        var file: String
        var duration: Double
        var width: Int, height: Int
        var frames: Int
        var samples: Int
        var seconds: Double
        var runs: Int
    }

    func timeVideo(_ path: String, settings: ServiceConfiguration) throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let preprocessor = ImagePreprocessor()
        let decoder = VideoDecoder(maxBytes: .max, maxSeconds: Double(settings.limits.maxVideoSeconds), maxPixels: settings.image.maxPixels,
                                   minimumShorterSide: preprocessor.shorterSide)
        let header = try decoder.header(of: bytes)
        let times = VideoDecoder.sampleTimes(duration: header.duration, frames: frames, cover: true)
        var samples = 0
        let (time, runs) = try median {
            let decoded = try decoder.decode(bytes, frames: times, soundtrack: header.hasAudio, checkpoint: { () throws(Never) in }).get()
            precondition(decoded.frames.map { preprocessor.tensor($0.image) }.count == times.count)
            if let audio = decoded.audio { samples = Resampler.resample(audio, to: 16000).samples.count }
        }
        try emit(VideoTiming(file: path, duration: header.duration, width: header.frameSize?.width ?? 0,
                             height: header.frameSize?.height ?? 0, frames: times.count, samples: samples, seconds: time,
                             runs: runs))
    }

    struct DecodeTiming: Encodable {
        var file: String
        var width: Int, height: Int
        var fullDecodeAndPreprocessSeconds: Double
        var scaledDecodeAndPreprocessSeconds: Double
    }

    func timeDecoding(_ path: String, settings: ServiceConfiguration) throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let decoder = ImageDecoder(maxPixels: settings.image.maxPixels)
        let preprocessor = ImagePreprocessor()
        let header = try decoder.header(of: bytes)
        let full = try median { _ = preprocessor.tensor(try decoder.decode(bytes)) }
        let scaled = try median {
            _ = preprocessor.tensor(try decoder.decode(bytes, minimumShorterSide: preprocessor.shorterSide))
        }
        try emit(DecodeTiming(file: path, width: header.width, height: header.height,
                              fullDecodeAndPreprocessSeconds: full.seconds, scaledDecodeAndPreprocessSeconds: scaled.seconds))
    }
}
