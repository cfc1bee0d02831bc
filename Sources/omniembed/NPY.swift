import Foundation

/// NumPy's `.npy` format (version 1–3): 2-D little-endian float32/float64 arrays in, int32 and float32 arrays out.
enum NPY {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The rows of a 2-D C-order `<f4` or `<f8` array, as Float.
    static func readFloats(_ path: String) throws -> (values: [Float], rows: Int, columns: Int) {
        let data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        func fail(_ reason: String) -> Failure { Failure(description: "\(path): \(reason)") }
        let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)
        guard data.count >= 10, Array(data.prefix(6)) == magic else { throw fail("not a .npy file") }
        let major = data[6]
        let (headerLength, headerStart): (Int, Int)
        switch major {
        case 1: (headerLength, headerStart) = (Int(data[8]) | Int(data[9]) << 8, 10)
        case 2, 3:
            guard data.count >= 12 else { throw fail("truncated header") }
            headerLength = (0..<4).reduce(0) { $0 | Int(data[8 + $1]) << (8 * $1) }
            headerStart = 12
        default: throw fail("unsupported .npy version \(major)")
        }
        guard headerStart + headerLength <= data.count,
              let header = String(data: data[headerStart..<headerStart + headerLength], encoding: .utf8) else {
            throw fail("truncated header")
        }
        func field(_ name: String) -> String? {
            guard let key = header.range(of: "'\(name)':") else { return nil }
            return String(header[key.upperBound...]).trimmingCharacters(in: .whitespaces)
        }
        guard let descr = field("descr"), let order = field("fortran_order"), let shape = field("shape") else {
            throw fail("header lacks descr, fortran_order or shape: \(header)")
        }
        let width: Int
        if descr.hasPrefix("'<f4'") { width = 4 } else if descr.hasPrefix("'<f8'") { width = 8 } else {
            throw fail("dtype \(descr.prefix(6)) is not little-endian float32 or float64")
        }
        guard order.hasPrefix("False") else { throw fail("Fortran order is not supported; save with np.ascontiguousarray") }
        guard let open = shape.firstIndex(of: "("), let close = shape.firstIndex(of: ")") else { throw fail("unreadable shape") }
        let dims = shape[shape.index(after: open)..<close].split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.compactMap { Int($0) }
        guard dims.count == 2 else { throw fail("shape \(dims) is not 2-D (rows, dimensions)") }
        let (rows, columns) = (dims[0], dims[1])
        let start = headerStart + headerLength
        guard data.count - start == rows * columns * width else {
            throw fail("\(data.count - start) data bytes for shape (\(rows), \(columns)) of \(width)-byte floats")
        }
        let values: [Float] = data.withUnsafeBytes { raw in
            let base = raw.baseAddress! + start
            return width == 4
                ? (0..<rows * columns).map { Float(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
                : (0..<rows * columns).map { Float(Double(bitPattern: UInt64(littleEndian: base.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self)))) }
        }
        return (values, rows, columns)
    }

    /// Writes a 2-D `<i4` array.
    static func writeInt32(_ values: [Int32], rows: Int, columns: Int, to path: String) throws {
        var data: [UInt8] = []
        data.reserveCapacity(values.count * 4)
        for value in values { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }
        try write(descr: "<i4", rows: rows, columns: columns, data: data, to: path)
    }

    /// Writes a 2-D `<f4` array.
    static func writeFloat32(_ values: [Float], rows: Int, columns: Int, to path: String) throws {
        var data: [UInt8] = []
        data.reserveCapacity(values.count * 4)
        for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        try write(descr: "<f4", rows: rows, columns: columns, data: data, to: path)
    }

    private static func write(descr: String, rows: Int, columns: Int, data: [UInt8], to path: String) throws {
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': (\(rows), \(columns)), }"
        // The data starts at a multiple of 64 bytes; the header ends with a newline.
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)]
        bytes += Array(header.utf8)
        bytes += data
        try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}
