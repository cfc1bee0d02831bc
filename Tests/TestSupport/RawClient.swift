#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A blocking TCP client that sends raw bytes and parses raw responses, for testing the server on the wire.
public final class RawClient {
    public private(set) var fd: Int32
    private var buffer: [UInt8] = []

    public struct Response {
        public var status: Int
        public var headers: [(String, String)]
        public var body: [UInt8]
        public var rawHead: String
        public func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }
    }

    public enum Failure: Error { case connect(Int32), timeout, closed, malformed(String) }

    public init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            let error = errno
            Glibc.close(fd)
            throw Failure.connect(error)
        }
    }

    deinit { close() }

    /// Sends FIN: the request is complete, responses can still be read.
    public func shutdownWrite() {
        shutdown(fd, Int32(SHUT_WR))
    }

    /// Closes with a TCP reset (SO_LINGER 0), as a crashed client would.
    public func reset() {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close()
    }

    public func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    public func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            offset += n
        }
    }

    public func send(_ text: String) { send(Array(text.utf8)) }

    /// Reads more bytes into the buffer; false on EOF or error, throws on timeout.
    private func fill(timeout: Double) throws -> Bool {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&poller, 1, Int32(timeout * 1000))
        if ready == 0 { throw Failure.timeout }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = recv(fd, &chunk, chunk.count, 0)
        if n <= 0 { return false }
        buffer.append(contentsOf: chunk[0..<n])
        return true
    }

    /// Reads one response (head, then a `Content-Length` body unless `bodyless`). The default timeout only guards
    /// against a hang (the suite also runs under sanitizers, several times slower); tests about promptness pass theirs.
    public func readResponse(timeout: Double = 60, bodyless: Bool = false) throws -> Response {
        let deadline = Date().addingTimeInterval(timeout)
        func remaining() -> Double { max(0.001, deadline.timeIntervalSinceNow) }
        var headEnd: Int?
        while true {
            if let range = findHeadEnd() { headEnd = range; break }
            guard try fill(timeout: remaining()) else { throw Failure.closed }
        }
        let head = String(decoding: buffer[0..<headEnd!], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, statusLine[0] == "HTTP/1.1", let status = Int(statusLine[1]) else {
            throw Failure.malformed(head)
        }
        let headers = lines.filter { !$0.isEmpty }.map { line -> (String, String) in
            let parts = line.split(separator: ":", maxSplits: 1)
            return (String(parts[0]), parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : "")
        }
        buffer.removeFirst(headEnd! + 4)
        var response = Response(status: status, headers: headers, body: [], rawHead: head)
        if !bodyless, let length = response.header("Content-Length").flatMap(Int.init) {
            while buffer.count < length {
                guard try fill(timeout: remaining()) else { throw Failure.closed }
            }
            response.body = Array(buffer[0..<length])
            buffer.removeFirst(length)
        }
        return response
    }

    private func findHeadEnd() -> Int? {
        guard buffer.count >= 4 else { return nil }
        for i in 0...(buffer.count - 4) where buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 {
            return i
        }
        return nil
    }

    /// Whether the server closes the connection within `timeout` (any further bytes are discarded).
    public func isClosedByServer(within timeout: Double = 5) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while deadline.timeIntervalSinceNow > 0 {
            do {
                if try !fill(timeout: deadline.timeIntervalSinceNow) { return true }
            } catch {
                return false
            }
        }
        return false
    }

    /// Whether no bytes arrive and the connection stays open for `duration`.
    public func staysOpen(for duration: Double) -> Bool {
        do { return try fill(timeout: duration) && false } catch { return true }
    }

    /// Bytes received but not consumed by `readResponse`.
    public var unread: [UInt8] { buffer }
}
