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
            Self.clock.appendTimestamp(to: &line)
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
            Self.clock.appendTimestamp(to: &line)
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

    private static let clock = LogClock()
}

/// UTC ISO 8601 timestamps with milliseconds; the part up to the seconds is formatted once per second.
final class LogClock: Sendable {
    private let cache = Locked<(second: Int, prefix: [UInt8])>((-1, []))

    func appendTimestamp(to line: inout [UInt8]) {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        let prefix = cache.withLock { cache in
            if cache.second != spec.tv_sec {
                cache = (spec.tv_sec, Array(Self.formatSeconds(spec.tv_sec).utf8))
            }
            return cache.prefix
        }
        line += prefix
        let millis = spec.tv_nsec / 1_000_000
        line += [UInt8(ascii: "0") + UInt8(millis / 100), UInt8(ascii: "0") + UInt8(millis / 10 % 10),
                 UInt8(ascii: "0") + UInt8(millis % 10), UInt8(ascii: "Z")]
    }

    /// `YYYY-MM-DDTHH:MM:SS.`
    static func formatSeconds(_ seconds: Int) -> String {
        var parts = tm()
        var time = time_t(seconds)
        gmtime_r(&time, &parts)
        func pad(_ n: Int32, _ width: Int) -> String {
            let s = String(n)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(parts.tm_year + 1900)-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))."
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
