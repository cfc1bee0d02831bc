#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing
@testable import Service

@Suite struct ServiceLogHandlerTests {
    /// The timestamp arithmetic agrees with the C library's calendar, across leap days, centuries and 2100.
    @Test func timestampsMatchGmtime() {
        var generator = SystemRandomNumberGenerator()
        let edges = [0, 951_782_399, 951_782_400, 951_868_800, 1_709_164_800, 4_107_542_399, 4_107_542_400, 253_402_300_799]
        let samples = edges + (0..<20_000).map { _ in Int.random(in: 0...253_402_300_799, using: &generator) }
        for seconds in samples {
            var line: [UInt8] = []
            LogClock.append(seconds: seconds, milliseconds: seconds % 1000, to: &line)
            var parts = tm()
            var time = time_t(seconds)
            gmtime_r(&time, &parts)
            func pad(_ n: Int, _ width: Int) -> String {
                let text = String(n)
                return String(repeating: "0", count: max(0, width - text.count)) + text
            }
            let expected = "\(pad(Int(parts.tm_year) + 1900, 4))-\(pad(Int(parts.tm_mon) + 1, 2))-\(pad(Int(parts.tm_mday), 2))T"
                + "\(pad(Int(parts.tm_hour), 2)):\(pad(Int(parts.tm_min), 2)):\(pad(Int(parts.tm_sec), 2)).\(pad(seconds % 1000, 3))Z"
            #expect(String(decoding: line, as: UTF8.self) == expected)
            if String(decoding: line, as: UTF8.self) != expected { return }
        }
    }
}
