import Foundation
import Testing
@testable import Media

/// Videos and compressed audio against the ffmpeg CLI's decode of the same files (scripts/fixtures/make-video-fixtures.py).
@Suite struct VideoDecoderTests {
    static let root = Bundle.module.url(forResource: "Fixtures/video", withExtension: nil)!

    static func bytes(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: root.appendingPathComponent(name))) }

    struct Expected: Decodable {
        struct Frame: Decodable { var seconds: Double; var png: String }
        var duration: Double
        var audio: Bool
        /// Decoded at 1/2^lowres size by the CLI, as ours decodes MJPEG whose shorter side stays at least 256.
        var lowres: Int?
        var frames: [Frame]
    }

    static let expected: [String: Expected] = {
        let data = try! Data(contentsOf: root.appendingPathComponent("expected.json"))
        return try! JSONDecoder().decode([String: Expected].self, from: data)
    }()

    static let videos = ["h264-aac.mp4", "vp9-opus.webm", "mjpeg-pcm.mov", "no-audio.mp4", "rotated.mp4", "odd-size.webm", "vfr.mkv",
                         "mjpeg-large.mov"]

    /// Each frame shown at a time equals the CLI's `-ss` decode of it in rgb24 within 1 per channel, rotated as the
    /// CLI rotates it.
    @Test(arguments: videos) func framesMatchTheCLI(_ name: String) throws {
        let expected = try #require(Self.expected[name])
        let bytes = try Self.bytes(name)
        let header = try VideoDecoder().header(of: bytes)
        #expect(abs(header.duration - expected.duration) < 0.05 && header.hasAudio == expected.audio)
        // The service's setting: reduced size where the decoder allows it (only MJPEG here, and only the large one).
        let decoder = VideoDecoder(minimumShorterSide: 256)
        let frames = try decoder.frames(bytes, at: expected.frames.map(\.seconds), checkpoint: { () throws(CancellationError) in }).get()
        var worst = 0
        for (frame, reference) in zip(frames, expected.frames) {
            let cli = try ImageDecoder().decode(Self.bytes(reference.png))
            try #require(frame.image.width == cli.width && frame.image.height == cli.height,
                         "\(name) at \(reference.seconds) s: \(frame.image.width)×\(frame.image.height), the CLI's \(cli.width)×\(cli.height)")
            let difference = zip(frame.image.pixels, cli.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
            worst = max(worst, difference)
            #expect(frame.seconds >= reference.seconds - 1e-6 && frame.decoded >= 1)
        }
        if let lowres = expected.lowres {
            #expect(frames.allSatisfy { $0.image.width == header.width >> lowres && $0.image.height == header.height >> lowres })
        }
        print("video \(name): \(frames.count) frames, worst difference from the ffmpeg CLI \(worst)")
        #expect(worst <= 1, "\(name)")
        if name == "rotated.mp4" {
            // The CLI's -90° display matrix: turned a quarter counter-clockwise, shown 96 wide and 128 high.
            #expect(header.rotation == 270 && header.frameSize?.width == 96 && header.frameSize?.height == 128)
            #expect(frames.allSatisfy { $0.image.width == 96 && $0.image.height == 128 })
        }
    }

    /// The soundtrack, decoded and mixed to mono at its own rate, equals the CLI's float decode of it.
    @Test func theSoundtrackMatchesTheCLI() throws {
        let audio = try VideoDecoder().audio(Self.bytes("h264-aac.mp4"))
        let cli = try WAVDecoder().decode(Self.bytes("h264-aac.mp4.soundtrack.wav"))
        #expect(audio.sampleRate == cli.sampleRate && audio.samples.count == cli.samples.count,
                "\(audio.sampleRate) Hz, \(audio.samples.count) samples; the CLI's \(cli.sampleRate), \(cli.samples.count)")
        let worst = zip(audio.samples, cli.samples).map { abs($0 - $1) }.max() ?? 1
        #expect(worst <= 1e-6, "\(worst)")
    }

    /// The same recording as MP3, AAC, Vorbis, Opus and FLAC decodes to the WAV's length and rate, and its log-mel
    /// spectrogram (what the audio tower sees) stays within cosine 0.99 of the WAV's.
    @Test(arguments: ["melody.mp3", "melody.m4a", "melody.ogg", "melody.opus", "melody.flac"])
    func compressedAudioLandsOnItsWAV(_ name: String) throws {
        let melody = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../ModelsTests/Fixtures/musicnn/melody.wav")
        let wav = try WAVDecoder().decode([UInt8](Data(contentsOf: melody)))
        let audio = try VideoDecoder().audio(Self.bytes(name))
        #expect(abs(audio.duration - wav.duration) < 0.05, "\(name): \(audio.duration) s")
        let mel = MelSpectrogram(sampleRate: 16000, fftSize: 512, hop: 256, bands: 96)
        let a = mel.musicnnInput(Resampler.resample(audio, to: 16000).samples), b = mel.musicnnInput(wav.samples)
        let n = min(a.count, b.count)
        let dot = (0..<n).reduce(0.0) { $0 + Double(a[$1]) * Double(b[$1]) }
        let cosine = dot / ((0..<n).reduce(0.0) { $0 + Double(a[$1] * a[$1]) } * (0..<n).reduce(0.0) { $0 + Double(b[$1] * b[$1]) }).squareRoot()
        print("audio \(name): \(audio.sampleRate) Hz, \(audio.duration) s, log-mel cosine to the WAV \(cosine)")
        #expect(cosine >= 0.99, "\(name): \(cosine)")
    }

    @Test func aVideoWithoutAudioOrAudioWithoutVideoSaysSo() throws {
        #expect(throws: MediaError.corrupt("no audio stream")) { try VideoDecoder().audio(Self.bytes("no-audio.mp4")) }
        #expect(throws: MediaError.corrupt("no video stream")) {
            try VideoDecoder().frames(Self.bytes("melody.m4a"), at: [0], checkpoint: { () throws(CancellationError) in }).get()
        }
        let header = try VideoDecoder().header(of: Self.bytes("melody.m4a"))
        #expect(!header.hasVideo && header.hasAudio && header.frameSize == nil && header.audioCodec == "aac")
    }

    /// Limits are checked on the headers, before anything is decoded.
    @Test func limitsAreCheckedOnTheHeaders() throws {
        let bytes = try Self.bytes("h264-aac.mp4")
        let header = try VideoDecoder().header(of: bytes)
        #expect(header.width == 128 && header.height == 96 && header.videoCodec == "h264" && header.audioCodec == "aac")
        #expect(throws: MediaError.tooLarge("\(bytes.count) bytes (at most 1000)")) { try VideoDecoder(maxBytes: 1000).header(of: bytes) }
        #expect(throws: MediaError.tooLarge("2.0 s (at most 1.5 s)")) { try VideoDecoder(maxSeconds: 1.5).header(of: bytes) }
        #expect(throws: MediaError.tooLarge("frames of 128 × 96 pixels (at most 10000)")) { try VideoDecoder(maxPixels: 10000).header(of: bytes) }
        #expect(throws: MediaError.tooLarge("2 streams (at most 1)")) { try VideoDecoder(maxStreams: 1).header(of: bytes) }
        #expect(throws: MediaError.tooLarge("more than 2 frames to decode to reach 0.880 s")) {
            try VideoDecoder(maxFramesPerSeek: 2).frames(bytes, at: [0.88], checkpoint: { () throws(CancellationError) in }).get()
        }
    }

    /// Things that are not videos: a JPEG, a WAV (its own decoder reads it), random bytes, nothing.
    @Test func whatIsNotAContainerIsRefused() throws {
        var random = SystemRandomNumberGenerator()
        for bytes in [try ImageFixtures.bytes("preprocess/cat.jpg"), try ImageFixtures.bytes("../audio/pcm16.wav"),
                      (0..<4096).map { _ in UInt8.random(in: 0...255, using: &random) }, []] {
            #expect(throws: MediaError.self) { try VideoDecoder().header(of: bytes) }
        }
    }

    /// Every 10% cut of each file, and random bytes after its first kilobyte: a MediaError or frames, never a crash.
    @Test(arguments: videos) func truncatedAndDamagedFilesAreRefusedOrRead(_ name: String) throws {
        let bytes = try Self.bytes(name)
        var generator = SystemRandomNumberGenerator()
        var variants = (1..<10).map { Array(bytes.prefix(bytes.count * $0 / 10)) }
        variants.append(Array(bytes.prefix(1024)) + (1024..<bytes.count).map { _ in UInt8.random(in: 0...255, using: &generator) })
        for variant in variants {
            do {
                let header = try VideoDecoder().header(of: variant)
                if header.hasVideo {
                    _ = try VideoDecoder().frames(variant, at: [0, header.duration / 2], checkpoint: { () throws(CancellationError) in }).get()
                }
                if header.hasAudio { _ = try VideoDecoder().audio(variant) }
            } catch is MediaError {
            }
        }
    }
}

