import Foundation
import Tensor
import Testing
@testable import Media

/// WAV decoding and the log-mel front end against the fixtures of scripts/fixtures/make-audio-fixtures.py (librosa is the
/// reference for the mel spectrogram).
@Suite struct AudioTests {
    static func floats(_ name: String) throws -> [Float] {
        let bytes = try ImageFixtures.bytes("../audio/" + name)
        return stride(from: 0, to: bytes.count, by: 4).map { i in
            Float(bitPattern: UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24)
        }
    }

    static let encodings: [(String, Float, Float)] = [   // file, gain, tolerance (quantisation step)
        ("pcm8.wav", 1, 1 / 128), ("pcm16.wav", 1, 1 / 32768), ("pcm24.wav", 1, 1e-6), ("pcm32.wav", 1, 1e-7),
        ("float32.wav", 1, 0), ("float64.wav", 1, 0), ("extensible-pcm24.wav", 1, 1e-6),
        ("rifx-pcm16.wav", 1, 1 / 32768), ("stereo-pcm16.wav", 0.75, 1 / 32768),
        ("stereo-float32-extensible.wav", 0.75, 1e-7), ("odd-chunk-pcm16.wav", 1, 1 / 32768),
    ]

    @Test(arguments: encodings) func everyEncodingDecodesToTheSignal(_ name: String, gain: Float, tolerance: Float) throws {
        let audio = try WAVDecoder().decode(ImageFixtures.bytes("../audio/" + name))
        let signal = try Self.floats("signal.f32")
        #expect(audio.sampleRate == 16000)
        #expect(audio.samples.count == signal.count)
        let worst = zip(audio.samples, signal).map { abs($0 - $1 * gain) }.max() ?? 1
        #expect(worst <= tolerance * 0.5 + 1e-7, "\(name): \(worst)")
    }

    @Test func cutOffDataIsReadToTheLastWholeFrame() throws {
        let audio = try WAVDecoder().decode(ImageFixtures.bytes("../audio/cut-off-pcm16.wav"))
        #expect(audio.samples.count == 4000)
    }

