import ArgumentParser
import FerryCore

/// `ferry config show | validate`.
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Show or validate the effective configuration.",
        subcommands: [Show.self, Validate.self]
    )

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the effective configuration (file + .env + environment, defaults filled in); secrets as ***.",
            discussion: "Each value that did not come from the file is marked with its origin: `# from $PG_HOST` or `# default`."
        )

        @OptionGroup var options: GlobalOptions

        func run() async throws {
            let loaded = try options.load()
            var header = "# effective configuration"
            if let file = loaded.file { header += " from \(file)" }
            if let envFile = loaded.envFile { header += " and \(envFile)" }
            Terminal.print(header + "\n" + loaded.configuration.renderYAML(tree: loaded.tree), terminator: "")
        }
    }

    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check the configuration without connecting anywhere; exits 2 when it is invalid.")

        @OptionGroup var options: GlobalOptions

        func run() async throws {
            let loaded = try options.load()
            let configuration = loaded.configuration
            let source = loaded.file ?? "environment only (no ferry.yaml)"
            Terminal.print("configuration OK: \(source) — \(configuration.endpoints.count) endpoint(s), \(configuration.pipelines.count) pipeline(s)")
        }
    }
}

extension Terminal {
    static func print(_ text: String, terminator: String) {
        Swift.print(text, terminator: terminator)
    }
}
