/// Expands `${VAR}` and `${VAR:-default}` in configuration values; `$$` is a literal `$`.
package enum Interpolation {
    package enum Failure: Error, Equatable {
        case unset(String)
        case malformed
    }

    package static func expand(_ text: String, environment: [String: String]) -> Result<String, Failure> {
        guard text.contains("$") else { return .success(text) }
        var out = ""
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            guard character == "$" else {
                out.append(character)
                index = text.index(after: index)
                continue
            }
            let next = text.index(after: index)
            if next < text.endIndex, text[next] == "$" {
                out.append("$")
                index = text.index(after: next)
                continue
            }
            guard next < text.endIndex, text[next] == "{" else {
                out.append("$")
                index = next
                continue
            }
            guard let close = text[next...].firstIndex(of: "}") else { return .failure(.malformed) }
            let inner = text[text.index(after: next)..<close]
            let name: Substring
            var fallback: Substring?
            if let separator = inner.firstIndex(of: ":"), inner[separator...].hasPrefix(":-") {
                name = inner[..<separator]
                fallback = inner[inner.index(separator, offsetBy: 2)...]
            } else {
                name = inner
            }
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else { return .failure(.malformed) }
            if let value = environment[String(name)], !(value.isEmpty && fallback != nil) {
                out += value
            } else if let fallback {
                out += fallback
            } else {
                return .failure(.unset(String(name)))
            }
            index = text.index(after: close)
        }
        return .success(out)
    }

    /// Expands every scalar of `node`, recording unset variables as configuration issues.
    static func expand(_ node: ConfigNode, path: String, environment: [String: String], issues: ConfigIssues) -> ConfigNode {
        switch node {
        case .scalar(let text, let origin):
            switch expand(text, environment: environment) {
            case .success(let value): return .scalar(value, origin)
            case .failure(.unset(let name)):
                issues.add(path, "uses ${\(name)}, which is not set", fix: "export \(name) or add it to .env", origin: origin)
            case .failure(.malformed):
                issues.add(path, "has a malformed ${…} reference", fix: "write ${NAME} or ${NAME:-default}; use $$ for a literal $", origin: origin)
            }
            return .scalar("", origin)
        case .null:
            return node
        case .mapping(let pairs, let origin):
            let expanded = pairs.map { pair in
                (
                    key: pair.key,
                    value: expand(pair.value, path: path.isEmpty ? pair.key : "\(path).\(pair.key)", environment: environment, issues: issues)
                )
            }
            return .mapping(expanded, origin)
        case .sequence(let items, let origin):
            return .sequence(
                items.enumerated().map { expand($0.element, path: "\(path)[\($0.offset)]", environment: environment, issues: issues) }, origin)
        }
    }
}
