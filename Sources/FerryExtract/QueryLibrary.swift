package import FerryCore
import Foundation
import Yams

/// The query library of the original bridge: `queries/<name>.sql` files with `{param}` placeholders, and parameters
/// layered from `config/common_params.yaml` and `config/<Country>.yaml` (the country's file wins).
package struct QueryLibrary: Sendable {
    package let queriesPath: String
    package let configPath: String

    package init(queriesPath: String, configPath: String) {
        self.queriesPath = queriesPath
        self.configPath = configPath
    }

    /// A query or country name: letters, digits, `_` and `-` (so it can only name a file in its directory).
    static func checkName(_ name: String, what: String) throws(FerryError) {
        let valid =
            !name.isEmpty && name.count <= 128 && name.first != "-"
            && name.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_" || $0 == "-") }
        guard valid else {
            throw FerryError(
                .invalidInput, "\(what) \"\(PrintableText.escaped(String(name.prefix(60))))\" is not a name",
                fix: "use letters, digits, _ and - only (the name of a file in its directory, without its extension)")
        }
    }

    /// The query names (`*.sql` in the queries directory), sorted.
    package func queryNames() throws(FerryError) -> [String] {
        let entries: [String]
        do {
            entries = try FileManager.default.contentsOfDirectory(atPath: queriesPath)
        } catch {
            throw FerryError(
                .notFound, "the queries directory \(queriesPath) cannot be read", fix: "pass --queries-path with the directory of .sql files")
        }
        return entries.filter { $0.hasSuffix(".sql") }.map { String($0.dropLast(4)) }.filter { (try? Self.checkName($0, what: "")) != nil }.sorted()
    }

    /// The SQL of query `name`.
    package func sql(_ name: String) throws(FerryError) -> String {
        try Self.checkName(name, what: "query")
        let path = queriesPath + "/" + name + ".sql"
        guard let data = FileManager.default.contents(atPath: path) else {
            let known = (try? queryNames()) ?? []
            throw FerryError(
                .notFound, "no query \(name) in \(queriesPath)",
                fix: known.isEmpty ? "add \(name).sql there" : "use one of: \(known.joined(separator: ", "))")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw FerryError(.invalidInput, "\(path) is not UTF-8 text", fix: "save it as UTF-8")
        }
        return text
    }

    /// The countries: every `<Country>.yaml` in the config directory but `common_params.yaml`.
    package func countries() -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: configPath)) ?? []
        return entries.filter { $0.hasSuffix(".yaml") && $0 != "common_params.yaml" }.map { String($0.dropLast(5)) }.sorted()
    }

    /// `common_params.yaml` overlaid with `<country>.yaml`, then with `overrides` (`--param`).
    package func parameters(country: String?, overrides: [String: String] = [:]) throws(FerryError) -> [String: String] {
        var values: [String: String] = [:]
        let common = configPath + "/common_params.yaml"
        if FileManager.default.fileExists(atPath: common) { values.merge(try Self.readParameters(common)) { $1 } }
        if let country {
            try Self.checkName(country, what: "country")
            let path = configPath + "/" + country + ".yaml"
            guard FileManager.default.fileExists(atPath: path) else {
                let known = countries()
                throw FerryError(
                    .notFound, "no parameters for country \(country) (\(path))",
                    fix: known.isEmpty ? "create \(country).yaml in \(configPath)" : "use one of: \(known.joined(separator: ", "))")
            }
            values.merge(try Self.readParameters(path)) { $1 }
        }
        values.merge(overrides) { $1 }
        return values
    }

    /// A flat YAML mapping of names to scalars.
    static func readParameters(_ path: String) throws(FerryError) -> [String: String] {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw FerryError(.notFound, "\(path) cannot be read", fix: "check the file and its permissions")
        }
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            throw FerryError(.configuration, "\(path) is not valid YAML: \(error)", fix: "fix the YAML (name: value per line)")
        }
        guard let node else { return [:] }
        guard let mapping = node.mapping else {
            throw FerryError(.configuration, "\(path) is not a mapping of names to values", fix: "write one `name: value` per line")
        }
        var values: [String: String] = [:]
        for (key, value) in mapping {
            guard let name = key.string else { continue }
            guard let scalar = value.scalar else {
                throw FerryError(.configuration, "\(path): \(name) is not a single value", fix: "give it one value (a string, number or date)")
            }
            values[name] = scalar.string
        }
        return values
    }

    /// Whether a parameter's value should be masked when shown (passwords, tokens, keys, secrets).
    package static func isSecret(_ name: String) -> Bool {
        let lower = name.lowercased()
        return ["password", "secret", "token", "key", "credential"].contains { lower.contains($0) }
    }
}
