import ArgumentParser
import Foundation
import Service

/// The option every command that reads the settings takes: the file, under the environment's overrides.
struct SettingsOptions: ParsableArguments {
    @Option(name: .long, help: "JSON configuration file (config/default.json in the repository).")
    var config: String?

    /// The settings from `--config` and `OMNIEMBED_*` variables.
    func load() async throws -> ServiceConfiguration {
        try await ServiceConfiguration.load(file: config, environment: ProcessInfo.processInfo.environment)
    }
}
