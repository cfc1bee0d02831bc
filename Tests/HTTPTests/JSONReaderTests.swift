import Foundation
import HTTP
import Testing

/// The fast-path reader against Foundation's parser: what it reads equals what Foundation reads, and what is
/// not valid JSON (or not the shape asked for) reads as `nil`.
@Suite struct JSONReaderTests {
    func strings(_ text: String) -> [String]? {
        JSONReader.read(Array(text.utf8)) { $0.array { $0.string() } }
    }

    @Test func stringsEqualFoundations() throws {
        let texts = [#"["", "item42", "a\"b\\c\/d", "tab\there\nnew\rline\b\f", "\u00e9\u6f22\ud83d\ude80", "é 漢字 🚀"]"#,
                     " [ \"spaced\" , \"out\" ] ", "[]"]
        for text in texts {
            let foundation = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String]
            #expect(strings(text) == foundation, "\(text)")
        }
    }

    @Test func invalidJSONReadsAsNil() {
        for text in [#"["a""#, #"["a",]"#, #"["a" "b"]"#, "[\"tab\there\"]", #"["\x"]"#, #"["\ud83d"]"#, #"["\ud83dx"]"#,
                     #"["\u12"]"#, #"["a"] x"#, "", #"[1]"#, #"[null]"#, "[\"\u{7F}ok\"]x"] {
            #expect(strings(text) == nil, "\(text)")
        }
        // Invalid UTF-8 inside a string.
        #expect(JSONReader.read([0x5B, 0x22, 0xC3, 0x28, 0x22, 0x5D]) { $0.array { $0.string() } } == nil)
    }

    @Test func numbers() {
        func int(_ text: String) -> Int? { JSONReader.read(Array(text.utf8)) { $0.int() } }
        func float(_ text: String) -> Float? { JSONReader.read(Array(text.utf8)) { $0.float() } }
        #expect(int("42") == 42 && int("-7") == -7 && int("0") == 0 && int(" 5 ") == 5)
        for text in ["5.0", "1e3", "007", "-", "", "99999999999999999999", "+1", "0x10"] { #expect(int(text) == nil, "\(text)") }
        #expect(float("0.25") == 0.25 && float("-1.5e2") == -150 && float("3") == 3 && float("1E-2") == 0.01)
        for text in ["1e400", ".5", "1.", "01", "1e", "--1", "NaN", "Infinity"] { #expect(float(text) == nil, "\(text)") }
    }

    @Test func objectsRejectRepeatedKeysAndStopOnFalse() {
        func keys(_ text: String) -> [String]? {
            JSONReader.read(Array(text.utf8)) { reader in
                var keys: [String] = []
                return reader.object { reader, key in
                    keys.append(key)
                    return reader.int() != nil
                } ? keys : nil
            }
        }
        #expect(keys(#"{"a": 1, "b": 2}"#) == ["a", "b"])
        #expect(keys("{}") == [])
        #expect(keys(#"{"a": 1, "a": 2}"#) == nil)
        #expect(keys(#"{"a": "x"}"#) == nil)
        #expect(keys(#"{"a": 1,}"#) == nil)
        #expect(JSONReader.read(Array("null".utf8)) { $0.null() ? 1 : nil } == 1)
    }
}