/// Containers whose headers lie: frames of 60000 × 60000, a billion frames over two seconds. Refused as too large
/// from the headers, before a frame is decoded.
@Suite struct VideoBombTests {
    /// The MJPEG MOV with its first `atom` patched at `offset` (from the atom's type) by `bytes`.
    static func patched(_ atom: String, at offset: Int, _ bytes: [UInt8]) throws -> [UInt8] {
        var file = try VideoDecoderTests.bytes("mjpeg-pcm.mov")
        let type = Array(atom.utf8)
        let start = try #require((0..<(file.count - 4)).first { file[$0..<($0 + 4)].elementsEqual(type) })
        file.replaceSubrange((start + offset)..<(start + offset + bytes.count), with: bytes)
        return file
    }

    @Test func absurdDimensionsAreRefusedFromTheHeader() throws {
        // stsd: type, version/flags, entry count, then the sample entry (size, 'jpeg', 6 reserved, data reference,
        // version, revision, vendor, temporal and spatial quality) and its width and height; and every frame's
        // JPEG start-of-frame (marker, length, precision, then height and width), as probing decodes one.
        var bomb = try Self.patched("stsd", at: 4 + 4 + 4 + 32, [0xEA, 0x60, 0xEA, 0x60])
        for i in 0..<(bomb.count - 9) where bomb[i] == 0xFF && bomb[i + 1] == 0xC0 && bomb[i + 4] == 8 {
            bomb.replaceSubrange((i + 5)..<(i + 9), with: [0xEA, 0x60, 0xEA, 0x60])
        }
        #expect(throws: MediaError.tooLarge("frames of 60000 × 60000 pixels (at most 40000000)")) { try VideoDecoder().header(of: bomb) }
    }

