import Media

/// JPEG and PNG decoding (libjpeg-turbo and libpng behind our C shim) and the preprocessing to the tower's input,
/// on arbitrary bytes; at most 4 M pixels so that each run stays fast.

func fuzzImage(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let decoder = ImageDecoder(maxPixels: 4_000_000)
    for shorter in [nil, 256] as [Int?] {
        guard let image = try? decoder.decode(bytes, minimumShorterSide: shorter) else { continue }
        let tensor = ImagePreprocessor().tensor(image)
        precondition(tensor.count == 3 * 224 * 224 && tensor.allSatisfy(\.isFinite))
    }
    return 0
}
