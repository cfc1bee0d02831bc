/// Size limits enforced while decoding, each with its own status.
public struct HTTPDecoderLimits: Sendable, Equatable {
    /// Longest request line (414 beyond).
    public var maxRequestLineBytes: Int = 8 * 1024
    /// Largest header section, field lines and trailers together (431 beyond).
    public var maxHeaderBytes: Int = 16 * 1024
    /// Most header fields (431 beyond).
    public var maxHeaderCount: Int = 100
    /// Largest body after de-chunking (413 beyond).
    public var maxBodyBytes: Int = 16 * 1024 * 1024
    /// Longest chunk-size line, extensions included (400 beyond).
    public var maxChunkLineBytes: Int = 4 * 1024

    public init() {}
}

/// What the decoder has produced.
public enum HTTPDecoderEvent: Sendable, Equatable {
    /// The head is complete and its framing valid; the body follows.
    case head(HTTPRequestHead)
    /// The request is complete.
    case request(HTTPRequest)
}

/// An incremental RFC 9112 request decoder: bytes go in with `feed`, events come out of `next()`.
///
/// It is strict where leniency enables request smuggling: CRLF only (no bare LF or bare CR), no
/// obs-fold, no whitespace before the colon, `Content-Length` digits only with equal duplicates,
/// never `Content-Length` with `Transfer-Encoding`, and `chunked` only as the final coding.
/// Once it has thrown, the connection must be closed.
public struct HTTPRequestDecoder: Sendable {
    public let limits: HTTPDecoderLimits

    private var buffer: [UInt8] = []
    private var readIndex = 0
    /// Where the search for the next LF resumes, so that a line arriving byte by byte is scanned once.
    private var scanIndex = 0
    private var state: State = .requestLine(emptyLinesSkipped: 0)
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var headerBytes = 0

    private enum State: Sendable {
        case requestLine(emptyLinesSkipped: Int)
        case headerLines(PartialHead)
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case failed
    }

    struct PartialHead: Sendable {
        var method: HTTPMethod
        var target: String
        var version: HTTPVersion
        var headers = HTTPHeaders()
    }

    public init(limits: HTTPDecoderLimits = HTTPDecoderLimits()) {
        self.limits = limits
    }

    /// Bytes received but not yet consumed.
    public var bufferedByteCount: Int { buffer.count - readIndex }

    /// Whether part of a request (a byte of its head or body) has been received and not yet returned.
    public var hasPartialRequest: Bool {
        switch state {
        case .requestLine: bufferedByteCount > 0
        default: true
        }
    }

    /// Whether the request being decoded has its head complete but its body not yet started.
    public var awaitingBodyStart: Bool {
        if case .fixedBody = state, body.isEmpty, bufferedByteCount == 0 { return true }
        if case .chunkSize = state, body.isEmpty, bufferedByteCount == 0 { return true }
        return false
    }

    /// Body bytes received so far for the request being decoded.
    public var bodyBytesReceived: Int { body.count }