    @Test func limitsAndCorruptHeaders() throws {
        let bytes = try ImageFixtures.bytes("../audio/pcm16.wav")
        #expect(throws: MediaError.tooLarge("audio is 1 s long; at most 0 s are accepted")) {
            try WAVDecoder(maxDuration: 0.1).decode(bytes)
        }
        #expect(throws: MediaError.self) { try WAVDecoder().decode(Array("RIFF\0\0\0\0WAVE".utf8)) }
        #expect(throws: MediaError.self) { try WAVDecoder().decode(Array("OggS".utf8)) }
        for length in 0...45 {   // every cut inside the 44 bytes of headers, and one byte short of a whole frame
            #expect(throws: MediaError.self, "cut at \(length)") { try WAVDecoder().decode(Array(bytes[..<length])) }
        }
        var zeroChannels = bytes
        zeroChannels[22] = 0
        #expect(throws: MediaError.self) { try WAVDecoder().decode(zeroChannels) }
        var generator = SplitMix64(seed: 9)
        for _ in 0..<300 {   // random damage to the headers: an error or audio, never a crash
            var damaged = bytes
            damaged[Int(generator.next() % 60)] = UInt8(truncatingIfNeeded: generator.next())
            _ = try? WAVDecoder().decode(damaged)
        }
    }

    /// A WAV file: `channels` × `frames` samples at `rate`, PCM 16 (format 1) or float 32 (format 3).
    static func wav(rate: Int, frames: Int, float: Bool = false, sample: (Int) -> Float = { _ in 0 }) -> [UInt8] {
        var bytes: [UInt8] = []
        func u32(_ v: Int) { bytes += (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
        func u16(_ v: Int) { bytes += (0..<2).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
        let width = float ? 4 : 2
        bytes += Array("RIFF".utf8); u32(36 + frames * width); bytes += Array("WAVEfmt ".utf8)
        u32(16); u16(float ? 3 : 1); u16(1); u32(rate); u32(rate * width); u16(width); u16(width * 8)
        bytes += Array("data".utf8); u32(frames * width)
        for i in 0..<frames {
            if float { u32(Int(sample(i).bitPattern)) } else { u16(Int(Int16(clamping: Int(sample(i) * 32767)))) }
        }
        return bytes
    }

    /// A tiny file declaring a very low rate would count as minutes and cost seconds of resampling: refused, as
    /// is any rate below 4,000 Hz, from the header.
    @Test func sampleRatesBelow4000HzAreRefused() throws {
        let oneHertz = Self.wav(rate: 1, frames: 300)
        #expect(throws: MediaError.corrupt("WAV sample rate is 1 Hz; at least 4000 Hz is accepted")) {
            try WAVDecoder().header(of: oneHertz)
        }
        #expect(throws: MediaError.self) { try WAVDecoder().decode(Self.wav(rate: 3999, frames: 300)) }
        #expect(try WAVDecoder().decode(Self.wav(rate: 4000, frames: 300)).sampleRate == 4000)
        // The header tells the duration without decoding a sample.
        #expect(try WAVDecoder().header(of: Self.wav(rate: 8000, frames: 4000)).duration == 0.5)
    }

    /// NaN, infinite or absurdly large float samples would turn the spectrogram and every vector non-finite.
    @Test func nonFiniteFloatSamplesAreRefused() throws {
        for bad: Float in [.nan, .infinity, -.infinity, 1e30] {
            let bytes = Self.wav(rate: 16000, frames: 100, float: true) { $0 == 50 ? bad : 0.25 }
            #expect(throws: MediaError.self, "\(bad)") { try WAVDecoder().decode(bytes) }
        }
        let fine = try WAVDecoder().decode(Self.wav(rate: 16000, frames: 100, float: true) { _ in 0.25 })
        #expect(fine.samples.allSatisfy { $0 == 0.25 })
    }

    /// Samples far outside [-1, 1] (up to the decoder's bound) give mel power past float16's range: the log-mel input
    /// stays finite (found by fuzz-wav).
    @Test func loudSamplesGiveFiniteLogMel() throws {
        let loud = try WAVDecoder().decode(Self.wav(rate: 16000, frames: 16000, float: true) { $0 % 2 == 0 ? 60000 : -60000 })
        let mel = MelSpectrogram.musicnn()
        #expect(mel.power(loud.samples).contains { $0 > Float(Float16.greatestFiniteMagnitude) })
        #expect(mel.musicnnInput(loud.samples).allSatisfy { $0.isFinite })
    }

    /// The mel power spectrogram within 1e-3 relative of librosa's (on bins above 1e-6 of the frame's peak).
    @Test(arguments: ["signal", "speech"]) func melMatchesLibrosa(_ name: String) throws {
        let samples = name == "signal" ? try Self.floats("signal.f32")
            : try WAVDecoder().decode(ImageFixtures.bytes("../audio/speech.wav")).samples
        let expected = try Self.floats("\(name).mel.f32")
        let mel = MelSpectrogram.musicnn()
        let ours = mel.power(samples)
        #expect(ours.count == expected.count, "\(ours.count) vs \(expected.count)")
        let peak = expected.max()!
        var worst: Float = 0
        for (a, b) in zip(ours, expected) where b > peak * 1e-6 {
            worst = max(worst, abs(a - b) / b)
        }
        #expect(worst <= 1e-3, "\(name): worst relative difference \(worst)")
        let logWorst = zip(ours, expected).map { abs(log10(10000 * $0 + 1) - log10(10000 * $1 + 1)) }.max()!
        #expect(logWorst <= 1e-3, "\(name): worst log-mel difference \(logWorst)")
        print("\(name): mel vs librosa worst relative \(worst), log-mel worst absolute \(logWorst)")
    }
}

@Suite struct ResamplerTests {
    /// Against librosa's `resample(..., res_type="kaiser_best")` (resampy), from 44.1, 48, 22.05 and 8 kHz.
    @Test(arguments: [44100, 48000, 22050, 8000]) func matchesLibrosa(_ rate: Int) throws {
        let audio = try WAVDecoder().decode(ImageFixtures.bytes("../audio/rate-\(rate).wav"))
        #expect(audio.sampleRate == rate)
        let expected = try AudioTests.floats("rate-\(rate).16k.f32")
        let ours = Resampler.resample(audio, to: 16000)
        #expect(ours.sampleRate == 16000 && ours.samples.count == expected.count, "\(ours.samples.count) vs \(expected.count)")
        let worst = zip(ours.samples, expected).map { abs($0 - $1) }.max() ?? 1
        #expect(worst <= 1e-4, "\(rate) Hz: worst difference \(worst)")
        print("resample \(rate) → 16000 Hz vs librosa/resampy: worst difference \(worst)")
    }

    /// Rates without a useful common divisor interpolate the filter per tap: same result as the polyphase filters.
    @Test func perTapInterpolationAgreesWithPolyphase() throws {
        let audio = try WAVDecoder().decode(ImageFixtures.bytes("../audio/rate-44100.wav"))
        let polyphase = Resampler.resample(audio, to: 16000)
        let direct = Resampler.resample(audio, to: 16000, maxPhases: 0)
        #expect(zip(polyphase.samples, direct.samples).map { abs($0 - $1) }.max()! <= 1e-6)
    }

    @Test func sameRateIsUnchanged() {
        let audio = Audio(samples: [0.1, -0.2, 0.3], sampleRate: 16000)
        #expect(Resampler.resample(audio, to: 16000) == audio)
    }
}
