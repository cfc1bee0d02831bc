/// JSON written straight into memory, for responses too large or too frequent for `JSONEncoder` (tens of
/// thousands of numbers per `/match` answer). The caller writes the structure; this type gets the separators,
/// escaping and numbers right.
///
/// A `/match` answer is a few hundred thousand calls, so they are inlinable and write through a raw pointer
/// (an array would check its uniqueness on every append); noncopyable, so that the memory has one owner.
public struct JSONWriter: ~Copyable {
    @usableFromInline var base: UnsafeMutablePointer<UInt8>
    @usableFromInline var capacity: Int
    @usableFromInline var count = 0
    /// Whether the last thing written was a value (or a closed container): a comma goes before the next value or
    /// key. No stack is needed: after `[`, `{` or a key nothing is separated, after a value everything is.
    @usableFromInline var afterValue = false

    public init(capacity: Int = 1024) {
        self.capacity = max(64, capacity)
        base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    /// The bytes written, for a response body.
    public consuming func finish() -> [UInt8] {
        Array(UnsafeBufferPointer(start: base, count: count))
    }

    @inlinable public mutating func beginObject() { open(UInt8(ascii: "{")) }
    @inlinable public mutating func endObject() { close(UInt8(ascii: "}")) }
    @inlinable public mutating func beginArray() { open(UInt8(ascii: "[")) }
    @inlinable public mutating func endArray() { close(UInt8(ascii: "]")) }

    /// An object member's name (a literal that needs no escaping); its value is written next.
    @inlinable public mutating func key(_ name: StaticString) {
        name.withUTF8Buffer { name in
            assert(!name.contains { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") })
            reserve(name.count + 4)
            if afterValue { put(UInt8(ascii: ",")) }
            put(UInt8(ascii: "\""))
            put(name)
            put(UInt8(ascii: "\""))
            put(UInt8(ascii: ":"))
        }
        afterValue = false
    }

    /// Elements written by another writer (with no brackets around them), as elements of the array open here:
    /// one part of a large array written in parallel.
    public mutating func appendElements(_ elements: [UInt8]) {
        guard !elements.isEmpty else { return }
        elements.withUnsafeBufferPointer { elements in
            reserve(elements.count + 1)
            if afterValue { put(UInt8(ascii: ",")) }
            put(elements)
        }
        afterValue = true
    }

    /// Object members already written as JSON (`"a":1,"b":"x"`, e.g. by another writer, `bytes`), where the
    /// next member goes: one fragment made once and placed in many objects.
    @inlinable public mutating func members(_ fragment: UnsafeBufferPointer<UInt8>) {
        reserve(fragment.count + 1)
        if afterValue { put(UInt8(ascii: ",")) }
        put(fragment)
        afterValue = !fragment.isEmpty || afterValue
    }

    /// How many bytes are written so far (to cut what one writer wrote into fragments).
    public var byteCount: Int { count }

    @inlinable public mutating func string(_ value: String) {
        var value = value
        // Most strings (ids) need no escaping: copied whole from their UTF-8 storage.
        value.withUTF8 { utf8 in
            if utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
                appendEscaped(utf8)
            } else {
                reserve(utf8.count + 3)
                if afterValue { put(UInt8(ascii: ",")) }
                put(UInt8(ascii: "\""))
                put(utf8)
                put(UInt8(ascii: "\""))
            }
        }
        afterValue = true
    }

    /// `bytes` in standard base64 (with padding), as a string: written straight into the buffer, which needs no
    /// escaping check.
    public mutating func base64(_ bytes: UnsafeRawBufferPointer) {
        let alphabet: StaticString = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        let length = (bytes.count + 2) / 3 * 4
        reserve(length + 3)
        if afterValue { put(UInt8(ascii: ",")) }
        put(UInt8(ascii: "\""))
        if let source = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) {
            alphabet.withUTF8Buffer { table in
                let table = table.baseAddress!
                var (input, output) = (source, base + count)
                let end = source + bytes.count / 3 * 3
                while input < end {
                    let word = UInt32(input[0]) << 16 | UInt32(input[1]) << 8 | UInt32(input[2])
                    output[0] = table[Int(word >> 18)]
                    output[1] = table[Int(word >> 12 & 63)]
                    output[2] = table[Int(word >> 6 & 63)]
                    output[3] = table[Int(word & 63)]
                    input += 3
                    output += 4
                }
                let left = bytes.count % 3
                if left > 0 {
                    let word = UInt32(input[0]) << 16 | (left == 2 ? UInt32(input[1]) << 8 : 0)
                    output[0] = table[Int(word >> 18)]
                    output[1] = table[Int(word >> 12 & 63)]
                    output[2] = left == 2 ? table[Int(word >> 6 & 63)] : UInt8(ascii: "=")
                    output[3] = UInt8(ascii: "=")
                }
            }
            count += length
        }
        put(UInt8(ascii: "\""))
        afterValue = true
    }

    @inlinable public mutating func int(_ value: Int) {
        // Digits written in place (last first, then reversed): no String per number, and a /match answer has
        // tens of thousands.
        reserve(21)
        if afterValue { put(UInt8(ascii: ",")) }
        if value < 0 { put(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        let first = count
        repeat {
            put(UInt8(ascii: "0") + UInt8(magnitude % 10))
            magnitude /= 10
        } while magnitude > 0
        var (low, high) = (first, count - 1)
        while low < high {
            (base[low], base[high]) = (base[high], base[low])
            (low, high) = (low + 1, high - 1)
        }
        afterValue = true
    }

    @inlinable public mutating func bool(_ value: Bool) { appendValue(value ? "true" : "false") }
    @inlinable public mutating func null() { appendValue("null") }

    /// The shortest decimal that reads back as `value`; `null` for NaN and infinities, which JSON cannot carry.
    @inlinable public mutating func float(_ value: Float) {
        appendValue(value.isFinite ? value.description : "null")
    }

    public mutating func floats(_ values: some Sequence<Float>) {
        beginArray()
        for value in values { float(value) }
        endArray()
    }

    // MARK: - Writing bytes

    /// Room for `extra` more bytes.
    @inlinable mutating func reserve(_ extra: Int) {
        if count + extra > capacity { grow(to: count + extra) }
    }

    @usableFromInline mutating func grow(to needed: Int) {
        let capacity = max(needed, 2 * self.capacity)
        let base = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
        base.update(from: self.base, count: count)
        self.base.deallocate()
        self.base = base
        self.capacity = capacity
    }

    /// Unchecked: `reserve` made room.
    @inlinable mutating func put(_ byte: UInt8) {
        base[count] = byte
        count += 1
    }

    @inlinable mutating func put(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let source = bytes.baseAddress else { return }
        (base + count).update(from: source, count: bytes.count)
        count += bytes.count
    }

    @inlinable mutating func open(_ bracket: UInt8) {
        reserve(2)
        if afterValue { put(UInt8(ascii: ",")) }
        put(bracket)
        afterValue = false
    }

    @inlinable mutating func close(_ bracket: UInt8) {
        reserve(1)
        put(bracket)
        afterValue = true
    }

    /// A value's text as it is (a number or literal).
    @inlinable mutating func appendValue(_ text: String) {
        var text = text
        text.withUTF8 { text in
            reserve(text.count + 1)
            if afterValue { put(UInt8(ascii: ",")) }
            put(text)
        }
        afterValue = true
    }

    @usableFromInline mutating func appendEscaped(_ utf8: UnsafeBufferPointer<UInt8>) {
        // At most six bytes per input byte (\u00XX), two quotes and a comma.
        reserve(6 * utf8.count + 3)
        if afterValue { put(UInt8(ascii: ",")) }
        put(UInt8(ascii: "\""))
        let hex = Array("0123456789abcdef".utf8)
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                put(UInt8(ascii: "\\"))
                put(byte)
            case 0x0A: put(UInt8(ascii: "\\")); put(UInt8(ascii: "n"))
            case 0x0D: put(UInt8(ascii: "\\")); put(UInt8(ascii: "r"))
            case 0x09: put(UInt8(ascii: "\\")); put(UInt8(ascii: "t"))
            case 0..<0x20:
                for escaped in [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                hex[Int(byte >> 4)], hex[Int(byte & 15)]] { put(escaped) }
            default: put(byte)
            }
        }
        put(UInt8(ascii: "\""))
    }
}

extension HTTPResponse {
    /// A JSON body written by a `JSONWriter`.
    public static func json(_ writer: consuming JSONWriter, status: HTTPStatus = .ok) -> HTTPResponse {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        return HTTPResponse(status: status, headers: headers, body: writer.finish())
    }
}
