/// What one call may spend on decoding media, summed over its items and checked from the headers before anything
/// is decoded: a few kilobytes can declare megapixels or minutes of audio, and one request may carry hundreds.
public struct DecodeBudget: Sendable, Equatable {
    /// Decoded pixels (after JPEG DCT scaling) of all images.
    public var maxPixels: Int
    /// Seconds of all recordings.
    public var maxAudioSeconds: Double

    public init(maxPixels: Int = 100_000_000, maxAudioSeconds: Double = 1800) {
        self.maxPixels = maxPixels
        self.maxAudioSeconds = maxAudioSeconds
    }

    /// 413 `request_budget_exceeded` naming the budget, when a call's media are over it.
    func check(pixels: Int, audioSeconds: Double) throws(EmbeddingError) {
        guard pixels <= maxPixels else {
            throw .tooLarge("request_budget_exceeded",
                            "the request's images decode to \(pixels) pixels; at most \(maxPixels) per request (limits.maxRequestPixels)")
        }
        guard audioSeconds <= maxAudioSeconds else {
            throw .tooLarge("request_budget_exceeded",
                            "the request's audio lasts \(Int(audioSeconds.rounded(.up))) s; at most \(Int(maxAudioSeconds)) s per request (limits.maxRequestAudioSeconds)")
        }
    }
}
