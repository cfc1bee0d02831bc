import Dispatch
import Locking
import Testing

struct LockedTests {
    /// Increments from several threads all land; under `scripts/check/sanitize thread` the sanitizer also sees the lock
    /// (without the annotations it reports every one of these accesses as a race).
    @Test func concurrentUpdatesAreSerialised() {
        let counts = Locked<[Int: Int]>([:])
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            for i in 0..<10_000 { counts.withLock { $0[i % 7, default: 0] += 1 } }
        }
        #expect(counts.withLock { $0.values.reduce(0, +) } == 40_000)
    }

    @Test func errorsAndResultsPassThrough() {
        struct Refused: Error {}
        let value = Locked(1)
        #expect(throws: Refused.self) { try value.withLock { _ throws(Refused) in throw Refused() } }
        #expect(value.withLock { value -> Int in value += 1; return value } == 2)
    }
}
