import CoreMetrics
import Foundation
import HTTP

extension MatchRoute {
    /// Where a `/match` request's time goes, as `omniembed_match_seconds{stage}` and a `Server-Timing` header:
    /// the body's JSON, reading vectors (store cache, inline items' embedding), the features with their JSON
    /// (written block by block where they are computed), joining the blocks into the response.
    struct Stages: Sendable {
        static let names = ["decode", "resolve", "compute", "encode"]
        let timers: [CoreMetrics.Timer]

        init(factory: any MetricsFactory) {
            timers = Self.names.map {
                CoreMetrics.Timer(label: "omniembed_match_seconds", dimensions: [("stage", $0)], factory: factory)
            }
        }

        /// Records the spans between `marks` (one more than stages) and names them in the response.
        func record(_ marks: [ContinuousClock.Instant], in response: inout HTTPResponse) {
            var parts: [String] = []
            for (index, timer) in timers.enumerated() {
                let span = marks[index + 1] - marks[index]
                timer.recordNanoseconds(Int64(span.seconds * 1e9))
                parts.append("\(Self.names[index]);dur=\(String(format: "%.3f", span.seconds * 1e3))")
            }
            parts.append("total;dur=\(String(format: "%.3f", (marks[marks.count - 1] - marks[0]).seconds * 1e3))")
            response.headers.add(name: "Server-Timing", value: parts.joined(separator: ", "))
        }
    }
}
