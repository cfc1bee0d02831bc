import Embedding
import Models

/// The safetensors reader and the codebook reader on arbitrary bytes: every tensor readable once opened, every
/// codebook that loads usable.

func fuzzSafetensors(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let file = try? SafetensorsFile(bytes: bytes, path: "fuzz") {
        for name in file.tensors.keys { _ = try? file.floats(name) }
    }
    if let codebook = try? SemanticCodebook(bytes: bytes, path: "fuzz"),
       codebook.mismatch(dimensions: codebook.dimensions, model: ModelIdentity(id: "m", revision: "r"), allowUnstamped: true) == nil {
        _ = codebook.codes([Float](repeating: 0.5, count: codebook.dimensions), count: 1)
    }
    return 0
}
