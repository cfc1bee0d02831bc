/// A decoded recording: mono samples in [-1, 1] and their rate.
public struct Audio: Sendable, Equatable {
    public var samples: [Float]
    public var sampleRate: Int
    public var duration: Double { Double(samples.count) / Double(sampleRate) }

    public init(samples: [Float], sampleRate: Int) {
        self.samples = samples
        self.sampleRate = sampleRate
    }
}

/// WAV decoding: RIFF (little-endian) and RIFX (big-endian); PCM 8 (unsigned), 16, 24 and 32 bits, IEEE float 32 and
/// 64, plain or WAVE_FORMAT_EXTENSIBLE; any channel count, mixed to mono by averaging. Samples are scaled as
/// libsndfile (and so librosa) scales them: integers divided by 2^(bits-1), 8-bit offset by 128.
///
/// The duration limit is checked before samples are converted. A data chunk shorter than it declares (a stream cut
/// off, or a writer that never filled in the size) is read up to the last whole frame; one without a whole frame
/// is an error.
public struct WAVDecoder: Sendable {
    public var maxDuration: Double
    /// Lower rates are refused: a recording's cost grows with its duration at 16 kHz, so a tiny file declaring
    /// 1 Hz would buy minutes of resampling and spectrogram work for a few hundred bytes.
    public static let minSampleRate = 4000
    /// Float samples beyond this are refused: they are far outside [-1, 1] and their squares would overflow the
    /// spectrogram.
    static let maxFloatMagnitude: Float = 65536

    public init(maxDuration: Double = 600) {
        self.maxDuration = maxDuration
    }

    enum Encoding { case pcm, float }

    /// What the headers say, read without converting a sample.
    public struct Header: Sendable, Equatable {
        public var sampleRate: Int
        public var channels: Int
        public var frames: Int
        public var duration: Double { Double(frames) / Double(sampleRate) }
        var encoding: Encoding
        var bits: Int
        var blockAlign: Int
        var bigEndian: Bool
        /// Where the first frame starts.
        var dataOffset: Int
    }

    /// Whether `bytes` claim to be WAV (a RIFF or RIFX header): what this decoder, not FFmpeg's, reads.
    public static func isWAV(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 4 && (bytes[0..<4].elementsEqual("RIFF".utf8) || bytes[0..<4].elementsEqual("RIFX".utf8))
    }

