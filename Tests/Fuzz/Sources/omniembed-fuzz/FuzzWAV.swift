import Media
import Models

/// WAV decoding, resampling to 16 kHz and musicnn's log-mel patches on arbitrary bytes; at most 20 s.

func fuzzWav(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let audio = try? WAVDecoder(maxDuration: 20).decode(bytes) else { return 0 }
    precondition(audio.samples.allSatisfy(\.isFinite))
    let mel = MelSpectrogram.musicnn()
    let samples = Resampler.resample(audio, to: mel.sampleRate).samples
    let patches = Musicnn.patches(mel.musicnnInput(samples))
    precondition(patches.allSatisfy { $0.allSatisfy(\.isFinite) })
    return 0
}
