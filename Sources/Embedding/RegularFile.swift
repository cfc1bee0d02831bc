#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import Models

/// Reading a whole file that an operator points the service at (a codebook): only a regular file, of bounded
/// size, read once. Opened without blocking, so a FIFO or a device at the path is refused instead of hanging the
/// thread that reads it.
public enum RegularFile {
    public static func read(_ path: String, maxBytes: Int) throws -> [UInt8] {
        func fail(_ reason: String) -> ModelLoadingError { ModelLoadingError(file: path, reason: reason) }
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else { throw fail("cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw fail("cannot stat: \(String(cString: strerror(errno)))") }
        guard status.st_mode & S_IFMT == S_IFREG else { throw fail("not a regular file") }
        let size = Int(status.st_size)
        guard size <= maxBytes else { throw fail("\(size) bytes; at most \(maxBytes) are read") }
        var bytes = [UInt8](repeating: 0, count: size)
        var filled = 0
        while filled < size {
            let count = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + filled, size - filled) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw fail(count == 0 ? "shorter than its size (changed while read?)" : "cannot read: \(String(cString: strerror(errno)))") }
            filled += count
        }
        return bytes
    }
}