    public mutating func feed<Bytes: Collection>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        if readIndex > 0 && readIndex >= buffer.count / 2 {
            buffer.removeSubrange(0..<readIndex)
            scanIndex -= readIndex
            readIndex = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next event, or `nil` when more bytes are needed.
    public mutating func next() throws(HTTPParseError) -> HTTPDecoderEvent? {
        do {
            return try step()
        } catch {
            state = .failed
            throw error
        }
    }

    /// Refuses at once a request line whose first bytes cannot start a method (a method is a token), instead of
    /// waiting for a line end that a binary peer never sends: a TLS ClientHello on this plain port, say.
    private func checkMethodPrefix() throws(HTTPParseError) {
        var index = readIndex
        while index < buffer.count && index < readIndex + 16 {
            let byte = buffer[index]
            // A space ends the method; an empty line (CRLF, or a bare LF refused as such) is the line reader's.
            if byte == UInt8(ascii: " ") || (index == readIndex && (byte == .cr || byte == .lf)) { return }
            guard byte.isTokenCharacter else {
                if index == readIndex && byte == 0x16 {
                    throw .badRequest("this port speaks plain HTTP; a TLS handshake was sent to it")
                }
                throw .badRequest("invalid method")
            }
            index += 1
        }
    }

    private mutating func step() throws(HTTPParseError) -> HTTPDecoderEvent? {
        while true {
            switch state {
            case .failed:
                return nil

            case .requestLine(let skipped):
                try checkMethodPrefix()
                guard let line = try nextLine(limit: limits.maxRequestLineBytes, overLimit: .requestLineTooLong)
                else { return nil }
                if line.isEmpty {
                    // RFC 9112 §2.2: ignore at least one empty line before the request line; a few, not a flood.
                    guard skipped < 8 else { throw .badRequest("too many empty lines before the request line") }
                    state = .requestLine(emptyLinesSkipped: skipped + 1)
                    continue
                }
                state = .headerLines(try Self.parseRequestLine(line))
                headerBytes = 0

            case .headerLines(var partial):
                let remaining = limits.maxHeaderBytes - headerBytes
                guard let line = try nextLine(limit: remaining, overLimit: .headersTooLarge) else { return nil }
                headerBytes += line.count + 2
                if line.isEmpty {
                    return .head(try completeHead(partial))
                }
                let (name, value) = try Self.parseFieldLine(line)
                guard partial.headers.count < limits.maxHeaderCount else { throw .headersTooLarge }
                partial.headers.add(name: name, value: value)
                state = .headerLines(partial)

            case .fixedBody(let remaining):
                let available = min(remaining, bufferedByteCount)
                body.append(contentsOf: buffer[readIndex..<(readIndex + available)])
                readIndex += available
                if available == remaining { return finishRequest() }
                state = .fixedBody(remaining: remaining - available)
                return nil

            case .chunkSize:
                guard let line = try nextLine(limit: limits.maxChunkLineBytes,
                                              overLimit: .badRequest("chunk-size line too long"))
                else { return nil }
                let size = try parseChunkSize(line)
                state = size == 0 ? .trailers : .chunkData(remaining: size)
                if size == 0 { headerBytes = 0 }

            case .chunkData(let remaining):
                let available = min(remaining, bufferedByteCount)
                body.append(contentsOf: buffer[readIndex..<(readIndex + available)])
                readIndex += available
                if available < remaining {
                    state = .chunkData(remaining: remaining - available)
                    return nil
                }
                state = .chunkDataEnd

            case .chunkDataEnd:
                guard bufferedByteCount >= 2 else {
                    if bufferedByteCount == 1 && buffer[readIndex] != .cr {
                        throw .badRequest("chunk data not followed by CRLF")
                    }
                    return nil
                }
                guard buffer[readIndex] == .cr, buffer[readIndex + 1] == .lf else {
                    throw .badRequest("chunk data not followed by CRLF")
                }
                readIndex += 2
                scanIndex = readIndex
                state = .chunkSize

            case .trailers:
                let remaining = limits.maxHeaderBytes - headerBytes
                guard let line = try nextLine(limit: remaining, overLimit: .headersTooLarge) else { return nil }
                headerBytes += line.count + 2
                if line.isEmpty { return finishRequest() }
                // Trailer fields are validated like header fields, then dropped: nothing here uses them.
                _ = try Self.parseFieldLine(line)
            }
        }
    }

    private mutating func finishRequest() -> HTTPDecoderEvent {
        let request = HTTPRequest(head: head!, body: body)
        head = nil
        body = []
        state = .requestLine(emptyLinesSkipped: 0)
        scanIndex = readIndex
        return .request(request)
    }

    /// The next CRLF-terminated line without its terminator, or `nil` if it is not complete yet.
    private mutating func nextLine(limit: Int, overLimit: HTTPParseError) throws(HTTPParseError) -> ArraySlice<UInt8>? {
        if scanIndex < readIndex { scanIndex = readIndex }
        while scanIndex < buffer.count {
            let byte = buffer[scanIndex]
            if byte == .lf {
                guard scanIndex > readIndex, buffer[scanIndex - 1] == .cr else {
                    throw .badRequest("bare LF as line terminator")
                }
                let line = buffer[readIndex..<(scanIndex - 1)]
                if line.count > limit { throw overLimit }
                readIndex = scanIndex + 1
                scanIndex = readIndex
                return line
            }
            if byte == .cr {
                guard scanIndex + 1 < buffer.count else { break }  // is it CRLF? the next read tells
                guard buffer[scanIndex + 1] == .lf else { throw .badRequest("bare CR") }
            }
            scanIndex += 1
        }
        // Incomplete line: refuse it as soon as it is certain to exceed the limit.
        if scanIndex - readIndex > limit { throw overLimit }
        return nil
    }

    static func parseRequestLine(_ line: ArraySlice<UInt8>) throws(HTTPParseError) -> PartialHead {
        let parts = line.split(separator: .space, maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty }) else {
            throw .badRequest("request line must be 'method SP target SP version'")
        }
        let (methodBytes, targetBytes, versionBytes) = (parts[0], parts[1], parts[2])
        guard methodBytes.allSatisfy(\.isTokenCharacter) else { throw .badRequest("invalid method") }
        let version = try parseVersion(versionBytes)
        // request-target: visible ASCII only; no fragment.
        guard targetBytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "#") }) else {
            throw .badRequest("invalid character in request target")
        }
        let method = HTTPMethod(rawValue: String(decoding: methodBytes, as: UTF8.self))
        let target = String(decoding: targetBytes, as: UTF8.self)
        try validateTargetForm(target, method: method)
        return PartialHead(method: method, target: target, version: version)
    }

    static func parseVersion(_ bytes: ArraySlice<UInt8>) throws(HTTPParseError) -> HTTPVersion {
        let b = Array(bytes)
        guard b.count == 8, b[0...4].elementsEqual("HTTP/".utf8), b[6] == UInt8(ascii: "."),
              (0x30...0x39).contains(b[5]), (0x30...0x39).contains(b[7])
        else { throw .badRequest("invalid HTTP version") }
        let major = Int(b[5] - 0x30), minor = Int(b[7] - 0x30)
        guard major == 1 else { throw .unsupportedVersion }
        // RFC 9110 §6.2: a higher minor version of a major we implement is served as the highest we know.
        return HTTPVersion(major: 1, minor: min(minor, 1))
    }

    static func validateTargetForm(_ target: String, method: HTTPMethod) throws(HTTPParseError) {
        if target.hasPrefix("/") { return }
        if target == "*" {
            guard method == .options else { throw .badRequest("asterisk-form is only valid for OPTIONS") }
            return
        }
        let lower = target.lowercased()
        if lower.hasPrefix("http://") || lower.hasPrefix("https://") {
            let authority = lower.drop { $0 != ":" }.dropFirst(3).prefix { $0 != "/" && $0 != "?" }
            guard !authority.isEmpty, !authority.contains("@") else { throw .badRequest("invalid absolute-form target") }
            return
        }
        if method == .connect { return }
        throw .badRequest("invalid request target form")
    }

    static func parseFieldLine(_ line: ArraySlice<UInt8>) throws(HTTPParseError) -> (String, String) {
        guard let first = line.first else { throw .badRequest("empty field line") }
        if first == .space || first == .tab { throw .badRequest("obsolete line folding") }
        guard let colon = line.firstIndex(of: .colon) else { throw .badRequest("field line without colon") }
        let name = line[line.startIndex..<colon]
        guard !name.isEmpty else { throw .badRequest("empty field name") }
        if let last = name.last, last == .space || last == .tab {
            throw .badRequest("whitespace between field name and colon")
        }
        guard name.allSatisfy(\.isTokenCharacter) else { throw .badRequest("invalid character in field name") }
        var value = line[(colon + 1)...]
        while let f = value.first, f == .space || f == .tab { value = value.dropFirst() }
        while let l = value.last, l == .space || l == .tab { value = value.dropLast() }
        guard value.allSatisfy(\.isFieldValueCharacter) else { throw .badRequest("invalid character in field value") }
        return (String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self))
    }

    private mutating func completeHead(_ partial: PartialHead) throws(HTTPParseError) -> HTTPRequestHead {
        let headers = partial.headers
        let isHTTP11 = partial.version.minor >= 1

        // One pass sorts out the fields that decide framing; most requests carry none but Host.
        var hosts: [String] = [], transferEncodings: [String] = [], contentLengths: [String] = [], expects: [String] = []
        for field in headers {
            switch field.name.utf8.count {
            case 4 where field.name.caseInsensitiveEquals("Host"): hosts.append(field.value)
            case 6 where field.name.caseInsensitiveEquals("Expect"): expects.append(field.value)
            case 14 where field.name.caseInsensitiveEquals("Content-Length"): contentLengths.append(field.value)
            case 17 where field.name.caseInsensitiveEquals("Transfer-Encoding"): transferEncodings.append(field.value)
            default: break
            }
        }
        if hosts.count > 1 { throw .badRequest("more than one Host field") }
        if isHTTP11 && hosts.isEmpty { throw .badRequest("missing Host field") }
        if let host = hosts.first, !Self.isValidHost(host) { throw .badRequest("invalid Host field") }

        var framing = HTTPRequestHead.BodyFraming.none
        if !transferEncodings.isEmpty {
            if !contentLengths.isEmpty { throw .badRequest("both Content-Length and Transfer-Encoding") }
            if !isHTTP11 { throw .badRequest("Transfer-Encoding in an HTTP/1.0 request") }
            let codings = headers.tokens("Transfer-Encoding")
            guard let last = codings.last else { throw .badRequest("empty Transfer-Encoding") }
            if codings.dropLast().contains("chunked") { throw .badRequest("chunked is not the final transfer coding") }
            if let unknown = codings.first(where: { $0 != "chunked" }) {
                throw .unsupportedTransferCoding(unknown)
            }
            guard last == "chunked" else { throw .badRequest("chunked is not the final transfer coding") }
            framing = .chunked
        } else if !contentLengths.isEmpty {
            let length = try Self.parseContentLength(contentLengths)
            if length > limits.maxBodyBytes { throw .bodyTooLarge }
            if length > 0 { framing = .contentLength(length) }
        }

        var expectsContinue = false
        if let expect = expects.first {
            guard expects.count == 1, expect.lowercased() == "100-continue" else { throw .expectationFailed }
            expectsContinue = isHTTP11
        }

        let head = HTTPRequestHead(method: partial.method, target: partial.target, version: partial.version,
                                   headers: headers, framing: framing, expectsContinue: expectsContinue)
        self.head = head
        self.body = []
        switch framing {
        case .none: state = .fixedBody(remaining: 0)
        case .contentLength(let n): state = .fixedBody(remaining: n)
        case .chunked: state = .chunkSize
        }
        return head
    }

    /// `1*DIGIT`; a list or repeated fields must all carry the same value (RFC 9110 §8.6).
    static func parseContentLength(_ values: [String]) throws(HTTPParseError) -> Int {
        var result: Int?
        for element in values.flatMap({ $0.split(separator: ",", omittingEmptySubsequences: false) }) {
            let digits = element.trimmingHTTPWhitespace()
            guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                throw .badRequest("invalid Content-Length")
            }
            // Saturate instead of overflowing: anything this large is over every limit anyway.
            let value = digits.utf8.count > 18 ? Int.max : Int(digits)!
            if let result, result != value { throw .badRequest("conflicting Content-Length values") }
            result = value
        }
        guard let result else { throw .badRequest("invalid Content-Length") }
        return result
    }

    static func isValidHost(_ host: String) -> Bool {
        // uri-host [ ":" port ]: reg-name / IPv4 / IP-literal characters; no userinfo, path or whitespace.
        host.utf8.allSatisfy { b in
            switch b {
            case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: true
            case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: ":"),
                UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "%"), UInt8(ascii: "!"), UInt8(ascii: "$"),
                UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "*"),
                UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "="):
                true
            default: false
            }
        }
    }

    /// `chunk-size [ chunk-ext ]`: hex digits (overflow-checked), then extensions, which are tolerated but checked.
    private func parseChunkSize(_ line: ArraySlice<UInt8>) throws(HTTPParseError) -> Int {
        var size = 0
        var index = line.startIndex
        var significantDigits = 0
        while index < line.endIndex, let digit = line[index].hexValue {
            if size > 0 || digit > 0 { significantDigits += 1 }
            guard significantDigits <= 15 else { throw .badRequest("chunk size overflows") }
            size = size << 4 | Int(digit)
            index += 1
        }
        guard index > line.startIndex else { throw .badRequest("invalid chunk size") }
        let rest = line[index...].drop { $0 == .space || $0 == .tab }
        if let first = rest.first {
            guard first == .semicolon else { throw .badRequest("invalid chunk size") }
            guard rest.allSatisfy(\.isFieldValueCharacter) else { throw .badRequest("invalid chunk extension") }
        }
        if size > limits.maxBodyBytes - body.count { throw .bodyTooLarge }
        return size
    }
}
