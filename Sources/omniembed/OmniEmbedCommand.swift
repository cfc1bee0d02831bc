import ArgumentParser

@main
struct OmniEmbedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "omniembed",
        abstract: "Multimodal embedding service for recommender systems.",
        subcommands: [ServeCommand.self],
        defaultSubcommand: ServeCommand.self
    )
}
