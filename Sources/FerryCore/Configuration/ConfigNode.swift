/// Where a configuration value came from, so messages can point at it.
package enum ConfigOrigin: Sendable, Hashable, CustomStringConvertible {
    /// A line of the configuration file.
    case file(path: String, line: Int)
    /// An environment variable (or a `.env` entry) that overrides the file.
    case environment(String)
    /// Not set anywhere: a built-in default.
    case builtin

    package var description: String {
        switch self {
        case .file(let path, let line): "\(path):\(line)"
        case .environment(let name): "$\(name)"
        case .builtin: "default"
        }
    }
}

/// The configuration as a tree of untyped values, before it is read into ``FerryConfiguration``.
///
/// Every value keeps its origin. Scalars stay strings until a reader asks for a type, so that a type error can
/// quote what the user wrote.
package indirect enum ConfigNode: Sendable {
    case scalar(String, ConfigOrigin)
    case null(ConfigOrigin)
    case mapping([(key: String, value: ConfigNode)], ConfigOrigin)
    case sequence([ConfigNode], ConfigOrigin)

    package var origin: ConfigOrigin {
        switch self {
        case .scalar(_, let origin), .null(let origin), .mapping(_, let origin), .sequence(_, let origin): origin
        }
    }

    /// The value under `key` of a mapping.
    package subscript(key: String) -> ConfigNode? {
        guard case .mapping(let pairs, _) = self else { return nil }
        return pairs.first { $0.key == key }?.value
    }

    /// Returns a copy with `value` set at `path`, creating mappings on the way.
    package func setting(_ value: ConfigNode, at path: ArraySlice<String>) -> ConfigNode {
        guard let head = path.first else { return value }
        var pairs: [(key: String, value: ConfigNode)]
        let origin: ConfigOrigin
        switch self {
        case .mapping(let existing, let o):
            pairs = existing
            origin = o
        default:
            pairs = []
            origin = value.origin
        }
        if let index = pairs.firstIndex(where: { $0.key == head }) {
            pairs[index].value = pairs[index].value.setting(value, at: path.dropFirst())
        } else {
            pairs.append((head, ConfigNode.mapping([], value.origin).setting(value, at: path.dropFirst())))
        }
        return .mapping(pairs, origin)
    }
}
