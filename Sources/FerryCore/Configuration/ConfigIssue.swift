/// One problem found in the configuration: where, what, and how to fix it.
package struct ConfigIssue: Sendable, Hashable, CustomStringConvertible {
    /// Key path such as `pipelines[0].source.table`.
    package var path: String
    /// What is wrong, e.g. `missing` or `"abc" is not a number`.
    package var problem: String
    /// What to do.
    package var fix: String
    /// Where the offending value came from, when it exists.
    package var origin: ConfigOrigin?

    package init(path: String, problem: String, fix: String, origin: ConfigOrigin? = nil) {
        self.path = path
        self.problem = problem
        self.fix = fix
        self.origin = origin
    }

    package var description: String {
        var line = "\(path.isEmpty ? "(top level)" : path): \(problem) — \(fix)"
        if let origin, origin != .builtin { line += " (\(origin))" }
        return line
    }
}

/// The configuration could not be used; carries every problem found, not only the first.
package struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    /// The file that was read, if any.
    package var file: String?
    package var issues: [ConfigIssue]

    package init(file: String?, issues: [ConfigIssue]) {
        self.file = file
        self.issues = issues
    }

    package var description: String {
        let source = file.map { " (\($0))" } ?? ""
        let count = issues.count == 1 ? "1 problem" : "\(issues.count) problems"
        return "configuration has \(count)\(source):\n" + issues.map { "  \($0)" }.joined(separator: "\n")
    }
}
