import Foundation
import HTTP
import Testing

/// The response writer against Foundation's JSON parser: integers at the edges, strings that need escaping and
/// strings that do not, floats and non-finite floats.
@Suite struct JSONWriterTests {
    @Test func whatItWritesParsesBackToTheSameValues() throws {
        let integers = [0, 7, -7, 10, 1_000_000, Int.max, Int.min]
        let strings = ["", "item42", "tab\there", "quote \" and \\ backslash", "line\nbreak\r", "\u{1}\u{1F}", "é 漢字 🚀"]
        let floats: [Float] = [0, -0.5, 1e-7, 3.4028235e38, 0.1]
        var json = JSONWriter()
        json.beginObject()
        json.key("integers")
        json.beginArray()
        for value in integers { json.int(value) }
        json.endArray()
        json.key("strings")
        json.beginArray()
        for value in strings { json.string(value) }
        json.endArray()
        json.key("floats")
        json.floats(floats + [.nan, .infinity])
        json.endObject()

        let parsed = try #require(JSONSerialization.jsonObject(with: Data(json.finish())) as? [String: Any])
        #expect((parsed["integers"] as? [NSNumber])?.map(\.int64Value) == integers.map(Int64.init))
        #expect(parsed["strings"] as? [String] == strings)
        let read = try #require(parsed["floats"] as? [Any])
        #expect(read.prefix(floats.count).map { Float(($0 as! NSNumber).doubleValue) } == floats)
        #expect(read.suffix(2).allSatisfy { $0 is NSNull })
    }

    /// Elements written by separate writers (in parallel, in the service) join into one array, empty parts too;
    /// a writer that grows past its first capacity keeps what it wrote.
    @Test func partsJoinIntoOneArray() throws {
        func part(_ values: Range<Int>) -> [UInt8] {
            var json = JSONWriter(capacity: 1)
            for value in values {
                json.beginObject()
                json.key("n")
                json.int(value)
                json.key("s")
                json.string("item\(value)")
                json.endObject()
            }
            return json.finish()
        }
        var json = JSONWriter()
        json.beginObject()
        json.key("data")
        json.beginArray()
        for range in [0..<3, 3..<3, 3..<200, 200..<201] { json.appendElements(part(range)) }
        json.endArray()
        json.key("after")
        json.bool(true)
        json.endObject()
        let parsed = try #require(JSONSerialization.jsonObject(with: Data(json.finish())) as? [String: Any])
        let data = try #require(parsed["data"] as? [[String: Any]])
        #expect(data.map { ($0["n"] as! NSNumber).intValue } == Array(0..<201))
        #expect(data.map { $0["s"] as! String } == (0..<201).map { "item\($0)" })
        #expect(parsed["after"] as? Bool == true)
    }

    /// Members written once by another writer go into many objects: first, after other members, or empty;
    /// integers of every digit count round-trip.
    @Test func fragmentsOfMembersGoIntoObjects() throws {
        var source = JSONWriter()
        source.key("index")
        source.int(12)
        source.key("id")
        source.string("a \"quoted\" id")
        let end = source.byteCount
        let fragment = source.finish()
        #expect(end == fragment.count)
        var json = JSONWriter(capacity: 1)
        json.beginArray()
        let integers = (0..<19).map { Int(pow(10, Double($0))) } + (1..<19).map { -Int(pow(10, Double($0))) + 1 }
        for value in integers {
            json.beginObject()
            fragment.withUnsafeBufferPointer { json.members($0) }
            json.key("n")
            json.int(value)
            json.endObject()
            json.beginObject()
            json.key("n")
            json.int(value)
            fragment.withUnsafeBufferPointer { json.members($0) }
            [UInt8]().withUnsafeBufferPointer { json.members($0) }
            json.endObject()
        }
        json.beginObject()
        [UInt8]().withUnsafeBufferPointer { json.members($0) }
        json.key("n")
        json.int(0)
        json.endObject()
        json.endArray()
        let parsed = try #require(JSONSerialization.jsonObject(with: Data(json.finish())) as? [[String: Any]])
        #expect(parsed.count == 2 * integers.count + 1)
        for (index, object) in parsed.dropLast().enumerated() {
            #expect((object["n"] as? NSNumber)?.int64Value == Int64(integers[index / 2]))
            #expect(object["index"] as? Int == 12 && object["id"] as? String == "a \"quoted\" id")
        }
        #expect(parsed.last?.count == 1)
    }

    /// Base64 written straight into the buffer equals Foundation's encoding, for every length's padding.
    @Test func base64MatchesFoundation() throws {
        var generator = SystemRandomNumberGenerator()
        for length in 0..<70 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            var json = JSONWriter()
            json.beginArray()
            bytes.withUnsafeBytes { json.base64($0) }
            json.int(1)
            json.endArray()
            #expect(String(decoding: json.finish(), as: UTF8.self) == "[\"\(Data(bytes).base64EncodedString())\",1]")
        }
    }
}
