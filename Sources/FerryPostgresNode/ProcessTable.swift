import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Looks at and signals processes by pid.
package enum ProcessTable {
    /// Whether `pid` exists and, when `name` is given, its command line contains `name`.
    package static func isAlive(_ pid: Int32, named name: String? = nil) -> Bool {
        guard pid > 0, kill(pid, 0) == 0 || errno == EPERM else { return false }
        if let state = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = state.lastIndex(of: ")"),
            state[state.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
        {
            return false
        }
        guard let name else { return true }
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        return String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self).contains(name)
    }

    package static func signal(_ pid: Int32, _ signal: Int32) {
        guard pid > 0 else { return }
        kill(pid, signal)
    }

    /// Waits until `pid` is gone or `timeout` passes; returns whether it is gone.
    package static func waitForExit(_ pid: Int32, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if !isAlive(pid) { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return !isAlive(pid)
    }

    /// SIGTERM, then SIGKILL after `grace`.
    package static func terminate(_ pid: Int32, grace: Duration = .seconds(10)) async {
        guard isAlive(pid) else { return }
        signal(pid, SIGTERM)
        if await waitForExit(pid, timeout: grace) { return }
        signal(pid, SIGKILL)
        _ = await waitForExit(pid, timeout: .seconds(5))
    }

    /// Pids of processes whose command line contains `fragment`.
    package static func pids(commandLineContaining fragment: String) -> [Int32] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { entry -> Int32? in
            guard let pid = Int32(entry), let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return nil }
            let line = String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
            return line.contains(fragment) ? pid : nil
        }
    }

    /// Pids of processes whose working directory is `directory` (symlinks resolved).
    package static func pids(workingDirectory directory: String) -> [Int32] {
        let target = URL(fileURLWithPath: directory).resolvingSymlinksInPath().path
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { entry -> Int32? in
            guard let pid = Int32(entry), let cwd = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/cwd") else { return nil }
            return cwd == target && isAlive(pid) ? pid : nil
        }
    }
}
