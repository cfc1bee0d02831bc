import CMediaKernels
import Foundation

/// Band-limited sample-rate conversion with resampy's `kaiser_best` filter (what librosa used by default when
/// musicnn was trained): a sinc low-pass with 50 zero crossings per wing, rolloff 0.9173 of the lower Nyquist,
/// Kaiser taper, tabulated at 8192 points per zero crossing and interpolated linearly. resampy 0.4 ships the table
/// as data; these parameters (β fitted to it) reproduce it to 1e-15.
public enum Resampler {
    static let zeroCrossings = 50
    static let table = 1 << 13
    static let rolloff = 0.9173473712608761
    static let beta = 12.984585247040018

    /// One wing of the filter (sinc × Kaiser taper), and its forward differences.
    static let filter: (window: [Float], delta: [Float]) = {
        let n = table * zeroCrossings
        var window = [Double](repeating: 0, count: n + 1)
        let i0Beta = besselI0(beta)
        for i in 0...n {
            let x = Double(i) / Double(table)   // in zero crossings
            let argument = rolloff * x
            let sinc = argument == 0 ? 1 : sin(Double.pi * argument) / (Double.pi * argument)
            // The right half of a symmetric Kaiser window of 2n + 1 points.
            let r = Double(i) / Double(n)
            let taper = besselI0(beta * (1 - r * r).squareRoot()) / i0Beta
            window[i] = rolloff * sinc * taper
        }
        let delta = (0..<(n + 1)).map { $0 < n ? window[$0 + 1] - window[$0] : 0 }
        return (window.map(Float.init), delta.map(Float.init))
    }()

    /// The modified Bessel function of the first kind, order 0, by its power series.
    static func besselI0(_ x: Double) -> Double {
        var sum = 1.0, term = 1.0
        let quarter = x * x / 4
        for k in 1..<500 {
            term *= quarter / Double(k * k)
            sum += term
            if term < sum * 1e-17 { break }
        }
        return sum
    }

    /// `audio` at `rate` Hz: ceil(count · rate / audio rate) samples, as librosa sizes them.
    public static func resample(_ audio: Audio, to rate: Int) -> Audio {
        resample(audio, to: rate, maxPhases: maxPhases)
    }

    static func resample(_ audio: Audio, to rate: Int, maxPhases: Int) -> Audio {
        guard audio.sampleRate != rate, !audio.samples.isEmpty else { return Audio(samples: audio.samples, sampleRate: rate) }
        let ratio = Double(rate) / Double(audio.sampleRate)
        let count = Int((Double(audio.samples.count) * ratio).rounded(.up))
        let scale = min(1, ratio)
        let (window, delta) = filter
        var out = [Float](repeating: 0, count: count)
        // resampy computes int(count · ratio) samples; librosa pads the result with zeros to the ceiling.
        let computed = min(count, Int(Double(audio.samples.count) * ratio))
        let divisor = gcd(audio.sampleRate, rate)
        let (phases, step) = (rate / divisor, audio.sampleRate / divisor)
        if phases <= maxPhases {
            // The filter of output t depends only on t · step mod phases: precompute each once, then every output
            // is one contiguous dot product (docs/performance.md, "Audio resampling").
            let (taps, width, left) = polyphase(phases: phases, scale: scale, window: window, delta: delta)
            var padded = [Float](repeating: 0, count: left + audio.samples.count + width + 1)
            padded.replaceSubrange(left..<(left + audio.samples.count), with: audio.samples)
            oe_resample_polyphase(padded, computed, step, phases, taps, width, &out)
        } else {
            oe_resample_sinc(audio.samples, audio.samples.count, &out, computed, 1 / ratio, scale, window, delta,
                             window.count, table)
        }
        return Audio(samples: out, sampleRate: rate)
    }

    /// Above this many phases (rates with a small common divisor) the filters are interpolated per tap instead.
    static let maxPhases = 2048

    static func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }

    /// Each phase's filter over x[n − left + 1 ... n + right], as `oe_resample_sinc` interpolates it (times `scale`,
    /// which keeps unit gain when decimating), zero-padded to a common width.
    static func polyphase(phases: Int, scale: Double, window: [Float], delta: [Float]) -> (taps: [Float], width: Int, left: Int) {
        let indexStep = Int(scale * Double(table))
        func wing(_ fraction: Double) -> [Float] {
            let index = fraction * Double(table)
            let offset = Int(index)
            let eta = Float(index - Double(offset))
            return (0..<((window.count - offset) / indexStep)).map { i in
                (window[offset + i * indexStep] + eta * delta[offset + i * indexStep]) * Float(scale)
            }
        }
        let wings = (0..<phases).map { phase -> ([Float], [Float]) in
            let fraction = scale * Double(phase) / Double(phases)
            return (wing(fraction), wing(scale - fraction))
        }
        let left = wings.map(\.0.count).max() ?? 0, right = wings.map(\.1.count).max() ?? 0
        var taps = [Float](repeating: 0, count: phases * (left + right))
        for (phase, (leftWing, rightWing)) in wings.enumerated() {
            let base = phase * (left + right)
            for (i, w) in leftWing.enumerated() { taps[base + left - 1 - i] = w }
            for (k, w) in rightWing.enumerated() { taps[base + left + k] = w }
        }
        return (taps, left + right, left)
    }
}
