import Testing
@testable import HTTP

/// What a decoder makes of some input: the requests completed, and the error that stopped it, if any.
struct DecodeOutcome: Equatable {
    var requests: [HTTPRequest] = []
    var error: HTTPParseError?
}

func decode(_ pieces: [[UInt8]], limits: HTTPDecoderLimits = HTTPDecoderLimits()) -> DecodeOutcome {
    var decoder = HTTPRequestDecoder(limits: limits)
    var outcome = DecodeOutcome()
    for piece in pieces {
        decoder.feed(piece)
        do {
            while let event = try decoder.next() {
                if case .request(let request) = event { outcome.requests.append(request) }
            }
        } catch {
            outcome.error = error
            return outcome
        }
    }
    return outcome
}

/// Decodes `bytes` whole, one byte at a time, and split in two at every offset; all must agree.
func decodeEveryWay(_ bytes: [UInt8], limits: HTTPDecoderLimits = HTTPDecoderLimits(),
                    sourceLocation: SourceLocation = #_sourceLocation) -> DecodeOutcome {
    let whole = decode([bytes], limits: limits)
    let byteByByte = decode(bytes.map { [$0] }, limits: limits)
    #expect(byteByByte == whole, "byte by byte differs", sourceLocation: sourceLocation)
    // Splitting at every offset of a large input is quadratic; sample offsets beyond the first few hundred.
    let offsets = bytes.count <= 600 ? Array(0...bytes.count) : Array(0...300) + stride(from: 301, through: bytes.count, by: 97)
    for offset in offsets {
        let split = decode([Array(bytes[..<offset]), Array(bytes[offset...])], limits: limits)
        if split != whole {
            Issue.record("split at \(offset) differs: \(split) vs \(whole)", sourceLocation: sourceLocation)
            break
        }
    }
    return whole
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

@Suite struct HTTPRequestDecoderTests {
    /// A request line whose first bytes cannot start a method is refused as soon as they arrive: a binary peer
    /// (a TLS ClientHello on this plain port) never sends the line end the decoder would otherwise wait for.
    @Test func bytesThatCannotStartAMethodAreRefusedAtOnce() {
        #expect(decode([[0x16]]).error == .badRequest("this port speaks plain HTTP; a TLS handshake was sent to it"))
        #expect(decode([[0x16, 0x03, 0x01, 0x02, 0x00]]).error != nil)
        #expect(decode([Array("GE\u{1}".utf8)]).error == .badRequest("invalid method"))
        #expect(decode([Array("{\"items\"".utf8)]).error == .badRequest("invalid method"))
        // A method still arriving, or an empty line before the request line, waits for more.
        #expect(decode([Array("GE".utf8)]) == DecodeOutcome())
        #expect(decode([Array("\r".utf8)]) == DecodeOutcome())
        #expect(decodeEveryWay(Array("\u{16}\u{3}\u{1}GET / HTTP/1.1\r\n\r\n".utf8)).error != nil)
    }

    @Test func simpleGet() throws {
        let outcome = decodeEveryWay(bytes("GET /healthz?x=1 HTTP/1.1\r\nHost: localhost:8080\r\nAccept: */*\r\n\r\n"))
        #expect(outcome.error == nil)
        let request = try #require(outcome.requests.first)
        #expect(request.method == .get)
        #expect(request.head.target == "/healthz?x=1")
        #expect(request.path == "/healthz")
        #expect(request.head.query == "x=1")
        #expect(request.head.version == .http1_1)
        #expect(request.headers["host"] == "localhost:8080")
        #expect(request.body.isEmpty)
    }

    @Test func contentLengthBody() throws {
        let outcome = decodeEveryWay(bytes("POST /embed HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world"))
        #expect(outcome.requests.map(\.body) == [bytes("hello world")])
        #expect(outcome.requests.first?.head.framing == .contentLength(11))
    }

    @Test func chunkedBodyWithExtensionsAndTrailers() {
        let text = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n"
            + "5;name=value;flag\r\nhello\r\n6 ; q=\"quoted; string\"\r\n world\r\n0\r\nX-Checksum: abc\r\nX-Other: d\r\n\r\n"
        let outcome = decodeEveryWay(bytes(text))
        #expect(outcome.error == nil)
        #expect(outcome.requests.map(\.body) == [bytes("hello world")])
        #expect(outcome.requests.first?.head.framing == .chunked)
    }

    @Test func chunkSizeWithLeadingZeros() {
        let text = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0000000000000000005\r\nhello\r\n0\r\n\r\n"
        #expect(decodeEveryWay(bytes(text)).requests.map(\.body) == [bytes("hello")])
    }

    @Test func pipelinedRequestsComeOutInOrder() {
        let text = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi"
            + "GET /3 HTTP/1.1\r\nHost: a\r\n\r\n"
        let outcome = decodeEveryWay(bytes(text))
        #expect(outcome.requests.map(\.path) == ["/1", "/2", "/3"])
        #expect(outcome.requests[1].body == bytes("hi"))
    }

    @Test func leadingEmptyLinesAreIgnored() {
        let outcome = decodeEveryWay(bytes("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"))
        #expect(outcome.requests.count == 1)
    }

    @Test func http10NeedsNoHost() throws {
        let outcome = decodeEveryWay(bytes("GET / HTTP/1.0\r\n\r\n"))
        let request = try #require(outcome.requests.first)
        #expect(request.head.version == .http1_0)
        #expect(!request.head.clientWantsKeepAlive)
        let keepAlive = decodeEveryWay(bytes("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"))
        #expect(keepAlive.requests.first?.head.clientWantsKeepAlive == true)
    }

    @Test func higherMinorVersionIsServedAsHTTP11() {
        #expect(decodeEveryWay(bytes("GET / HTTP/1.7\r\nHost: a\r\n\r\n")).requests.first?.head.version == .http1_1)
    }

    @Test func absoluteFormTarget() {
        let outcome = decodeEveryWay(bytes("GET http://example.com:80/items/7?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n"))
        #expect(outcome.requests.first?.path == "/items/7")
        let bare = decodeEveryWay(bytes("GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n"))
        #expect(bare.requests.first?.path == "/")
    }

    @Test func identicalDuplicateContentLengthsAreOneLength() {
        let outcome = decodeEveryWay(bytes("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\nabc"))
        #expect(outcome.requests.map(\.body) == [bytes("abc")])
    }

    @Test func fieldValuesAreTrimmedAndKeepObsText() {
        let outcome = decodeEveryWay([UInt8]("GET / HTTP/1.1\r\nHost: a\r\nX-A: \t spaced value \t\r\nX-B: caf".utf8)
                                     + [0xC3, 0xA9] + bytes("\r\nX-Empty:\r\n\r\n"))
        let headers = outcome.requests.first?.headers
        #expect(headers?["x-a"] == "spaced value")
        #expect(headers?["X-B"] == "café")
        #expect(headers?["X-Empty"] == "")
    }

    @Test func expectContinueIsRecognised() {
        let outcome = decodeEveryWay(bytes("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\nx"))
        #expect(outcome.requests.first?.head.expectsContinue == true)
    }

    @Test func limitsAreConfigurable() {
        var limits = HTTPDecoderLimits()
        limits.maxBodyBytes = 4
        let tooLong = decodeEveryWay(bytes("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"), limits: limits)
        #expect(tooLong.error == .bodyTooLarge)
        let chunks = decodeEveryWay(bytes("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"),
                                    limits: limits)
        #expect(chunks.error == .bodyTooLarge)
        limits.maxHeaderCount = 2
        #expect(decodeEveryWay(bytes("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n"), limits: limits).error == .headersTooLarge)
        limits.maxRequestLineBytes = 16
        #expect(decodeEveryWay(bytes("GET /0123456789abc HTTP/1.1\r\n"), limits: limits).error == .requestLineTooLong)
    }

    @Test func oversizedLineIsRefusedBeforeItEnds() {
        // A request line that never ends must not be buffered without bound.
        let outcome = decode([bytes("GET /" + String(repeating: "a", count: 9000))])
        #expect(outcome.error == .requestLineTooLong)
        let header = decode([bytes("GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "b", count: 17000))])
        #expect(header.error == .headersTooLarge)
    }

    @Test func incompleteRequestWaitsForMore() {
        let outcome = decodeEveryWay(bytes("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhello"))
        #expect(outcome == DecodeOutcome())
    }

    @Test(arguments: malformedRequests)
    func malformedRequestIsRefused(_ testCase: MalformedRequest) throws {
        let outcome = decodeEveryWay(testCase.bytes)
        let error = try #require(outcome.error, "\(testCase.name) was accepted")
        #expect(error.status.code == testCase.status, "\(testCase.name): \(error)")
        #expect(outcome.requests.isEmpty)
    }

    @Test func malformedCasesAreDistinctAndNumerous() {
        #expect(Set(malformedRequests.map(\.name)).count == malformedRequests.count)
        #expect(Set(malformedRequests.map(\.bytes)).count == malformedRequests.count)
        #expect(malformedRequests.count >= 60)
    }
}
