/// Collects every problem found while reading a configuration tree, so all are reported at once.
package final class ConfigIssues {
    package private(set) var all: [ConfigIssue] = []

    package init() {}

    package func add(_ path: String, _ problem: String, fix: String, origin: ConfigOrigin? = nil) {
        all.append(ConfigIssue(path: path, problem: problem, fix: fix, origin: origin))
    }
}

/// Reads one mapping of the configuration tree into typed values, recording problems instead of throwing.
///
/// Each accessor marks its key as known; ``finish()`` then reports keys nobody asked for, with a suggestion
/// when one is close to a known key (a typo like `hots` for `host`).
package struct ConfigReader {
    package let path: String
    package let node: ConfigNode?
    package let issues: ConfigIssues
    private let known: KnownKeys

    private final class KnownKeys {
        var keys: [String] = []
    }

    package init(node: ConfigNode?, path: String = "", issues: ConfigIssues) {
        self.node = node
        self.path = path
        self.issues = issues
        self.known = KnownKeys()
        if let node, !node.isMapping, !node.isNull {
            issues.add(path, "expected a mapping of keys to values", fix: "write `key: value` lines under `\(path)`", origin: node.origin)
        }
    }

    /// Whether the section was written at all.
    package var isPresent: Bool {
        guard let node else { return false }
        return !node.isNull
    }

    package func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    private func value(_ key: String) -> ConfigNode? {
        known.keys.append(key)
        guard let value = node?[key], !value.isNull else { return nil }
        return value
    }

    /// Whether `key` is present and not null.
    package func has(_ key: String) -> Bool {
        guard let value = node?[key] else { return false }
        return !value.isNull
    }

    package func origin(_ key: String) -> ConfigOrigin? { node?[key]?.origin }

    package func string(_ key: String) -> String? {
        guard let value = value(key) else { return nil }
        guard case .scalar(let text, _) = value else {
            issues.add(keyPath(key), "expected a single value, found \(value.kindName)", fix: "write `\(key): value`", origin: value.origin)
            return nil
        }
        return text
    }

    /// A PostgreSQL column type (it goes into DDL): checked against the grammar of type names.
    package func typeName(_ key: String) -> String? {
        guard let text = string(key) else { return nil }
        if let problem = PostgresTypeName.problem(text) {
            issues.add(
                keyPath(key), "\"\(PrintableText.escaped(text))\" is not a PostgreSQL type name: it \(problem)",
                fix: "write a type such as text, bigint, numeric(12,2), timestamp with time zone or text[]", origin: origin(key))
            return nil
        }
        return text
    }

    package func string(_ key: String, required fix: String) -> String? {
        guard let text = string(key) else {
            if !has(key) { issues.add(keyPath(key), "missing", fix: fix, origin: nil) }
            return nil
        }
        if text.isEmpty {
            issues.add(keyPath(key), "empty", fix: fix, origin: origin(key))
            return nil
        }
        return text
    }

    package func secret(_ key: String) -> Secret? { string(key).map(Secret.init) }

    package func int(_ key: String, range: ClosedRange<Int>? = nil, fix: String? = nil) -> Int? {
        guard let text = string(key) else { return nil }
        guard let number = Int(text.trimmingSpaces()) else {
            issues.add(keyPath(key), "\(quoted(text)) is not a whole number", fix: fix ?? rangeFix(range), origin: origin(key))
            return nil
        }
        if let range, !range.contains(number) {
            issues.add(keyPath(key), "\(number) is out of range", fix: fix ?? rangeFix(range), origin: origin(key))
            return nil
        }
        return number
    }

    package func bool(_ key: String) -> Bool? {
        guard let text = string(key) else { return nil }
        switch text.lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default:
            issues.add(keyPath(key), "\(quoted(text)) is not true or false", fix: "write `\(key): true` or `\(key): false`", origin: origin(key))
            return nil
        }
    }

    /// A duration such as `250ms`, `10s`, `5m`, `1h`; a bare number means seconds (as in `SYNC_INTERVAL=60`).
    package func duration(_ key: String, minimum: Duration = .zero) -> Duration? {
        guard let text = string(key) else { return nil }
        guard let duration = DurationParser.parse(text) else {
            issues.add(
                keyPath(key), "\(quoted(text)) is not a duration", fix: "write a number of seconds or a value like `500ms`, `10s`, `5m`, `1h`",
                origin: origin(key))
            return nil
        }
        if duration < minimum {
            issues.add(keyPath(key), "\(quoted(text)) is too short", fix: "use at least \(DurationParser.format(minimum))", origin: origin(key))
            return nil
        }
        return duration
    }

    /// One of a fixed set of words.
    package func choice<T: RawRepresentable & CaseIterable>(_ key: String, as type: T.Type = T.self) -> T? where T.RawValue == String {
        guard let text = string(key) else { return nil }
        if let value = T(rawValue: text.lowercased()) { return value }
        let options = T.allCases.map { "`\($0.rawValue)`" }.joined(separator: ", ")
        issues.add(keyPath(key), "\(quoted(text)) is not allowed", fix: "use one of \(options)", origin: origin(key))
        return nil
    }

    /// A list of strings; a single value is accepted as a list of one.
    package func strings(_ key: String) -> [String]? {
        guard let value = value(key) else { return nil }
        switch value {
        case .scalar(let text, _):
            return text.split(separator: ",").map { String($0).trimmingSpaces() }.filter { !$0.isEmpty }
        case .sequence(let items, _):
            var result: [String] = []
            for (index, item) in items.enumerated() {
                guard case .scalar(let text, _) = item else {
                    issues.add("\(keyPath(key))[\(index)]", "expected a single value", fix: "list plain values", origin: item.origin)
                    continue
                }
                result.append(text)
            }
            return result
        default:
            issues.add(keyPath(key), "expected a list", fix: "write `\(key): [a, b]`", origin: value.origin)
            return nil
        }
    }

    /// A nested mapping.
    package func section(_ key: String) -> ConfigReader {
        ConfigReader(node: value(key), path: keyPath(key), issues: issues)
    }

    /// A list of mappings, each read by its own reader.
    package func sections(_ key: String) -> [ConfigReader] {
        guard let value = value(key) else { return [] }
        guard case .sequence(let items, _) = value else {
            issues.add(keyPath(key), "expected a list", fix: "start each entry of `\(key)` with `- `", origin: value.origin)
            return []
        }
        return items.enumerated().map { ConfigReader(node: $0.element, path: "\(keyPath(key))[\($0.offset)]", issues: issues) }
    }

    /// A mapping whose keys are names chosen by the user (for example named sources).
    package func namedSections(_ key: String) -> [(name: String, reader: ConfigReader)] {
        guard let value = value(key) else { return [] }
        guard case .mapping(let pairs, _) = value else {
            issues.add(keyPath(key), "expected a mapping of names to settings", fix: "write `name:` lines under `\(key)`", origin: value.origin)
            return []
        }
        return pairs.map { ($0.key, ConfigReader(node: $0.value, path: "\(keyPath(key)).\($0.key)", issues: issues)) }
    }

    /// A mapping of user-chosen names to raw nodes.
    package func entries(_ key: String) -> [(name: String, node: ConfigNode)] {
        guard let value = value(key) else { return [] }
        guard case .mapping(let pairs, _) = value else {
            issues.add(keyPath(key), "expected a mapping", fix: "write `name: value` lines under `\(key)`", origin: value.origin)
            return []
        }
        return pairs.map { ($0.key, $0.value) }
    }

    /// Reports keys that no accessor asked for. Call once, after reading every known key.
    package func finish() {
        guard case .mapping(let pairs, _) = node else { return }
        for (key, value) in pairs where !known.keys.contains(key) {
            var fix = "remove it"
            if let suggestion = Self.closest(to: key, in: known.keys) {
                fix = "did you mean `\(suggestion)`?"
            } else if !known.keys.isEmpty {
                fix = "known keys here: " + known.keys.map { "`\($0)`" }.joined(separator: ", ")
            }
            issues.add(keyPath(key), "unknown key", fix: fix, origin: value.origin)
        }
    }

    private func rangeFix(_ range: ClosedRange<Int>?) -> String {
        guard let range else { return "write a whole number" }
        return "use a number from \(range.lowerBound) to \(range.upperBound)"
    }

    private func quoted(_ text: String) -> String { "\"\(text)\"" }

    static func closest(to word: String, in candidates: [String]) -> String? {
        let scored = candidates.map { ($0, editDistance(word.lowercased(), $0.lowercased())) }
        guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
        return best.1 <= max(1, word.count / 3) ? best.0 : nil
    }

    /// Edit distance counting a swap of neighbours as one edit (`hots` → `host`).
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        var beforePrevious = previous
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    current[j] = min(current[j], beforePrevious[j - 2] + 1)
                }
            }
            beforePrevious = previous
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}

extension ConfigNode {
    var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    var isMapping: Bool {
        if case .mapping = self { return true }
        return false
    }

    var kindName: String {
        switch self {
        case .scalar: "a value"
        case .null: "nothing"
        case .mapping: "a mapping"
        case .sequence: "a list"
        }
    }
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        var view = self[...]
        while let first = view.first, first.isWhitespace { view.removeFirst() }
        while let last = view.last, last.isWhitespace { view.removeLast() }
        return String(view)
    }
}
