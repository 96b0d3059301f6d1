import FerryPostgresNode
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A sandbox server that records its pid in a file (Redis, etcd): stopping, killing and looking at it are the same
/// for each.
package protocol PidFileServer {
    var pidFile: String { get }
    var logFile: String { get }
    /// What the server's command line contains, so a recycled pid is not taken for the server.
    static var processName: String { get }
}

extension PidFileServer {
    /// Stops the server with SIGTERM (Redis flushes its AOF), then SIGKILL if needed.
    package func stop() async {
        guard let pid else { return }
        await ProcessTable.terminate(pid, grace: .seconds(10))
        FileSystem.remove(pidFile)
    }

    /// Kills the server with SIGKILL, as a crash would.
    package func kill() async {
        guard let pid else { return }
        ProcessTable.signal(pid, SIGKILL)
        _ = await ProcessTable.waitForExit(pid, timeout: .seconds(10))
        FileSystem.remove(pidFile)
    }

    package var pid: Int32? {
        guard let text = FileSystem.read(pidFile) else { return nil }
        return Int32(text.trimmed)
    }

    package var isRunning: Bool {
        guard let pid else { return false }
        return ProcessTable.isAlive(pid, named: Self.processName)
    }

    /// The last lines of the server's log, for an error message.
    var logTail: String {
        (FileSystem.read(logFile) ?? "").split(separator: "\n").suffix(5).joined(separator: "\n")
    }
}
