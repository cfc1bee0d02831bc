import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A `.safetensors` file mapped read-only into memory: tensors are read from the mapping on demand, never
/// copied whole at load. The header is validated on open: its size, JSON, dtypes, shapes against byte sizes,
/// bounds, and overlaps, each failure naming the file and the tensor.
public final class SafetensorsFile: @unchecked Sendable {  // immutable after init
    public enum DType: String, Sendable {
        case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
        case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"

        public var byteCount: Int {
            switch self {
            case .f64, .i64: 8
            case .f32, .i32: 4
            case .f16, .bf16, .i16: 2
            case .i8, .u8, .bool: 1
            }
        }
    }

    public struct Tensor: Sendable, Equatable {
        public var name: String
        public var dtype: DType
        public var shape: [Int]
        /// Byte range within the data section.
        public var range: Range<Int>
        public var elementCount: Int { shape.reduce(1, *) }
    }

    public let path: String
    public let tensors: [String: Tensor]
    /// The free-form `__metadata__` strings.
    public let metadata: [String: String]

    private let base: UnsafeMutableRawPointer
    private let mappedLength: Int
    /// Whether `base` is an allocated copy (else a mapping).
    private let ownsCopy: Bool
    private let dataStart: Int

    /// The largest header accepted (the format's own limit is 100 MB).
    static let maxHeaderBytes = 100_000_000

    public init(path: String) throws {
        self.path = path
        func fail(_ reason: String) -> ModelLoadingError { ModelLoadingError(file: path, reason: reason) }

        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw fail("cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw fail("cannot stat: \(String(cString: strerror(errno)))") }
        let length = Int(status.st_size)
        guard length >= 8 else { throw fail("truncated: \(length) bytes, not even a header length") }
        guard let mapping = mmap(nil, length, PROT_READ, MAP_PRIVATE, fd, 0), mapping != MAP_FAILED else {
            throw fail("cannot map: \(String(cString: strerror(errno)))")
        }
        base = mapping
        mappedLength = length
        ownsCopy = false
        do {
            (dataStart, tensors, metadata) = try Self.parse(UnsafeRawBufferPointer(start: mapping, count: length), fail: fail)
        } catch {
            munmap(mapping, length)
            throw error
        }
    }

    /// The file's bytes already read (`path` names it in messages): kept in a copy of their own.
    public init(bytes: [UInt8], path: String) throws {
        self.path = path
        func fail(_ reason: String) -> ModelLoadingError { ModelLoadingError(file: path, reason: reason) }
        guard bytes.count >= 8 else { throw fail("truncated: \(bytes.count) bytes, not even a header length") }
        let copy = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 16)
        bytes.withUnsafeBytes { copy.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        base = copy
        mappedLength = bytes.count
        ownsCopy = true
        do {
            (dataStart, tensors, metadata) = try Self.parse(UnsafeRawBufferPointer(start: copy, count: bytes.count), fail: fail)
        } catch {
            copy.deallocate()
            throw error
        }
    }

    /// The header's length, the tensors and the metadata of a whole file.
    private static func parse(_ file: UnsafeRawBufferPointer,
                              fail: (String) -> ModelLoadingError) throws -> (Int, [String: Tensor], [String: String]) {
        let length = file.count
        let headerLength = Int(clamping: UInt64(littleEndian: file.loadUnaligned(as: UInt64.self)))
        guard headerLength <= Self.maxHeaderBytes, headerLength <= length - 8 else {
            throw fail("header length \(headerLength) exceeds the file (\(length) bytes) or the 100 MB limit")
        }
        let headerData = Data(bytes: file.baseAddress! + 8, count: headerLength)
        let (tensors, metadata) = try parseHeader(headerData, dataLength: length - 8 - headerLength, fail: fail)
        return (8 + headerLength, tensors, metadata)
    }

    deinit {
        if ownsCopy { base.deallocate() } else { munmap(base, mappedLength) }
    }

    /// A header value: a tensor entry, or (under `__metadata__`) a map of strings.
    private enum HeaderValue: Decodable {
        struct Entry: Decodable {
            var dtype: String
            var shape: [Int]
            var data_offsets: [Int]
        }
        case tensor(Entry)
        case metadata([String: String])
        case invalid

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let entry = try? container.decode(Entry.self) {
                self = .tensor(entry)
            } else if let metadata = try? container.decode([String: String].self) {
                self = .metadata(metadata)
            } else {
                self = .invalid
            }
        }
    }

