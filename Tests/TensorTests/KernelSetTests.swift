import Foundation
import Tensor
import Testing

/// The kernels' instruction set follows `OMNIEMBED_KERNELS`: scripts/test runs the kernel suites once per set, and
/// this holds each run to the set it asked for.
@Suite struct KernelSetTests {
    @Test func theEnvironmentChoosesTheSet() {
        let asked = ProcessInfo.processInfo.environment["OMNIEMBED_KERNELS"].flatMap(KernelSet.init(rawValue:))
        #expect(KernelSet.current == min(asked ?? .best, .best))
    }

    @Test func unknownWordsAndMissingInstructionsAreProblems() {
        #expect(KernelSet.problem(with: ["OMNIEMBED_KERNELS": "sse9"]) != nil)
        #expect(KernelSet.problem(with: ["OMNIEMBED_KERNELS": "portable"]) == nil)
        #expect(KernelSet.problem(with: ["OMNIEMBED_KERNELS": "auto"]) == nil)
        #expect(KernelSet.problem(with: [:]) == nil)
        if KernelSet.best < .avx512 {
            #expect(KernelSet.problem(with: ["OMNIEMBED_KERNELS": "avx512"]) != nil)
        }
    }
}
