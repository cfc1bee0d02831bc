import CoreMetrics
import Foundation
internal import Models

/// The towers' jobs for one call, ConSE and fusion.
extension EmbeddingPipeline {
    enum TowerResult: Sendable {
        case text(Result<([BertEncoder.Encoding], TowerTiming), EmbeddingError>)
        case image(Result<([ImageOutput], TowerTiming), EmbeddingError>)
        case audio(Result<([AudioOutput], TowerTiming), EmbeddingError>)
    }

    /// Every item's modality vectors and fused embedding: each tower gets the request's jobs at once; the first
    /// failure cancels the rest.
    func run(_ inputs: [Inputs], options: Options) async throws(EmbeddingError)
        -> ([(Modalities, [Float])], [TowerFeatures], TowerTiming) {
        let texts = inputs.indices.filter { inputs[$0].hasText }
        let imageOwners = inputs.indices.flatMap { repeatElement($0, count: inputs[$0].images.count) }
        let recordings = inputs.indices.filter { inputs[$0].hasAudio }
        let (priority, deadline) = (options.priority, options.deadline)

        var textOutputs: [BertEncoder.Encoding] = [], imageOutputs: [ImageOutput] = [], audioOutputs: [AudioOutput] = []
        var timing = TowerTiming()
        func add(_ tower: TowerTiming) {
            timing.queue = max(timing.queue, tower.queue)
            timing.inference += tower.inference
        }
        let failure: EmbeddingError? = await withTaskGroup(of: TowerResult.self) { group in
            if !texts.isEmpty {
                let jobs = texts.map { (inputs[$0].tokens, inputs[$0].tokens.count) }
                group.addTask { [text] in
                    do throws(EmbeddingError) { return .text(.success(try await text.submit(jobs, priority: priority, deadline: deadline))) }
                    catch { return .text(.failure(error)) }
                }
            }
            if !imageOwners.isEmpty {
                let jobs = inputs.flatMap(\.images).map { ($0, 1) }
                group.addTask { [image] in
                    do throws(EmbeddingError) { return .image(.success(try await image.submit(jobs, priority: priority, deadline: deadline))) }
                    catch { return .image(.failure(error)) }
                }
            }
            if !recordings.isEmpty {
                let jobs = recordings.map { (inputs[$0].audio, inputs[$0].audio.count) }
                group.addTask { [audio] in
                    do throws(EmbeddingError) { return .audio(.success(try await audio.submit(jobs, priority: priority, deadline: deadline))) }
                    catch { return .audio(.failure(error)) }
                }
            }
            for await result in group {
                do throws(EmbeddingError) {
                    switch result {
                    case .text(let result): (textOutputs, _) = try result.get(); add(try result.get().1)
                    case .image(let result): (imageOutputs, _) = try result.get(); add(try result.get().1)
                    case .audio(let result): (audioOutputs, _) = try result.get(); add(try result.get().1)
                    }
                } catch {
                    group.cancelAll()
                    return error
                }
            }
            return nil
        }
        if let failure { throw failure }

        let started = ContinuousClock.now
        var modalities = [Modalities](repeating: Modalities(), count: inputs.count)
        var textStates = [[[Float]]](repeating: [], count: inputs.count)
        for (position, index) in texts.enumerated() {
            modalities[index].text = textOutputs[position].embedding
            textStates[index] = textOutputs[position].tokenStates
        }
        // Frames and patches: probabilities averaged before ConSE.
        var frames = [[ImageOutput]](repeating: [], count: inputs.count)
        for (owner, output) in zip(imageOwners, imageOutputs) { frames[owner].append(output) }
        for index in inputs.indices where !frames[index].isEmpty {
            modalities[index].image = towers.imageSpace.embed(probabilities: Self.mean(frames[index].map(\.probabilities)))
        }
        var patches = [[[Float]]](repeating: [], count: inputs.count)
        for (position, index) in recordings.enumerated() {
            modalities[index].audio = towers.audioSpace.embed(probabilities: Self.mean(audioOutputs[position].tags))
            patches[index] = audioOutputs[position].features
        }
        let fused = inputs.indices.map { index in
            switch fusion {
            case .late(let late):
                return late.fuse(modalities[index])
            case .qformer(let qformer):
                return qformer.fuse(text: textStates[index], image: frames[index].map(\.features), audio: patches[index])
            }
        }
        metrics.fusion.record(.now - started)
        // The towers' raw outputs, frames and patches averaged.
        let features = inputs.indices.map { index in
            TowerFeatures(image: frames[index].isEmpty ? nil : Self.mean(frames[index].map(\.features)),
                          audio: patches[index].isEmpty ? nil : Self.mean(patches[index]))
        }
        return (Array(zip(modalities, fused)), features, timing)
    }

    static func mean(_ vectors: [[Float]]) -> [Float] {
        guard let first = vectors.first else { return [] }
        var sum = [Float](repeating: 0, count: first.count)
        for vector in vectors { for j in sum.indices { sum[j] += vector[j] } }
        return sum.map { $0 / Float(vectors.count) }
    }
}
