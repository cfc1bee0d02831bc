import Media

/// Videos and compressed audio through FFmpeg's libraries on arbitrary bytes: the headers, two frames and the
/// soundtrack, under small limits (30 s, a megapixel, 50 frames per seek) so that an input cannot stall the run.
func fuzzVideo(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let decoder = VideoDecoder(maxSeconds: 30, maxPixels: 1 << 20, maxFramesPerSeek: 50)
    guard let header = try? decoder.header(of: bytes) else { return 0 }
    if header.hasVideo, let frames = try? decoder.frames(bytes, at: [0, header.duration / 2], checkpoint: { () throws(Never) in }).get() {
        for frame in frames {
            precondition(frame.image.width * frame.image.height <= 1 << 20 && frame.image.pixels.count == frame.image.width * frame.image.height * 3)
        }
    }
    if header.hasAudio, let audio = try? decoder.audio(bytes) {
        precondition(Double(audio.samples.count) <= (min(header.duration, 30) + 1) * Double(audio.sampleRate))
    }
    return 0
}
