#if canImport(Glibc)
    import Glibc
#endif

/// Writing to the terminal: results to standard output, problems to standard error, colour only on a TTY.
enum Terminal {
    static let stdoutIsTTY = isatty(1) == 1
    static let stderrIsTTY = isatty(2) == 1

    static func print(_ text: String) {
        Swift.print(text)
    }

    static func error(_ text: String) {
        let prefix = stderrIsTTY ? "\u{1B}[31merror:\u{1B}[0m " : "error: "
        writeStandardError(prefix + text + "\n")
    }

    static func hint(_ text: String) {
        let prefix = stderrIsTTY ? "\u{1B}[33mfix:\u{1B}[0m " : "fix: "
        writeStandardError(prefix + text + "\n")
    }

    static func writeStandardError(_ text: String) {
        var text = text
        text.withUTF8 { bytes in _ = write(2, bytes.baseAddress, bytes.count) }
    }

    enum Color: String {
        case green = "32"
        case red = "31"
        case yellow = "33"
        case dim = "2"
        case bold = "1"
    }

    static func paint(_ text: String, _ color: Color) -> String {
        stdoutIsTTY ? "\u{1B}[\(color.rawValue)m\(text)\u{1B}[0m" : text
    }
}
