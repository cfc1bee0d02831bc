import Foundation

/// How the codes of one codebook map onto another's over the same items: per level, each old code's majority new
/// code and each new code's majority old code, with the share of items that agree. Rankers warm-start the SID
/// embedding table of the new codebook from the old one's rows (`new_to_old`), or translate stored features
/// (`old_to_new`).
public enum CodeMapping {
    public struct Majority: Sendable, Equatable {
        public var code: Int
        /// How many items have the code, and how many of them the majority code.
        public var items: Int
        public var agreeing: Int
    }

    /// For one level: each `from` code's majority `to` code (ties to the smaller code).
    public static func majority(from: [Int], to: [Int]) -> [Int: Majority] {
        var counts: [Int: [Int: Int]] = [:]
        for (a, b) in zip(from, to) { counts[a, default: [:]][b, default: 0] += 1 }
        return counts.mapValues { targets in
            let best = targets.max { $0.value < $1.value || ($0.value == $1.value && $0.key > $1.key) }!
            return Majority(code: best.key, items: targets.values.reduce(0, +), agreeing: best.value)
        }
    }

    /// The mapping as JSON: `{"from", "to", "items", "levels": [{"level", "old_to_new": [{"old", "new", "items",
    /// "share"}], "new_to_old": [{"new", "old", "items", "share"}]}]}`, codes in increasing order. `old` and `new`
    /// are row-major codes, `count` rows of `oldLength` and `newLength`; levels are compared up to the shorter.
    public static func between(old: [Int], oldLength: Int, new: [Int], newLength: Int, count: Int,
                               from: String, to: String) -> Data {
        var levels: [[String: Any]] = []
        for level in 0..<min(oldLength, newLength) {
            let a = (0..<count).map { old[$0 * oldLength + level] }
            let b = (0..<count).map { new[$0 * newLength + level] }
            func entries(_ map: [Int: Majority], _ key: String, _ other: String) -> [[String: Any]] {
                map.keys.sorted().map { code in
                    let m = map[code]!
                    return [key: code, other: m.code, "items": m.items, "share": Double(m.agreeing) / Double(m.items)]
                }
            }
            levels.append(["level": level + 1, "old_to_new": entries(majority(from: a, to: b), "old", "new"),
                           "new_to_old": entries(majority(from: b, to: a), "new", "old")])
        }
        let json: [String: Any] = ["from": from, "to": to, "items": count, "levels": levels]
        return (try? JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])) ?? Data("{}".utf8)
    }
}
