import Foundation
import Testing
@testable import Service
import TestSupport

/// `"video"` items and compressed `"audio"` through /embed: a video is its sampled frames and its soundtrack, and
/// hostile containers are refused without harming the process.
extension ServiceLiveTests {
    static let videoFixtures = "Tests/MediaTests/Fixtures/video/"

    func videoConfiguration() -> ServiceConfiguration {
        var configuration = testConfiguration()
        configuration.limits.maxImagesPerItem = 8
        configuration.audio.maxSeconds = 10
        return configuration
    }

    struct VideoEmbedBody: Decodable {
        struct Item: Decodable {
            struct Vectors: Decodable { var text: [Float]?, image: [Float]?, audio: [Float]? }
            var id: String
            var embedding: [Float]
            var modalities: Vectors
        }
        struct Usage: Decodable { var images: Int, audio_seconds: Double, video_seconds: Double, frames_decoded: Int }
        var data: [Item]
        var usage: Usage
    }

    func embedBody(_ json: String, port: Int) throws -> (Int, VideoEmbedBody?, String) {
        let client = try RawClient(port: port)
        client.send("POST /embed HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    + "Content-Length: \(json.utf8.count)\r\n\r\n\(json)")
        let response = try client.readResponse()
        return (response.status, try? JSONDecoder().decode(VideoEmbedBody.self, from: Data(response.body)),
                String(decoding: response.body.prefix(400), as: UTF8.self))
    }

    /// A video item equals the same item given its frames as images (the ffmpeg CLI's decode of the frames at the
    /// cover's and the five sampled times, as PNG) and its soundtrack as a WAV (the CLI's decode): within 1e-5.
    @Test func aVideoIsItsFramesAndItsSoundtrack() async throws {
        let (service, port) = try await makeService(videoConfiguration())
        let frames = try (0..<6).map { index in
            #"{"data": "\#(try base64(Self.videoFixtures + "h264-aac.mp4.\(index).png"))"}"#
        }
        let json = """
            {"items": [{"id": "video", "text": "a cat", "video": {"data": "\(try base64(Self.videoFixtures + "h264-aac.mp4"))"}},
                       {"id": "parts", "text": "a cat", "images": [\(frames.joined(separator: ","))],
                        "audio": {"data": "\(try base64(Self.videoFixtures + "h264-aac.mp4.soundtrack.wav"))"}}],
             "return": ["embedding", "modalities"], "store": false}
            """
        let (status, body, text) = try embedBody(json, port: port)
        #expect(status == 200, "\(text)")
        let (video, parts) = try (#require(body?.data.first), #require(body?.data.last))
        for (a, b) in [(video.embedding, parts.embedding), (video.modalities.image!, parts.modalities.image!),
                       (video.modalities.audio!, parts.modalities.audio!)] {
            #expect(zip(a, b).map { abs($0 - $1) }.max()! <= 1e-5)
        }
        #expect(body?.usage.video_seconds == 2 && body?.usage.frames_decoded == 6 && body?.usage.images == 12)
        // The video's stages, timed.
        let metrics = try get("/metrics", port: port).body
        for series in [#"omniembed_decode_seconds_count{modality="video"} 1"#, #"omniembed_video_stage_seconds_count{stage="demux"} 1"#,
                       #"omniembed_video_stage_seconds_count{stage="decode"} 1"#, #"omniembed_video_stage_seconds_count{stage="convert"} 1"#] {
            #expect(metrics.contains(series), "\(series)")
        }
        await service.shutdown()
    }

    /// The same recording as MP3, AAC, Vorbis, Opus and FLAC: each audio vector within cosine 0.99 of the WAV's.
    @Test func compressedAudioLandsOnItsWAV() async throws {
        let (service, port) = try await makeService(videoConfiguration())
        let names = ["melody.mp3", "melody.m4a", "melody.ogg", "melody.opus", "melody.flac"]
        let items = try names.map { name in #"{"id": "\#(name)", "audio": {"data": "\#(try base64(Self.videoFixtures + name))"}}"# }
            + [#"{"id": "wav", "audio": {"data": "\#(try base64("Tests/ModelsTests/Fixtures/musicnn/melody.wav"))"}}"#]
        let (status, body, text) = try embedBody(#"{"items": [\#(items.joined(separator: ","))], "return": ["embedding", "modalities"], "store": false}"#, port: port)
        #expect(status == 200, "\(text)")
        let vectors = (body?.data ?? []).compactMap { $0.modalities.audio }
        try #require(vectors.count == 6)
        for (name, vector) in zip(names, vectors) {
            let cosine = zip(vector, vectors[5]).map(*).reduce(0, +)
            print("audio vector of \(name) against the WAV's: cosine \(cosine)")
            #expect(cosine >= 0.99, "\(name)")
        }
        await service.shutdown()
    }

    /// Truncated videos, random bytes after the header, a header declaring 60000 × 60000 and one declaring a
    /// billion frames: 4xx with the usual error body, and the service still embeds.
    @Test func hostileVideosAreRefusedAndTheServiceLives() async throws {
        let (service, port) = try await makeService(videoConfiguration())
        let file = [UInt8](try Data(contentsOf: URL(fileURLWithPath: repository(Self.videoFixtures + "mjpeg-pcm.mov"))))
        func patched(_ atom: String, at offset: Int, _ bytes: [UInt8]) -> [UInt8] {
            var copy = file
            let start = (0..<(file.count - 4)).first { file[$0..<($0 + 4)].elementsEqual(atom.utf8) }!
            copy.replaceSubrange((start + offset)..<(start + offset + bytes.count), with: bytes)
            return copy
        }
        var generator = SystemRandomNumberGenerator()
        var hostile: [(String, [UInt8], Set<Int>)] = (1..<10).map { ("cut at \($0)0%", Array(file.prefix(file.count * $0 / 10)), [200, 422]) }
        hostile.append(("random bytes", Array(file.prefix(2048)) + (2048..<file.count).map { _ in UInt8.random(in: 0...255, using: &generator) }, [200, 422]))
        hostile.append(("60000 × 60000", patched("stsd", at: 44, [0xEA, 0x60, 0xEA, 0x60]), [413]))
        hostile.append(("a billion frames", patched("stts", at: 12, [0x3B, 0x9A, 0xCA, 0x00]), [413]))
        hostile.append(("not a container", Array("hello".utf8), [422]))
        hostile.append(("an unknown codec", patched("stsd", at: 16, Array("zzzz".utf8)), [422]))
        for (name, bytes, statuses) in hostile {
            let (status, body) = try post("/embed", port: port, json: #"{"items": [{"id": "v", "video": {"data": "\#(Data(bytes).base64EncodedString())"}}], "store": false}"#)
            #expect(statuses.contains(status), "\(name): \(status) \(body)")
            if status != 200 {
                #expect(["corrupt_media", "media_too_large", "unsupported_media"].contains(errorCode(body) ?? ""), "\(name): \(body)")
            }
            if name == "an unknown codec" {
                let message = (body["error"] as? [String: Any])?["message"] as? String ?? ""
                #expect(errorCode(body) == "unsupported_media" && message.contains("zzzz"), "\(body)")
            }
        }
        let (status, body) = try post("/embed", port: port, json: #"{"items": [{"id": "v", "video": {"data": "\#(Data(file).base64EncodedString())", "frames": 9}}]}"#)
        #expect(status == 413 && errorCode(body) == "too_many_images", "\(body)")
        let negative = try post("/embed", port: port, json: #"{"items": [{"id": "v", "video": {"data": "\#(Data(file).base64EncodedString())", "frames": -1}}]}"#)
        #expect(negative.status == 422 && errorCode(negative.body) == "invalid_frames", "\(negative.body)")
        #expect(try get("/healthz", port: port).status == 200)
        let after = try post("/embed", port: port, json: #"{"items": [{"id": "v", "video": {"data": "\#(Data(file).base64EncodedString())", "frames": 2}}], "store": false}"#)
        #expect(after.status == 200, "\(after.body)")
        await service.shutdown()
    }

    /// A video as an inline /match candidate is embedded as /embed embeds it: against the same video stored in the
    /// history, its cosine is 1.
    @Test func aVideoIsAnInlineMatchCandidate() async throws {
        let (service, port) = try await makeService(videoConfiguration())
        let video = try base64(Self.videoFixtures + "vp9-opus.webm")
        let stored = try post("/embed", port: port, json: #"{"items": [{"id": "clip", "video": {"data": "\#(video)", "frames": 3}}]}"#)
        #expect(stored.status == 200, "\(stored.body)")
        let (status, body) = try post("/match", port: port, json: """
            {"user": {"history": ["clip"]}, "candidates": [{"id": "again", "video": {"data": "\(video)", "frames": 3}},
             {"id": "other", "text": "a rocket launch"}], "features": ["max_cos"]}
            """)
        #expect(status == 200, "\(body)")
        let rows = try #require(body["data"] as? [[String: Any]])
        let (again, other) = (try #require(rows.first?["max_cos"] as? Double), try #require(rows.last?["max_cos"] as? Double))
        #expect(abs(again - 1) < 1e-5 && other < 0.9, "\(rows)")
        await service.shutdown()
    }

    /// `limits.maxVideoBytes` and `limits.maxVideoSeconds`, read as settings and enforced: 413 naming the item.
    @Test func videoLimitsAreSettingsAndEnforced() async throws {
        let loaded = try await ServiceConfiguration.load(file: ServiceConfigurationTests.defaultFile,
                                                         environment: ["OMNIEMBED_LIMITS_MAX_VIDEO_SECONDS": "1",
                                                                       "OMNIEMBED_LIMITS_MAX_VIDEO_BYTES": "30000"])
        #expect(loaded.limits.maxVideoSeconds == 1 && loaded.limits.maxVideoBytes == 30000)
        #expect(try loaded.pipeline.maxVideoSeconds == 1 && loaded.pipeline.maxVideoBytes == 30000)
        var configuration = videoConfiguration()
        (configuration.limits.maxVideoSeconds, configuration.limits.maxVideoBytes) = (1, 30000)
        let (service, port) = try await makeService(configuration)
        for (name, expected) in [("h264-aac.mp4", "over 30000 bytes"), ("no-audio.mp4", "2.0 s (at most 1.0 s)")] {
            let (status, body) = try post("/embed", port: port, json: #"{"items": [{"id": "v", "video": {"data": "\#(try base64(Self.videoFixtures + name))"}}]}"#)
            let message = (body["error"] as? [String: Any])?["message"] as? String ?? ""
            #expect(status == 413 && errorCode(body) == "media_too_large" && message.contains(expected) && message.contains("items[0] (v)"),
                    "\(name): \(body)")
        }
        await service.shutdown()
    }

    /// Reading a video's headers may decode a frame, so a call stops reading its items' headers once it is over its
    /// decoding budget: 413 `request_budget_exceeded`, and the items past that point never opened.
    @Test func aCallOverItsBudgetStopsReadingVideos() async throws {
        var configuration = videoConfiguration()
        // Each item: 6 frames of 128 × 96 = 73,728 pixels; the third goes over.
        configuration.embedding.pipeline.budget.maxPixels = 150_000
        let (service, port) = try await makeService(configuration)
        let video = try base64(Self.videoFixtures + "no-audio.mp4")
        let items = (0..<10).map { #"{"id": "v\#($0)", "video": {"data": "\#(video)"}}"# }
        let (status, body) = try post("/embed", port: port, json: #"{"items": [\#(items.joined(separator: ","))], "store": false}"#)
        #expect(status == 413 && errorCode(body) == "request_budget_exceeded", "\(body)")
        #expect(try get("/metrics", port: port).body.contains(#"omniembed_video_stage_seconds_count{stage="demux"} 3"#))
        await service.shutdown()
    }
}
