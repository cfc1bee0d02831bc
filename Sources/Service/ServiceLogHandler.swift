#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import HTTP
import Locking
import Logging

/// One line per event on stderr, as logfmt-style text or as a JSON object for log shippers.
///
/// Written for the per-request log line: bytes built directly, UTC timestamps without time-zone look-ups,
/// whole lines handed to a `LogOutput`, so that concurrent lines never interleave.
public struct ServiceLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    private let label: String
    private let format: ServiceConfiguration.LogFormat
    private let output: LogOutput

    public init(label: String, format: ServiceConfiguration.LogFormat, output: LogOutput) {
        self.label = label
        self.format = format
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = metadata
        if let extra = event.metadata {
            if fields.isEmpty { fields = extra } else { fields.merge(extra) { $1 } }
        }
        var line: [UInt8] = []
        line.reserveCapacity(256)
        switch format {
        case .json:
            line += #"{"ts":""#.utf8
            LogClock.appendTimestamp(to: &line)
            line += #"","level":""#.utf8
            line += event.level.rawValue.utf8
            line += #"","logger":"#.utf8
            line += jsonQuoted(label).utf8
            line += #","msg":"#.utf8
            line += jsonQuoted(event.message.description).utf8
            for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
                line.append(UInt8(ascii: ","))
                line += jsonQuoted(key).utf8
                line.append(UInt8(ascii: ":"))
                line += jsonQuoted(value.description).utf8
            }
            line.append(UInt8(ascii: "}"))
        case .text:
            LogClock.appendTimestamp(to: &line)
            line.append(UInt8(ascii: " "))
            line += event.level.rawValue.utf8
            line.append(UInt8(ascii: " "))
            line += event.message.description.utf8
            for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
                let text = value.description
                let plain = !text.isEmpty && text.utf8.allSatisfy { $0 > 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "=") }
                line.append(UInt8(ascii: " "))
                line += key.utf8
                line.append(UInt8(ascii: "="))
                line += (plain ? text : jsonQuoted(text)).utf8
            }
        }
        line.append(UInt8(ascii: "\n"))
        output.write(line, urgent: event.level >= .error)
    }

}

/// UTC ISO 8601 timestamps with milliseconds (`2026-12-06T22:39:28.123Z`), by arithmetic: no time-zone look-up,
/// no lock, no allocation beyond the line's own.
enum LogClock {
    static func appendTimestamp(to line: inout [UInt8]) {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        append(seconds: Int(spec.tv_sec), milliseconds: Int(spec.tv_nsec / 1_000_000), to: &line)
    }

    static func append(seconds: Int, milliseconds: Int, to line: inout [UInt8]) {
        let (days, secondOfDay) = seconds.floorDivided(by: 86_400)
        let (year, month, day) = civil(fromDays: days)
        func digits(_ value: Int, _ count: Int) {
            var divisor = 1
            for _ in 1..<count { divisor *= 10 }
            while divisor > 0 {
                line.append(UInt8(ascii: "0") + UInt8(value / divisor % 10))
                divisor /= 10
            }
        }
        digits(year, 4); line.append(UInt8(ascii: "-")); digits(month, 2); line.append(UInt8(ascii: "-")); digits(day, 2)
        line.append(UInt8(ascii: "T"))
        digits(secondOfDay / 3600, 2); line.append(UInt8(ascii: ":")); digits(secondOfDay / 60 % 60, 2)
        line.append(UInt8(ascii: ":")); digits(secondOfDay % 60, 2); line.append(UInt8(ascii: "."))
        digits(milliseconds, 3); line.append(UInt8(ascii: "Z"))
    }

    /// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
    static func civil(fromDays days: Int) -> (year: Int, month: Int, day: Int) {
        let (era, dayOfEra) = (days + 719_468).floorDivided(by: 146_097)
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153  // March = 0
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

private extension Int {
    /// Quotient rounded towards negative infinity, and the non-negative remainder.
    func floorDivided(by divisor: Int) -> (quotient: Int, remainder: Int) {
        let remainder = self % divisor
        return remainder < 0 ? (self / divisor - 1, remainder + divisor) : (self / divisor, remainder)
    }
}

/// Where log lines go: stderr, through a buffer that is flushed when full, every `flushInterval`, at once for
/// urgent lines (errors), and on `flush()` at shutdown. A zero capacity writes every line as it comes.
///
/// Buffering is what nginx's `access_log buffer=` does: one `write(2)` per request is a measurable share of
/// a cheap request. The price is that a crash may lose the last `flushInterval` of info lines.
public final class LogOutput: Sendable {
    private let capacity: Int
    private let buffer = Locked<[UInt8]>([])
    /// Dispatch sources are thread-safe; the type just does not say so.
    private nonisolated(unsafe) let timer: (any DispatchSourceTimer)?

    public init(capacity: Int, flushInterval: Duration) {
        self.capacity = capacity
        guard capacity > 0 else {
            timer = nil
            return
        }
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "omniembed.log.flush"))
        let interval = DispatchTimeInterval.milliseconds(max(1, Int(flushInterval.seconds * 1000)))
        timer.schedule(deadline: .now() + interval, repeating: interval, leeway: .milliseconds(20))
        self.timer = timer
        timer.setEventHandler { [weak self] in self?.flush() }
        timer.activate()
    }

    deinit {
        timer?.cancel()
        flush()
    }

    func write(_ line: [UInt8], urgent: Bool) {
        guard capacity > 0 else { return Self.writeAll(line) }
        buffer.withLock { buffer in
            buffer += line
            if urgent || buffer.count >= capacity {
                Self.writeAll(buffer)
                buffer.removeAll(keepingCapacity: true)
            }
        }
    }

    /// Writes out whatever is buffered.
    public func flush() {
        buffer.withLock { buffer in
            Self.writeAll(buffer)
            buffer.removeAll(keepingCapacity: true)
        }
    }

    private static func writeAll(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(STDERR_FILENO, $0.baseAddress, $0.count) }
            if written <= 0 { return }
            offset += written
        }
    }
}
