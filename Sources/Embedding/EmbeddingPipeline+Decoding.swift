import CoreMetrics
import Dispatch
import Foundation
import Locking
internal import Media
internal import Models

/// Tokenising and decoding: what each item gives the towers.
extension EmbeddingPipeline {
    /// An item's tower inputs.
    struct Inputs: Sendable {
        var tokens: [Int32] = []
        var truncated = false
        var hasText = false
        var images: [[Float]] = []
        var audio: [[Float]] = []
        var hasAudio = false
        var audioSeconds = 0.0
        var videoSeconds = 0.0
        var framesDecoded = 0
    }

    /// Tokenises items (here: cheap and bounded by the text limit) and decodes their media on the decode pool,
    /// after checking from the headers alone that the call stays within its budget. The decode jobs stop between
    /// steps when the deadline passes or the call is cancelled.
    func decode(_ items: [ItemInput], options: Options) async throws(EmbeddingError) -> [Result<Inputs, EmbeddingError>] {
        var results = [Result<Inputs, EmbeddingError>?](repeating: nil, count: items.count)
        var costs = [Towers.MediaCost](repeating: Towers.MediaCost(), count: items.count)
        var inputs = [Inputs](repeating: Inputs(), count: items.count)
        // Reading a video's headers may decode a frame: once the call is over its budget, no further item is read.
        var (pixels, audioSeconds) = (0, 0.0)
        for (index, item) in items.enumerated() where pixels <= budget.maxPixels && audioSeconds <= budget.maxAudioSeconds {
            if let text = item.text {
                let started = ContinuousClock.now
                let encoding = towers.text.tokenizer.encoding(text)
                (inputs[index].tokens, inputs[index].truncated, inputs[index].hasText) = (encoding.ids, encoding.truncated, true)
                metrics.tokenize.record(.now - started)
            }
            do throws(MediaFailure) {
                let started = ContinuousClock.now
                costs[index] = try towers.cost(images: item.images, audio: item.audio, video: item.video)
                if item.video != nil { metrics.videoDemux.record(.now - started) }
                (pixels, audioSeconds) = (pixels + costs[index].pixels, audioSeconds + costs[index].audioSeconds)
            } catch {
                metrics.decodeFailures.increment()
                results[index] = .failure(Self.refuse(error.error, item.label, error.what))
            }
        }
        try checkFailures(results, options)
        let admitted = items.indices.filter { results[$0] == nil }
        try budget.check(pixels: admitted.reduce(0) { $0 + costs[$1].pixels },
                         audioSeconds: admitted.reduce(0) { $0 + costs[$1].audioSeconds })

        let media = admitted.filter { !items[$0].images.isEmpty || items[$0].audio != nil || items[$0].video != nil }
        for index in admitted where !media.contains(index) { results[index] = .success(inputs[index]) }
        guard !media.isEmpty else { return results.map { $0! } }

        let flag = CancellationFlag()
        let deadline = options.deadline
        let decoded: [Result<Inputs, EmbeddingError>]? = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<[Result<Inputs, EmbeddingError>]?, Never>) in
                let collected = Locked((results: [Result<Inputs, EmbeddingError>?](repeating: nil, count: media.count),
                                        remaining: media.count))
                let jobs: [@Sendable () -> Void] = media.enumerated().map { position, index in
                    { [towers, metrics, item = items[index], cost = costs[index], input = inputs[index]] in
                        let checkpoint = { () throws(EmbeddingError) in
                            if flag.isSet { throw EmbeddingError.cancelled }
                            if ContinuousClock.now >= deadline {
                                throw EmbeddingError(status: 504, code: "timeout", message: "deadline exceeded while decoding media")
                            }
                        }
                        let result = Self.decodeMedia(item, cost: cost, into: input, towers: towers, metrics: metrics,
                                                      checkpoint: checkpoint)
                        let done = collected.withLock { state -> [Result<Inputs, EmbeddingError>]? in
                            state.results[position] = result
                            state.remaining -= 1
                            return state.remaining == 0 ? state.results.map { $0! } : nil
                        }
                        if let done { continuation.resume(returning: done) }
                    }
                }
                if !decoders.submit(jobs) { continuation.resume(returning: nil) }
            }
        } onCancel: {
            flag.set()
        }
        guard let decoded else { throw EmbeddingError.overloaded("decode") }
        for (position, index) in media.enumerated() { results[index] = decoded[position] }
        // Deadline and cancellation end the call, whatever `partial` says.
        for result in decoded {
            if case .failure(let error) = result, error.status == 504 || error.code == EmbeddingError.cancelled.code { throw error }
        }
        return results.map { $0! }
    }

    static func refuse(_ error: MediaError, _ label: String, _ what: String) -> EmbeddingError {
        switch error {
        case .tooLarge(let message): .tooLarge("media_too_large", "\(label): \(what): \(message)")
        case .unsupportedFormat(let message): .invalid("unsupported_media", "\(label): \(what): \(message)")
        case .corrupt(let message): .invalid("corrupt_media", "\(label): \(what): \(message)")
        }
    }

    /// An item's images, audio and video decoded into `input`, step by step: the video's frames after the images
    /// (the first of them its cover when the item gives no image), its soundtrack as the audio when the item gives
    /// none.
    static func decodeMedia(_ item: ItemInput, cost: Towers.MediaCost, into input: Inputs, towers: Towers,
                                    metrics: Metrics, checkpoint: () throws(EmbeddingError) -> Void) -> Result<Inputs, EmbeddingError> {
        var inputs = input
        do throws(EmbeddingError) {
            for (position, (bytes, header)) in zip(item.images, cost.imageHeaders).enumerated() {
                try checkpoint()
                let started = ContinuousClock.now
                switch try towers.imageInput(bytes, header: header, checkpoint: checkpoint) {
                case .success(let tensor): inputs.images.append(tensor)
                case .failure(let error):
                    metrics.decodeFailures.increment()
                    return .failure(refuse(error, item.label, "images[\(position)]"))
                }
                metrics.decodeImage.record(.now - started)
            }
            if let bytes = item.audio {
                try checkpoint()
                let started = ContinuousClock.now
                switch try towers.audioInput(bytes, checkpoint: checkpoint) {
                case .success(let patches):
                    (inputs.audio, inputs.audioSeconds, inputs.hasAudio) = (patches, cost.audioSeconds, true)
                case .failure(let error):
                    metrics.decodeFailures.increment()
                    return .failure(refuse(error, item.label, "audio"))
                }
                metrics.decodeAudio.record(.now - started)
            }
            if let video = item.video, let header = cost.video {
                try checkpoint()
                let started = ContinuousClock.now
                switch try towers.videoInput(video.data, cost: cost, checkpoint: checkpoint) {
                case .success(let decoded):
                    inputs.images += decoded.frames
                    (inputs.videoSeconds, inputs.framesDecoded) = (header.duration, decoded.frames.count)
                    if let patches = decoded.patches {
                        (inputs.audio, inputs.audioSeconds, inputs.hasAudio) = (patches, header.duration, true)
                    }
                    metrics.videoDecode.record(decoded.timing.decode)
                    metrics.videoConvert.record(decoded.timing.convert)
                case .failure(let error):
                    metrics.decodeFailures.increment()
                    return .failure(refuse(error, item.label, "video"))
                }
                metrics.decodeVideo.record(.now - started)
            }
        } catch {
            return .failure(error)
        }
        return .success(inputs)
    }
}
