/// One problem found in the configuration: where, what, and how to fix it.
public struct ConfigIssue: Sendable, Hashable, CustomStringConvertible {
    /// Key path such as `pipelines[0].source.table`.
    public var path: String
    /// What is wrong, e.g. `missing` or `"abc" is not a number`.
    public var problem: String
    /// What to do.
    public var fix: String
    /// Where the offending value came from, when it exists.
    public var origin: ConfigOrigin?

    public init(path: String, problem: String, fix: String, origin: ConfigOrigin? = nil) {
        self.path = path
        self.problem = problem
        self.fix = fix
        self.origin = origin
    }

    public var description: String {
        var line = "\(path.isEmpty ? "(top level)" : path): \(problem) — \(fix)"
        if let origin, origin != .builtin { line += " (\(origin))" }
        return line
    }
}

/// The configuration could not be used; carries every problem found, not only the first.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    /// The file that was read, if any.
    public var file: String?
    public var issues: [ConfigIssue]

    public init(file: String?, issues: [ConfigIssue]) {
        self.file = file
        self.issues = issues
    }

    public var description: String {
        let source = file.map { " (\($0))" } ?? ""
        let count = issues.count == 1 ? "1 problem" : "\(issues.count) problems"
        return "configuration has \(count)\(source):\n" + issues.map { "  \($0)" }.joined(separator: "\n")
    }
}
