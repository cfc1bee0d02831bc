/// Requests the server must refuse, with the status it must send before closing the connection.
/// The decoder tests check the status of the thrown error; the live tests send each over a socket.
struct MalformedRequest: Sendable, CustomTestStringConvertible {
    let name: String
    let bytes: [UInt8]
    let status: Int

    init(_ name: String, _ text: String, _ status: Int) {
        self.name = name
        self.bytes = Array(text.utf8)
        self.status = status
    }

    var testDescription: String { name }
}

import Testing

let post = "POST / HTTP/1.1\r\nHost: a\r\n"

let malformedRequests: [MalformedRequest] = [
    // Framing conflicts (request smuggling).
    .init("CL and TE", post + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    .init("TE and CL", post + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400),
    .init("differing duplicate CL", post + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
    .init("differing CL list", post + "Content-Length: 5, 6\r\n\r\nhello!", 400),
    .init("CL with plus sign", post + "Content-Length: +5\r\n\r\nhello", 400),
    .init("negative CL", post + "Content-Length: -1\r\n\r\n", 400),
    .init("hex CL", post + "Content-Length: 0x5\r\n\r\nhello", 400),
    .init("CL with inner space", post + "Content-Length: 5 5\r\n\r\nhello", 400),
    .init("empty CL", post + "Content-Length: \r\n\r\n", 400),
    .init("alphabetic CL", post + "Content-Length: abc\r\n\r\n", 400),
    .init("decimal CL", post + "Content-Length: 5.0\r\n\r\nhello", 400),
    .init("CL overflowing 64 bits", post + "Content-Length: 99999999999999999999999\r\n\r\n", 413),
    .init("CL over the body limit", post + "Content-Length: 20000000\r\n\r\n", 413),
    .init("chunked not last", post + "Transfer-Encoding: chunked, gzip\r\n\r\n", 400),
    .init("unknown coding", post + "Transfer-Encoding: gzip\r\n\r\n", 501),
    .init("unknown coding before chunked", post + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
    .init("identity coding", post + "Transfer-Encoding: identity\r\n\r\n", 501),
    .init("lookalike coding", post + "Transfer-Encoding: xchunked\r\n\r\n", 501),
    .init("chunked twice in a list", post + "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400),
    .init("chunked twice in two fields", post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    .init("TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    .init("empty TE", post + "Transfer-Encoding: \r\n\r\n", 400),
    .init("TE with space before colon", post + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400),
    .init("TE with vertical tab", post + "Transfer-Encoding: \u{0B}chunked\r\n\r\n0\r\n\r\n", 400),

    // Chunked framing.
    .init("chunk size overflow", post + "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", 400),
    .init("chunk size junk", post + "Transfer-Encoding: chunked\r\n\r\n5x\r\nhello\r\n0\r\n\r\n", 400),
    .init("negative chunk size", post + "Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", 400),
    .init("empty chunk size", post + "Transfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n", 400),
    .init("0x chunk size", post + "Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", 400),
    .init("chunk size with leading space", post + "Transfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n", 400),
    .init("chunk data without CRLF", post + "Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", 400),
    .init("bare LF after chunk size", post + "Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", 400),
    .init("bare LF after chunk data", post + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n", 400),
    .init("bare CR after chunk data", post + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r0\r\n\r\n", 400),
    .init("bare LF after last chunk", post + "Transfer-Encoding: chunked\r\n\r\n0\n\r\n", 400),
    .init("chunk extension too long",
          post + "Transfer-Encoding: chunked\r\n\r\n5;" + String(repeating: "a", count: 5000) + "\r\nhello\r\n0\r\n\r\n", 400),
    .init("control character in chunk extension", post + "Transfer-Encoding: chunked\r\n\r\n5;a=\u{01}\r\nhello\r\n0\r\n\r\n", 400),
    .init("chunk over the body limit", post + "Transfer-Encoding: chunked\r\n\r\n1000001\r\n", 413),
    .init("obs-fold in trailer", post + "Transfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b\r\n\r\n", 400),
    .init("invalid trailer name", post + "Transfer-Encoding: chunked\r\n\r\n0\r\nX Y: a\r\n\r\n", 400),

    // Request line.
    .init("bare LF after request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400),
    .init("bare CR in request line", "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    .init("double space in request line", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    .init("trailing space in request line", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400),
    .init("tab separator in request line", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    .init("HTTP/0.9 style request", "GET /\r\n\r\n", 400),
    .init("lower-case protocol name", "GET / http/1.1\r\nHost: a\r\n\r\n", 400),
    .init("HTTP/0.9 version", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505),
    .init("HTTP/2.0 version", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    .init("HTTP/3.0 version", "GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505),
    .init("two-digit minor version", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400),
    .init("version without minor", "GET / HTTP/1\r\nHost: a\r\n\r\n", 400),
    .init("invalid method character", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    .init("non-ASCII target", "GET /\u{E9} HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    .init("fragment in target", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    .init("relative target", "GET a HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    .init("asterisk target with GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    .init("NUL in request line", "GET /\u{00} HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    .init("request line too long", "GET /" + String(repeating: "a", count: 9000) + " HTTP/1.1\r\nHost: a\r\n\r\n", 414),
    .init("too many empty lines first", String(repeating: "\r\n", count: 9) + "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),

    // Header fields.
    .init("obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n", 400),
    .init("whitespace line after request line", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400),
    .init("space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
    .init("tab before colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400),
    .init("invalid character in field name", "GET / HTTP/1.1\r\nHost: a\r\nX(Y: b\r\n\r\n", 400),
    .init("non-ASCII field name", "GET / HTTP/1.1\r\nHost: a\r\nX\u{E9}: b\r\n\r\n", 400),
    .init("empty field name", "GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", 400),
    .init("field line without colon", "GET / HTTP/1.1\r\nHost: a\r\nXY\r\n\r\n", 400),
    .init("NUL in field value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\u{00}b\r\n\r\n", 400),
    .init("bare CR in field value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400),
    .init("bare LF in field value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\nb\r\n\r\n", 400),
    .init("control character in field value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\u{01}b\r\n\r\n", 400),
    .init("DEL in field value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\u{7F}b\r\n\r\n", 400),
    .init("bare LF ending the header section", "GET / HTTP/1.1\r\nHost: a\r\n\n", 400),
    .init("missing Host in HTTP/1.1", "GET / HTTP/1.1\r\nX: a\r\n\r\n", 400),
    .init("repeated Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    .init("Host with a space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    .init("Host with a path", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
    .init("Host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400),
    .init("field too large", "GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "b", count: 20000) + "\r\n\r\n", 431),
    .init("too many fields",
          "GET / HTTP/1.1\r\nHost: a\r\n" + (0..<101).map { "X-\($0): b\r\n" }.joined() + "\r\n", 431),
    .init("unsupported expectation", post + "Expect: 200-ok\r\nContent-Length: 1\r\n\r\na", 417),
]
