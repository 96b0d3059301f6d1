import Foundation
import Yams

/// Finds, reads and validates Ferry's configuration: `ferry.yaml` (or `--config`/`FERRY_CONFIG`), an optional
/// `.env`, `${VAR}` interpolation, then the original design's environment variables on top.
package struct ConfigLoader: Sendable {
    /// `--config`, when given.
    package var explicitPath: String?
    /// `--env-file`, when given; otherwise `./.env` is read if it exists.
    package var envFile: String?
    /// The process environment; tests pass their own.
    package var environment: [String: String]
    /// Where relative paths are resolved.
    package var directory: String

    package init(
        explicitPath: String? = nil,
        envFile: String? = nil,
        environment: [String: String]? = nil,
        directory: String? = nil
    ) {
        self.explicitPath = explicitPath
        self.envFile = envFile
        self.environment = environment ?? ProcessInfo.processInfo.environment
        self.directory = directory ?? FileManager.default.currentDirectoryPath
    }

    /// The result of loading: the typed configuration and the merged tree it was read from.
    package struct Loaded: Sendable {
        package var configuration: FerryConfiguration
        /// The tree after interpolation and overrides, with origins; used by `ferry config show`.
        package var tree: ConfigNode
        /// The file that was read, if any.
        package var file: String?
        /// The `.env` file that was read, if any.
        package var envFile: String?
        /// The environment after merging `.env` (real variables win).
        package var environment: [String: String]
    }

    /// Loads the whole configuration.
    package func load() throws(ConfigurationError) -> Loaded { try load(FerryConfiguration.read) }

    /// Loads with `read` picking what to read from the tree (e.g. only `backup:`, for `ferry backup`).
    package func load(_ read: (ConfigReader) -> FerryConfiguration) throws(ConfigurationError) -> Loaded {
        var environment = self.environment
        var usedEnvFile: String?
        let dotenvPath = envFile.map(absolute) ?? absolute(".env")
        if FileManager.default.fileExists(atPath: dotenvPath) {
            let text: String
            do {
                text = try String(contentsOfFile: dotenvPath, encoding: .utf8)
            } catch {
                throw ConfigurationError(
                    file: dotenvPath, issues: [ConfigIssue(path: dotenvPath, problem: "cannot be read", fix: "check the file's permissions")])
            }
            for (key, value) in try DotEnv.parse(text, file: dotenvPath) where environment[key] == nil {
                environment[key] = value
            }
            usedEnvFile = dotenvPath
        } else if let envFile {
            throw ConfigurationError(file: nil, issues: [ConfigIssue(path: envFile, problem: "not found", fix: "check the path given to --env-file")])
        }

        let issues = ConfigIssues()
        var file: String?
        var tree = ConfigNode.mapping([], .builtin)
        if let path = explicitPath ?? environment["FERRY_CONFIG"].flatMap({ $0.isEmpty ? nil : $0 }) {
            let resolved = absolute(path)
            guard FileManager.default.fileExists(atPath: resolved) else {
                let via = explicitPath != nil ? "--config" : "FERRY_CONFIG"
                throw ConfigurationError(
                    file: nil,
                    issues: [
                        ConfigIssue(
                            path: path, problem: "configuration file not found (from \(via))",
                            fix: "check the path, copy examples/ferry.yaml, or run `ferry sandbox up` to write one")
                    ]
                )
            }
            file = resolved
        } else if FileManager.default.fileExists(atPath: absolute("ferry.yaml")) {
            file = absolute("ferry.yaml")
        }
        if let file {
            tree = try Self.parseYAML(file: file)
        }
        tree = Interpolation.expand(tree, path: "", environment: environment, issues: issues)
        tree = EnvironmentOverrides.apply(to: tree, environment: environment)

        let configuration = read(ConfigReader(node: tree, issues: issues))
        if !issues.all.isEmpty { throw ConfigurationError(file: file, issues: issues.all) }
        return Loaded(configuration: configuration, tree: tree, file: file, envFile: usedEnvFile, environment: environment)
    }

    /// Parses YAML text into a tree; errors give line and column but never quote the file (it may hold secrets).
    package static func parseYAML(_ text: String, file: String) throws(ConfigurationError) -> ConfigNode {
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ConfigurationError(
                file: file,
                issues: [
                    ConfigIssue(
                        path: file, problem: "is not valid YAML: \(describe(error))",
                        fix: "fix the syntax at that line (indent with spaces, `key: value`)")
                ])
        } catch {
            throw ConfigurationError(file: file, issues: [ConfigIssue(path: file, problem: "is not valid YAML", fix: "fix its syntax")])
        }
        guard let node else { return .mapping([], .file(path: file, line: 1)) }
        let issues = ConfigIssues()
        var budget = maximumNodes
        let tree = convert(node, file: file, path: "", issues: issues, budget: &budget)
        if budget < 0 {
            // Anchors and aliases nested in each other expand exponentially (a 400-byte "billion laughs" reached
            // 4.8 GB): the walk stops at the bound instead.
            throw ConfigurationError(
                file: file,
                issues: [
                    ConfigIssue(
                        path: file, problem: "expands to more than \(maximumNodes) values (nested YAML anchors and aliases?)",
                        fix: "write the configuration out without aliases; a real one has a few hundred values")
                ])
        }
        if !issues.all.isEmpty { throw ConfigurationError(file: file, issues: issues.all) }
        return tree
    }

    /// The most values (scalars, mappings, sequences) a configuration may expand to.
    static let maximumNodes = 100_000

    static func parseYAML(file: String) throws(ConfigurationError) -> ConfigNode {
        let text: String
        do {
            text = try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            throw ConfigurationError(
                file: file,
                issues: [ConfigIssue(path: file, problem: "cannot be read as UTF-8 text", fix: "check the file's permissions and encoding")])
        }
        return try parseYAML(text, file: file)
    }

    private static func describe(_ error: YamlError) -> String {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return "\(problem) at line \(mark.line), column \(mark.column)"
        case .duplicatedKeysInMapping(let duplicates, _):
            return "duplicated key(s) \(duplicates.sorted().joined(separator: ", "))"
        default:
            return "unreadable"
        }
    }

    private static func convert(_ node: Node, file: String, path: String, issues: ConfigIssues, budget: inout Int) -> ConfigNode {
        let origin = ConfigOrigin.file(path: file, line: node.mark?.line ?? 0)
        budget -= 1
        guard budget >= 0 else { return .null(origin) }
        switch node {
        case .scalar(let scalar):
            if scalar.style == .plain, ["", "~", "null", "Null", "NULL"].contains(scalar.string) { return .null(origin) }
            return .scalar(scalar.string, origin)
        case .mapping(let mapping):
            var pairs: [(key: String, value: ConfigNode)] = []
            for (key, value) in mapping {
                guard budget >= 0 else { break }
                guard case .scalar(let keyScalar) = key else {
                    issues.add(path, "has a key that is not a plain name", fix: "use `name: value`", origin: origin)
                    continue
                }
                let childPath = path.isEmpty ? keyScalar.string : "\(path).\(keyScalar.string)"
                if pairs.contains(where: { $0.key == keyScalar.string }) {
                    issues.add(childPath, "appears twice", fix: "keep one of them", origin: .file(path: file, line: key.mark?.line ?? 0))
                    continue
                }
                pairs.append((keyScalar.string, convert(value, file: file, path: childPath, issues: issues, budget: &budget)))
            }
            return .mapping(pairs, origin)
        case .sequence(let sequence):
            var items: [ConfigNode] = []
            for (offset, element) in sequence.enumerated() {
                guard budget >= 0 else { break }
                items.append(convert(element, file: file, path: "\(path)[\(offset)]", issues: issues, budget: &budget))
            }
            return .sequence(items, origin)
        case .alias:
            issues.add(path, "uses a YAML alias", fix: "write the value out in full", origin: origin)
            return .null(origin)
        }
    }

    private func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        return directory.hasSuffix("/") ? directory + path : directory + "/" + path
    }
}
