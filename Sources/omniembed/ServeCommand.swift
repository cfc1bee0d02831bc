#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import Foundation
import Logging
import Service
import Tensor

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the HTTP service until SIGTERM or SIGINT.",
        discussion: """
            Settings come from the JSON file given with --config. Any key can be overridden by an environment \
            variable: OMNIEMBED_ followed by the key path in upper snake case, for example OMNIEMBED_PORT or \
            OMNIEMBED_HTTP_MAX_BODY_BYTES. Command-line options override both.
            """
    )

    @OptionGroup var settingsOptions: SettingsOptions

    @Option(name: .long, help: "Address to bind (default 127.0.0.1: loopback only).")
    var host: String?

    @Option(name: .long, help: "Port to listen on (default 8080; 0 picks a free port).")
    var port: Int?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error or critical.")
    var logLevel: String?

    func run() async throws {
        var settings: ServiceConfiguration
        do {
            settings = try await settingsOptions.load()
            if let host { settings.http.host = host }
            if let port { settings.http.port = port }
            if let logLevel {
                guard let level = Logger.Level(rawValue: logLevel) else {
                    throw ValidationError("--log-level must be one of \(Logger.Level.allCases.map(\.rawValue))")
                }
                settings.logLevel = level
            }
            try settings.validate()
        } catch let error as ValidationError {
            throw error
        } catch {
            throw ValidationError("invalid configuration: \(error)")
        }

        let (level, format) = (settings.logLevel, settings.logFormat)
        let output = LogOutput(capacity: settings.logBufferBytes, flushInterval: settings.logFlushInterval)
        LoggingSystem.bootstrap { label in
            var handler = ServiceLogHandler(label: label, format: format, output: output)
            handler.logLevel = level
            return handler
        }
        defer { output.flush() }
        let logger = Logger(label: "omniembed")
        let packedRows = Linear.packedRowLimit == .max ? "all" : "up to \(Linear.packedRowLimit)"
        var blas: Logger.Metadata = ["kernel": "\(BLAS.coreName)", "packed_linear_rows": "\(packedRows)",
                                     "c_kernels": "\(KernelSet.current.rawValue)"]
        if let replaced = ProcessInfo.processInfo.environment["OMNIEMBED_BLAS_CORETYPE_REPLACED"] {
            blas["replaced"] = "\(replaced)"
        }
        logger.info("blas", metadata: blas)

        do {
            let service = try OmniEmbedService(configuration: settings, logger: logger)
            try await service.run()
        } catch {
            logger.critical("could not start", metadata: ["error": "\(error)"])
            throw ExitCode.failure
        }
    }
}
