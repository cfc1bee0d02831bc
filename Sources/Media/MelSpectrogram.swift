import CFFTW
import Foundation

/// librosa's `melspectrogram` (power 2, periodic Hann window, centred frames padded with zeros, Slaney mel scale and
/// area normalisation), through FFTW; and musicnn's compression of it, `log10(10000 · x + 1)`.
public final class MelSpectrogram: @unchecked Sendable {  // immutable after init; FFTW's new-array execute is thread-safe
    public let sampleRate: Int
    public let fftSize: Int
    public let hop: Int
    public let bands: Int
    /// bands × (fftSize / 2 + 1), row-major.
    let filters: [Float]
    let window: [Float]
    private let plan: fftwf_plan

    /// FFTW's planner is not thread-safe: plans are made one at a time.
    private static let planning = NSLock()

    /// musicnn's front end: 16 kHz, 512-point FFT, hop 256, 96 bands.
    public static func musicnn() -> MelSpectrogram { MelSpectrogram(sampleRate: 16000, fftSize: 512, hop: 256, bands: 96) }

    public init(sampleRate: Int, fftSize: Int, hop: Int, bands: Int) {
        self.sampleRate = sampleRate
        self.fftSize = fftSize
        self.hop = hop
        self.bands = bands
        window = (0..<fftSize).map { Float(0.5 - 0.5 * cos(2 * Double.pi * Double($0) / Double(fftSize))) }
        filters = Self.slaneyFilters(sampleRate: sampleRate, fftSize: fftSize, bands: bands)
        let input = fftwf_alloc_real(fftSize)!, output = fftwf_alloc_complex(fftSize / 2 + 1)!
        Self.planning.lock()
        plan = fftwf_plan_dft_r2c_1d(Int32(fftSize), input, output, UInt32(FFTW_ESTIMATE))
        Self.planning.unlock()
        fftwf_free(input)
        fftwf_free(output)
    }

    deinit {
        Self.planning.lock()
        fftwf_destroy_plan(plan)
        Self.planning.unlock()
    }

    /// Hertz → mel on the Slaney scale: linear below 1 kHz, logarithmic above.
    static func mel(_ hertz: Double) -> Double {
        let linear = hertz / (200.0 / 3)
        guard hertz >= 1000 else { return linear }
        return 15 + log(hertz / 1000) / (log(6.4) / 27)
    }

    static func hertz(_ mel: Double) -> Double {
        guard mel >= 15 else { return mel * (200.0 / 3) }
        return 1000 * exp((log(6.4) / 27) * (mel - 15))
    }

    /// Triangular filters between consecutive mel-spaced frequencies from 0 to Nyquist, each scaled to unit area
    /// (`2 / (upper - lower)`), computed in Double and stored as Float, as librosa does.
    static func slaneyFilters(sampleRate: Int, fftSize: Int, bands: Int) -> [Float] {
        let bins = fftSize / 2 + 1
        let nyquist = Double(sampleRate) / 2
        let frequencies = (0..<bins).map { nyquist * Double($0) / Double(bins - 1) }
        let (low, high) = (mel(0), mel(nyquist))
        let edges = (0..<(bands + 2)).map { hertz(low + (high - low) * Double($0) / Double(bands + 1)) }
        var filters = [Float](repeating: 0, count: bands * bins)
        for band in 0..<bands {
            let (left, center, right) = (edges[band], edges[band + 1], edges[band + 2])
            let norm = 2 / (right - left)
            for bin in 0..<bins {
                let rising = (frequencies[bin] - left) / (center - left)
                let falling = (right - frequencies[bin]) / (right - center)
                filters[band * bins + bin] = Float(max(0, min(rising, falling)) * norm)
            }
        }
        return filters
    }

    /// Frames of `samples` (at `sampleRate`): 1 + count / hop of them.
    public func frameCount(_ samples: Int) -> Int { 1 + samples / hop }

    /// The mel power spectrogram, frames × bands, row-major.
    public func power(_ samples: [Float]) -> [Float] {
        let bins = fftSize / 2 + 1
        let frames = frameCount(samples.count)
        let half = fftSize / 2
        var result = [Float](repeating: 0, count: frames * bands)
        let input = fftwf_alloc_real(fftSize)!, output = fftwf_alloc_complex(bins)!
        defer { fftwf_free(input); fftwf_free(output) }
        var spectrum = [Float](repeating: 0, count: bins)
        for frame in 0..<frames {
            // Centred: frame t covers samples t·hop − n/2 ..< t·hop + n/2, zeros outside the signal.
            let start = frame * hop - half
            for i in 0..<fftSize {
                let index = start + i
                input[i] = index >= 0 && index < samples.count ? samples[index] * window[i] : 0
            }
            fftwf_execute_dft_r2c(plan, input, output)
            for bin in 0..<bins {
                let (re, im) = (output[bin].0, output[bin].1)
                spectrum[bin] = re * re + im * im
            }
            for band in 0..<bands {
                var sum: Float = 0
                let row = band * bins
                for bin in 0..<bins { sum += filters[row + bin] * spectrum[bin] }
                result[frame * bands + band] = sum
            }
        }
        return result
    }

    /// musicnn's input: `log10(10000 · mel + 1)`, the mel power first rounded to float16 as musicnn's extractor does.
    /// Power past float16's range (loud samples far outside [-1, 1]) saturates at its largest finite value instead of
    /// becoming infinity.
    public func musicnnInput(_ samples: [Float]) -> [Float] {
        let largest = Float(Float16.greatestFiniteMagnitude)
        return power(samples).map { log10(10000 * Float(Float16(min($0, largest))) + 1) }
    }
}