    @Test func aBillionFramesAreRefusedFromTheHeader() throws {
        // stts: type, version/flags, entry count, then the first entry's sample count.
        let bomb = try Self.patched("stts", at: 4 + 4 + 4, [0x3B, 0x9A, 0xCA, 0x00])
        do {
            _ = try VideoDecoder().header(of: bomb)
            Issue.record("a billion frames were accepted")
        } catch {
            print("a billion frames: \(error)")
            guard case .tooLarge = error else { Issue.record("\(error)"); return }
        }
    }
}

/// A checkpoint that throws stops decoding between frames, inside a seek and inside a soundtrack: the caller's
/// deadline holds while FFmpeg decodes.
@Suite struct VideoCheckpointTests {
    struct Stop: Error, Equatable {}

    @Test func aThrowingCheckpointStopsTheDecodersMidway() throws {
        let bytes = try VideoDecoderTests.bytes("no-audio.mp4")   // a keyframe every 25 frames
        var calls = 0
        let frames = try VideoDecoder().frames(bytes, at: [0.9], checkpoint: { () throws(Stop) in
            calls += 1
            if calls > 1 { throw Stop() }                      // the first call is before the seek
        })
        #expect(frames.map { _ in 0 } == .failure(Stop()) && calls == 2)
        var audioCalls = 0
        let audio = try VideoDecoder().audio(VideoDecoderTests.bytes("melody.flac"), checkpoint: { () throws(Stop) in
            audioCalls += 1
            throw Stop()
        })
        #expect(audio.map { _ in 0 } == .failure(Stop()) && audioCalls == 1)
    }
}

extension VideoBombTests {
    /// A codec without a decoder here is refused naming it.
    @Test func anUnknownCodecIsNamed() throws {
        let unknown = try Self.patched("stsd", at: 4 + 4 + 4 + 4, Array("zzzz".utf8))
        #expect(throws: MediaError.unsupportedFormat("unsupported codec or format: an unknown codec (tag zzzz)")) {
            try VideoDecoder().frames(unknown, at: [0], checkpoint: { () throws(Never) in }).get()
        }
    }
}
