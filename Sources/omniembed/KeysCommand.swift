import ArgumentParser
import HTTP
import Service

/// `omniembed keys new NAME --scopes embed,read`: a new API key, printed once, and the keys-file line for it.
struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Manage API keys.",
        subcommands: [New.self]
    )

    struct New: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a new API key.",
            discussion: """
                Prints the key (shown this once: only its hash is kept) and the line to add to the file that \
                auth.keysFile names; the service reads it again on SIGHUP.
                """
        )

        @Argument(help: "The key's name, as logs and metrics show it (A-Z a-z 0-9 . _ -).")
        var name: String

        @Option(name: .long, help: "Comma-separated scopes: embed, read, write, admin.")
        var scopes: String

        func run() throws {
            let scopes = scopes.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            let key: String, line: String
            do {
                (key, line) = try APIKeys.generate(name: name, scopes: scopes, allowed: OmniEmbedService.apiKeyScopes)
            } catch {
                throw ValidationError(error.reason)
            }
            print("key:  \(key)")
            print("line: \(line)")
        }
    }
}