    private static func parseHeader(_ data: Data, dataLength: Int,
                                    fail: (String) -> ModelLoadingError) throws -> ([String: Tensor], [String: String]) {
        guard let object = try? JSONDecoder().decode([String: HeaderValue].self, from: data) else {
            throw fail("header is not a JSON object")
        }
        var tensors: [String: Tensor] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in object {
            switch value {
            case .metadata(let entries) where name == "__metadata__":
                metadata = entries
            case .tensor(let entry) where name != "__metadata__":
                tensors[name] = try tensor(name, entry, dataLength: dataLength, fail: fail)
            default:
                throw fail("\(name == "__metadata__" ? "__metadata__ is not a map of strings" : "tensor \(name): entry needs dtype, shape and data_offsets as integers")")
            }
        }
        let ordered = tensors.values.sorted { ($0.range.lowerBound, $0.range.upperBound) < ($1.range.lowerBound, $1.range.upperBound) }
        for (previous, next) in zip(ordered, ordered.dropFirst()) where next.range.lowerBound < previous.range.upperBound {
            throw fail("tensors \(previous.name) and \(next.name) overlap")
        }
        // As the reference implementation requires: the tensors tile the data section, no gap and nothing after.
        var end = 0
        for tensor in ordered {
            guard tensor.range.lowerBound == end else { throw fail("\(tensor.range.lowerBound - end) bytes before tensor \(tensor.name) belong to no tensor") }
            end = tensor.range.upperBound
        }
        guard end == dataLength else { throw fail("\(dataLength - end) trailing bytes after the last tensor") }
        return (tensors, metadata)
    }

    private static func tensor(_ name: String, _ entry: HeaderValue.Entry, dataLength: Int,
                               fail: (String) -> ModelLoadingError) throws -> Tensor {
        guard let dtype = DType(rawValue: entry.dtype) else { throw fail("tensor \(name): unknown dtype \(entry.dtype)") }
        guard entry.shape.allSatisfy({ $0 >= 0 }) else { throw fail("tensor \(name): negative dimension in \(entry.shape)") }
        guard entry.data_offsets.count == 2 else { throw fail("tensor \(name): data_offsets is not a pair") }
        let (begin, end) = (entry.data_offsets[0], entry.data_offsets[1])
        guard 0 <= begin, begin <= end else {
            throw fail("tensor \(name): data_offsets [\(begin), \(end)] are reversed or negative")
        }
        guard end <= dataLength else {
            throw fail("tensor \(name): data_offsets end \(end) beyond the data (\(dataLength) bytes): file truncated?")
        }
        var elements = 1
        for dimension in entry.shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: dimension)
            guard !overflow else { throw fail("tensor \(name): shape \(entry.shape) overflows") }
            elements = product
        }
        let (bytes, overflow) = elements.multipliedReportingOverflow(by: dtype.byteCount)
        guard !overflow, bytes == end - begin else {
            throw fail("tensor \(name): shape \(entry.shape) of \(entry.dtype) needs \(bytes) bytes, data_offsets give \(end - begin)")
        }
        return Tensor(name: name, dtype: dtype, shape: entry.shape, range: begin..<end)
    }

    /// The tensor's shape; a missing tensor is an error naming the file.
    public func shape(_ name: String) throws -> [Int] {
        guard let tensor = tensors[name] else { throw ModelLoadingError(file: path, reason: "tensor \(name): missing") }
        return tensor.shape
    }

    /// The tensor's values as `Float` (F32 as is; F16 and BF16 widened exactly).
    public func floats(_ name: String) throws -> [Float] {
        guard let tensor = tensors[name] else { throw ModelLoadingError(file: path, reason: "tensor \(name): missing") }
        let start = base + dataStart + tensor.range.lowerBound
        let count = tensor.elementCount
        guard count > 0 else { return [] }
        switch tensor.dtype {
        case .f32:
            #if _endian(little)
            // The file's byte order is the machine's: one copy, whatever the alignment.
            return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                UnsafeMutableRawPointer(buffer.baseAddress!).copyMemory(from: start, byteCount: count * 4)
                initialized = count
            }
            #else
            return (0..<count).map { Float(bitPattern: UInt32(littleEndian: start.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
            #endif
        case .f16:
            return (0..<count).map { Float(Float16(bitPattern: UInt16(littleEndian: start.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)))) }
        case .bf16:
            return (0..<count).map { Float(bitPattern: UInt32(UInt16(littleEndian: start.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self))) << 16) }
        default:
            throw ModelLoadingError(file: path, reason: "tensor \(name): dtype \(tensor.dtype.rawValue) is not a floating-point type")
        }
    }

    /// Checks that every expected tensor is present with its shape; returns the names present but not expected.
    @discardableResult
    public func require(_ expected: [String: [Int]]) throws -> [String] {
        var problems: [String] = []
        for (name, shape) in expected.sorted(by: { $0.key < $1.key }) {
            guard let tensor = tensors[name] else {
                problems.append("tensor \(name): missing")
                continue
            }
            if tensor.shape != shape { problems.append("tensor \(name): shape \(tensor.shape), expected \(shape)") }
        }
        guard problems.isEmpty else { throw ModelLoadingError(file: path, reason: problems.joined(separator: "; ")) }
        return tensors.keys.filter { expected[$0] == nil }.sorted()
    }
}
