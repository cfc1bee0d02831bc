#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Tensor

@main
struct OmniEmbedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "omniembed",
        abstract: "Multimodal embedding service for recommender systems.",
        subcommands: [ServeCommand.self, EmbedCommand.self, FitCommand.self, BenchmarkCommand.self],
        defaultSubcommand: ServeCommand.self
    )

    static func main() async {
        restartWithPreferredBLASKernel()
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
    /// means setting the variable and starting the process again. An explicit setting is always respected.
    static func restartWithPreferredBLASKernel() {
        guard getenv("OPENBLAS_CORETYPE") == nil,
              let core = BLAS.preferredCoreType(cpuFlags: BLAS.cpuFlags())
        else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        var arguments: [UnsafeMutablePointer<CChar>?] = CommandLine.arguments.map { strdup($0) }
        arguments.append(nil)
        execv("/proc/self/exe", &arguments)
        // exec failed: go on with the kernel OpenBLAS chose itself.
    }
}
