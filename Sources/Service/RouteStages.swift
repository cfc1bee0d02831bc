import CoreMetrics
import Foundation
import HTTP

/// Where a request's time goes, stage by stage, as a histogram per stage (`label{stage}`) and a `Server-Timing`
/// header. `/match`: the body's JSON, reading vectors (store cache, inline items' embedding), the features with
/// their JSON (written block by block where they are computed), joining the blocks. `/items/batch_get`: the body,
/// reading the bank and the codes, the JSON.
struct RouteStages: Sendable {
    let names: [String]
    let timers: [CoreMetrics.Timer]

    init(label: String, names: [String], factory: any MetricsFactory) {
        self.names = names
        timers = names.map { CoreMetrics.Timer(label: label, dimensions: [("stage", $0)], factory: factory) }
    }

    /// Records the spans between `marks` (one more than stages) and names them in the response.
    func record(_ marks: [ContinuousClock.Instant], in response: inout HTTPResponse) {
        var parts: [String] = []
        for (index, timer) in timers.enumerated() {
            let span = marks[index + 1] - marks[index]
            timer.recordNanoseconds(Int64(span.seconds * 1e9))
            parts.append("\(names[index]);dur=\(String(format: "%.3f", span.seconds * 1e3))")
        }
        parts.append("total;dur=\(String(format: "%.3f", (marks[marks.count - 1] - marks[0]).seconds * 1e3))")
        response.headers.add(name: "Server-Timing", value: parts.joined(separator: ", "))
    }
}
