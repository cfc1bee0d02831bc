#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import Tensor

@main
struct OmniEmbedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "omniembed",
        abstract: "Multimodal embedding service for recommender systems.",
        subcommands: [ServeCommand.self, EmbedCommand.self, FitCommand.self, ExportCommand.self, ImportCommand.self,
                      BenchmarkCommand.self, KeysCommand.self],
        defaultSubcommand: ServeCommand.self
    )

    static func main() async {
        restartWithPreferredBLASKernel()
        if let problem = KernelSet.problem(with: ProcessInfo.processInfo.environment) {
            exit(withError: ValidationError(problem))
        }
        // Measured now, while nothing else runs: the measurement sets OpenBLAS's thread count for a moment.
        _ = Linear.packedRowLimit
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }

    /// OpenBLAS reads `OPENBLAS_CORETYPE` once, when the library loads (before `main`), so choosing its kernel
    /// means setting the variable and starting the process again.
    ///
    /// `OMNIEMBED_BLAS_CORETYPE` names the kernel for this service (`auto`, the default: SkylakeX on AVX-512 CPUs,
    /// else OpenBLAS's own choice). An `OPENBLAS_CORETYPE` already in the environment is a machine-wide setting
    /// (NumPy and others read it too) and is replaced under `auto` when the CPU can run a faster kernel: a
    /// Debian image that pins `Haswell` on an AVX-512 CPU would otherwise halve every GEMM. The replaced value is
    /// passed on in `OMNIEMBED_BLAS_CORETYPE_REPLACED`, for the start-up log.
    static func restartWithPreferredBLASKernel() {
        let requested = getenv("OMNIEMBED_BLAS_CORETYPE").map { String(cString: $0) } ?? "auto"
        let core = requested == "auto" ? BLAS.preferredCoreType(cpuFlags: BLAS.cpuFlags()) : requested
        let current = getenv("OPENBLAS_CORETYPE").map { String(cString: $0) }
        guard let core, current != core else { return }
        if let current { setenv("OMNIEMBED_BLAS_CORETYPE_REPLACED", current, 1) }
        setenv("OPENBLAS_CORETYPE", core, 1)
        var arguments: [UnsafeMutablePointer<CChar>?] = CommandLine.arguments.map { strdup($0) }
        arguments.append(nil)
        execv("/proc/self/exe", &arguments)
        // exec failed: go on with the kernel OpenBLAS chose itself.
    }
}
