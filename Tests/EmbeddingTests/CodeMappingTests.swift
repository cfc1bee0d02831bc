import Foundation
@testable import Embedding
import Testing

@Suite struct CodeMappingTests {
    /// Each code's majority partner, ties to the smaller code, both directions, per level.
    @Test func majoritiesPerLevel() throws {
        // Six items, two levels each.
        let old = [0, 5, 0, 5, 0, 6, 1, 7, 1, 7, 2, 7]
        let new = [3, 1, 3, 1, 4, 2, 4, 2, 9, 2, 9, 2]
        #expect(CodeMapping.majority(from: [0, 0, 0, 1, 1, 2], to: [3, 3, 4, 4, 9, 9])
                == [0: .init(code: 3, items: 3, agreeing: 2), 1: .init(code: 4, items: 2, agreeing: 1),
                    2: .init(code: 9, items: 1, agreeing: 1)])
        let json = try JSONSerialization.jsonObject(with: CodeMapping.between(
            old: old, oldLength: 2, new: new, newLength: 2, count: 6, from: "a", to: "b")) as! [String: Any]
        #expect(json["from"] as? String == "a" && json["to"] as? String == "b" && json["items"] as? Int == 6)
        let levels = try #require(json["levels"] as? [[String: Any]])
        #expect(levels.count == 2)
        let first = try #require(levels[0]["new_to_old"] as? [[String: Any]])
        #expect(first.map { $0["new"] as? Int } == [3, 4, 9] && first.map { $0["old"] as? Int } == [0, 0, 1])
        let second = try #require(levels[1]["old_to_new"] as? [[String: Any]])
        #expect(second.map { $0["old"] as? Int } == [5, 6, 7] && second.map { $0["new"] as? Int } == [1, 2, 2])
        #expect(second.map { $0["share"] as? Double } == [1, 1, 1])
    }
}
