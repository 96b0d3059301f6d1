import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where log lines go: standard error and, optionally, an append-only file. Writes are whole lines, serialised.
package final class LogSink: Sendable {
    private struct State {
        var fileDescriptor: Int32?
    }

    private let state: Mutex<State>
    /// Whether standard error is a terminal (then text lines get coloured levels).
    package let isTerminal: Bool
    private let toStandardError: Bool

    /// - Parameters:
    ///   - file: also append to this file, creating it and its directory.
    ///   - toStandardError: write to standard error too (default).
    package init(file: String?, toStandardError: Bool = true) throws(FerryError) {
        self.toStandardError = toStandardError
        self.isTerminal = isatty(2) == 1
        var descriptor: Int32?
        if let file {
            Self.makeParentDirectory(of: file)
            let fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            guard fd >= 0 else {
                let reason = String(cString: strerror(errno))
                throw FerryError(.configuration, "log.file: cannot open \(file) (\(reason))", fix: "choose a writable path or create its directory")
            }
            descriptor = fd
        }
        self.state = Mutex(State(fileDescriptor: descriptor))
    }

    deinit {
        state.withLock { state in
            if let fd = state.fileDescriptor { close(fd) }
        }
    }

    func write(_ line: String) {
        var line = line
        line.withUTF8 { bytes in
            state.withLock { state in
                if toStandardError { Self.writeAll(2, bytes) }
                if let fd = state.fileDescriptor { Self.writeAll(fd, bytes) }
            }
        }
    }

    private static func writeAll(_ fd: Int32, _ bytes: UnsafeBufferPointer<UInt8>) {
        guard var pointer = bytes.baseAddress else { return }
        var remaining = bytes.count
        while remaining > 0 {
            let written = Glibc.write(fd, pointer, remaining)
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            remaining -= written
            pointer += written
        }
    }

    private static func makeParentDirectory(of file: String) {
        guard let slash = file.lastIndex(of: "/"), slash != file.startIndex else { return }
        var current = ""
        for component in file[..<slash].split(separator: "/", omittingEmptySubsequences: false) {
            current += (current.isEmpty && file.hasPrefix("/") ? "/" : current.isEmpty ? "" : "/") + component
            if !current.isEmpty && current != "/" { mkdir(current, 0o755) }
        }
    }
}
