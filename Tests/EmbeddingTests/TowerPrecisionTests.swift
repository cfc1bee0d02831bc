import Foundation
import Embedding
import Testing

/// A precision the CPU (or the kernel set in use) lacks runs as fp32, with one start-up line saying so; scripts/test
/// runs this suite again on the narrower kernel sets, where bf16 and int8 are never native.
@Suite struct TowerPrecisionTests {
    @Test func whatCannotRunHereFallsBackToFP32WithANotice() {
        #expect(TowerPrecision.fp32.effective == .fp32 && TowerPrecision.fp32.fallbackNotice(tower: "text") == nil)
        for precision in [TowerPrecision.bf16, .int8] {
            let notice = precision.fallbackNotice(tower: "audio")
            #expect(precision.effective == precision || precision.effective == .fp32)
            #expect((notice == nil) == (precision.effective == precision))
            if let notice { #expect(notice.contains(precision.rawValue) && notice.contains("audio tower runs fp32")) }
        }
        let kernels = ProcessInfo.processInfo.environment["OMNIEMBED_KERNELS"]
        if kernels == "avx2" || kernels == "portable" {
            #expect(TowerPrecision.bf16.effective == .fp32 && TowerPrecision.int8.effective == .fp32)
        }
    }
}