    /// The header, with the sample rate and duration limits checked: nothing is decoded.
    public func header(of bytes: [UInt8]) throws(MediaError) -> Header {
        guard bytes.count >= 12 else { throw .unsupportedFormat("not a WAV file (shorter than a RIFF header)") }
        let bigEndian: Bool
        switch (String(decoding: bytes[0..<4], as: UTF8.self), String(decoding: bytes[8..<12], as: UTF8.self)) {
        case ("RIFF", "WAVE"): bigEndian = false
        case ("RIFX", "WAVE"): bigEndian = true
        default: throw .unsupportedFormat("not a WAV file (no RIFF/RIFX WAVE header)")
        }
        func integer(_ offset: Int, _ size: Int) -> Int {
            var value = 0
            for i in 0..<size { value |= Int(bytes[offset + (bigEndian ? size - 1 - i : i)]) << (8 * i) }
            return value
        }

        var format: (encoding: Encoding, channels: Int, rate: Int, bits: Int, blockAlign: Int)?
        var offset = 12
        while offset + 8 <= bytes.count {
            let id = String(decoding: bytes[offset..<(offset + 4)], as: UTF8.self)
            let size = integer(offset + 4, 4)
            let body = offset + 8
            if id == "fmt " {
                guard size >= 16, body + 16 <= bytes.count else { throw .corrupt("WAV fmt chunk is too short") }
                var tag = integer(body, 2)
                let channels = integer(body + 2, 2), rate = integer(body + 4, 4)
                let blockAlign = integer(body + 12, 2), bits = integer(body + 14, 2)
                if tag == 0xFFFE {
                    guard size >= 40, body + 40 <= bytes.count else { throw .corrupt("WAV extensible fmt chunk is too short") }
                    tag = integer(body + 24, 2)   // the sub-format GUID begins with the format tag
                }
                let encoding: Encoding
                switch (tag, bits) {
                case (1, 8), (1, 16), (1, 24), (1, 32): encoding = .pcm
                case (3, 32), (3, 64): encoding = .float
                default: throw .unsupportedFormat("WAV format \(tag) with \(bits)-bit samples is not supported (PCM 8/16/24/32, float 32/64 are)")
                }
                guard channels > 0, rate > 0, rate <= 768_000 else {
                    throw .corrupt("WAV header: \(channels) channels at \(rate) Hz")
                }
                guard rate >= Self.minSampleRate else {
                    throw .corrupt("WAV sample rate is \(rate) Hz; at least \(Self.minSampleRate) Hz is accepted")
                }
                guard blockAlign == channels * bits / 8 else {
                    throw .corrupt("WAV header: block align \(blockAlign) for \(channels) × \(bits) bits")
                }
                format = (encoding, channels, rate, bits, blockAlign)
            } else if id == "data" {
                guard let format else { throw .corrupt("WAV data chunk before its fmt chunk") }
                let frames = min(size, bytes.count - body) / format.blockAlign
                guard frames > 0 else { throw .corrupt("WAV file has no samples") }
                let header = Header(sampleRate: format.rate, channels: format.channels, frames: frames,
                                    encoding: format.encoding, bits: format.bits, blockAlign: format.blockAlign,
                                    bigEndian: bigEndian, dataOffset: body)
                guard header.duration <= maxDuration else {
                    throw .tooLarge("audio is \(Int(header.duration.rounded(.up))) s long; at most \(Int(maxDuration)) s are accepted")
                }
                return header
            }
            guard size >= 0, body + size <= bytes.count || id == "data" else { break }
            offset = body + size + (size & 1)   // chunks are padded to even sizes
        }
        throw .corrupt(format == nil ? "WAV file has no fmt chunk" : "WAV file has no data chunk")
    }

    public func decode(_ bytes: [UInt8]) throws(MediaError) -> Audio {
        let header = try header(of: bytes)
        let samples = mix(bytes, header)
        for (index, sample) in samples.enumerated() where !(abs(sample) <= Self.maxFloatMagnitude) {
            throw .corrupt("WAV sample \(index) is \(sample); samples must be finite and near [-1, 1]")
        }
        return Audio(samples: samples, sampleRate: header.sampleRate)
    }

    private func mix(_ bytes: [UInt8], _ format: Header) -> [Float] {
        let (start, frames, bigEndian) = (format.dataOffset, format.frames, format.bigEndian)
        let width = format.bits / 8
        let scale = 1 / Float(format.channels)
        return bytes.withUnsafeBufferPointer { buffer in
            func raw(_ offset: Int) -> UInt64 {
                var value: UInt64 = 0
                for i in 0..<width { value |= UInt64(buffer[offset + (bigEndian ? width - 1 - i : i)]) << (8 * i) }
                return value
            }
            func sample(_ offset: Int) -> Float {
                switch (format.encoding, width) {
                case (.pcm, 1): return (Float(buffer[offset]) - 128) / 128
                case (.pcm, _):
                    let shift = 64 - format.bits
                    let signed = Int64(bitPattern: raw(offset) << UInt64(shift)) >> Int64(shift)
                    return Float(Double(signed) / Double(Int64(1) << (format.bits - 1)))
                case (.float, 4): return Float(bitPattern: UInt32(truncatingIfNeeded: raw(offset)))
                default: return Float(Double(bitPattern: raw(offset)))
                }
            }
            return (0..<frames).map { frame in
                let base = start + frame * format.blockAlign
                if format.channels == 1 { return sample(base) }
                var sum: Float = 0
                for channel in 0..<format.channels { sum += sample(base + channel * width) }
                return sum * scale
            }
        }
    }
}
