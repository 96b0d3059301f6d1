import FerryCore
import FerryPostgresNode
import Foundation
package import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Where the agent's watchdog runs from.
package struct WatchdogSettings: Sendable {
    /// The `ferry` executable (the watchdog is `ferry watchdog …`).
    package var executable: String
    /// Holds the state file the agent writes and the watchdog's log.
    package var directory: String

    package init(executable: String, directory: String) {
        self.executable = executable
        self.directory = directory
    }
}

/// A separate process that fences the node's primary when its agent stops renewing the leadership: killed
/// (`kill -9`), frozen (`SIGSTOP`), or starved. The agent writes a state file after every renewal; the watchdog stops
/// PostgreSQL at once (SIGQUIT to the postmaster: an immediate shutdown, no further commit) when the arming runs
/// out, or when the agent's process is gone while armed. It runs in a session of its own, so a signal to the
/// agent's process group does not reach it. Patroni does this with the kernel's watchdog device, which resets the
/// machine; here the machine stays up and only PostgreSQL stops.
package enum Watchdog {
    /// The watchdog's loop: returns when the agent says it quits, when the agent is gone while disarmed, or after
    /// fencing.
    package static func run(stateFile: String, agentPID: Int32, dataDirectory: String, logger: Logger) async {
        let metadata: Logger.Metadata = ["ferry.data_directory": "\(dataDirectory)", "ferry.agent_pid": "\(agentPID)"]
        logger.info("watchdog started", metadata: metadata)
        while !Task.isCancelled {
            let state = (try? String(contentsOfFile: stateFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "disarmed"
            let agentAlive = ProcessTable.isAlive(agentPID)
            if state == "quit" {
                logger.info("watchdog stopping: the agent stopped cleanly", metadata: metadata)
                return
            }
            if state.hasPrefix("armed "), let deadline = UInt64(state.dropFirst(6)) {
                if !agentAlive || monotonicNanoseconds() > deadline {
                    let reason = agentAlive ? "the agent did not renew its leadership in time" : "the agent is gone"
                    logger.critical("fencing this node's primary: \(reason)", metadata: metadata)
                    await fence(dataDirectory)
                    return
                }
            } else if !agentAlive {
                logger.info("watchdog stopping: the agent is gone and this node is not a primary", metadata: metadata)
                return
            }
            try? await Task.sleep(for: .milliseconds(25))
        }
    }

    /// SIGQUIT to the postmaster (immediate shutdown), SIGKILL if it is still there after 3 seconds.
    static func fence(_ dataDirectory: String) async {
        guard let text = try? String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8),
            let pid = text.split(separator: "\n").first.flatMap({ Int32($0.trimmingCharacters(in: .whitespaces)) }),
            ProcessTable.isAlive(pid, named: "postgres")
        else { return }
        ProcessTable.signal(pid, SIGQUIT)
        if await ProcessTable.waitForExit(pid, timeout: .seconds(3)) { return }
        ProcessTable.signal(pid, SIGKILL)
    }

    /// CLOCK_MONOTONIC, which the agent and the watchdog share.
    static func monotonicNanoseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}

/// The agent's side of the watchdog: starts it, and arms or disarms it through the state file.
final class WatchdogHandle: Sendable {
    let stateFile: String
    let pid: Int32
    private let written = Mutex("")

    private init(stateFile: String, pid: Int32) {
        self.stateFile = stateFile
        self.pid = pid
    }

    static func start(_ settings: WatchdogSettings, dataDirectory: String, logger: Logger) async throws -> WatchdogHandle {
        try? FileManager.default.createDirectory(atPath: settings.directory, withIntermediateDirectories: true)
        let stateFile = settings.directory + "/watchdog.state"
        let handle = WatchdogHandle(stateFile: stateFile, pid: 0)
        handle.write("disarmed")
        let pid = try await DetachedProcess.start(
            [settings.executable, "watchdog", "--state", stateFile, "--agent-pid", "\(getpid())", "--data-dir", dataDirectory],
            log: settings.directory + "/watchdog.log")
        logger.info("watchdog started", metadata: ["ferry.watchdog_pid": "\(pid)"])
        return WatchdogHandle(stateFile: stateFile, pid: pid)
    }

    /// Fence unless armed again within `duration`.
    func arm(for duration: Duration) {
        let nanoseconds = max(0, Int64(duration.components.seconds) * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
        write("armed \(Watchdog.monotonicNanoseconds() + UInt64(nanoseconds))")
    }

    func disarm() { write("disarmed") }

    func quit() { write("quit") }

    /// Written whole and renamed into place, so the watchdog never reads half a state.
    private func write(_ state: String) {
        guard
            written.withLock({ last in
                defer { last = state }
                return last != state
            })
        else { return }
        let temporary = stateFile + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: Data((state + "\n").utf8)) else { return }
        rename(temporary, stateFile)
    }
}
