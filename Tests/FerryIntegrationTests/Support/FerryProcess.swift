import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Runs the built `ferry` binary as a user would.
enum FerryProcess {
    static var packageRoot: String {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }
        return url.path
    }

    static var binary: String {
        let candidates = [".build/debug/ferry", ".build/x86_64-unknown-linux-gnu/debug/ferry", ".build/aarch64-unknown-linux-gnu/debug/ferry"]
        return candidates.map { packageRoot + "/" + $0 }.first { FileManager.default.isExecutableFile(atPath: $0) } ?? packageRoot
            + "/.build/debug/ferry"
    }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs `ferry arguments…` in `directory` and waits for it (with a deadline).
    static func run(_ arguments: [String], in directory: String, environment: [String: String] = [:], timeout: Duration = .seconds(120)) async throws
        -> Result
    {
        let process = try start(arguments, in: directory, environment: environment)
        try await finish(process.process, within: timeout, what: "ferry \(arguments.joined(separator: " "))")
        return Result(status: process.process.terminationStatus, stdout: process.output(), stderr: process.errors())
    }

    /// Waits for `process` to exit; past `timeout` records an issue and stops it (SIGTERM, then SIGKILL after 5 s).
    /// Never blocks a thread on a process that might not exit: a blocked thread of the two a 2-core machine's
    /// concurrency pool has would stall every other test.
    static func finish(_ process: Process, within timeout: Duration, what: @autoclosure () -> String) async throws {
        let deadline = ContinuousClock.now + timeout
        var terminated: ContinuousClock.Instant?
        while process.isRunning {
            if terminated == nil, ContinuousClock.now > deadline {
                process.terminate()
                terminated = .now
                Issue.record("\(what()) did not finish within \(timeout)")
            } else if let terminated, ContinuousClock.now - terminated > .seconds(5) {
                kill(process.processIdentifier, SIGKILL)
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        process.waitUntilExit()
    }

    final class Running: @unchecked Sendable {
        // Foundation's Process is not Sendable; each instance is only used by the test that created it.
        let process: Process
        let stdoutFile: String
        let stderrFile: String

        init(process: Process, stdoutFile: String, stderrFile: String) {
            self.process = process
            self.stdoutFile = stdoutFile
            self.stderrFile = stderrFile
        }

        func output() -> String { (try? String(contentsOfFile: stdoutFile, encoding: .utf8)) ?? "" }
        func errors() -> String { (try? String(contentsOfFile: stderrFile, encoding: .utf8)) ?? "" }

        func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

        /// Waits for exit; returns the status, or nil on timeout.
        func wait(timeout: Duration) async throws -> Int32? {
            let deadline = ContinuousClock.now + timeout
            while process.isRunning {
                if ContinuousClock.now > deadline { return nil }
                try await Task.sleep(for: .milliseconds(20))
            }
            process.waitUntilExit()
            return process.terminationStatus
        }
    }

    /// Starts `ferry arguments…` without waiting. Output goes to files so a chatty process never blocks.
    static func start(_ arguments: [String], in directory: String, environment: [String: String] = [:]) throws -> Running {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        var env = ProcessInfo.processInfo.environment
        for key in env.keys
        where key.hasPrefix("PG_") || key.hasPrefix("REDIS_") || key.hasPrefix("MSSQL_") || key == "FERRY_CONFIG" || key == "LOG_LEVEL" {
            env[key] = nil
        }
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let stamp = "\(Int(Date().timeIntervalSince1970 * 1000))-\(UUID().uuidString.prefix(4))"
        let stdoutFile = directory + "/.stdout-\(stamp)"
        let stderrFile = directory + "/.stderr-\(stamp)"
        _ = FileManager.default.createFile(atPath: stdoutFile, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrFile, contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: stdoutFile)
        process.standardError = FileHandle(forWritingAtPath: stderrFile)
        // Never the test runner's own input: on a CI runner with a terminal, a prompt would wait on it.
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return Running(process: process, stdoutFile: stdoutFile, stderrFile: stderrFile)
    }

    /// A fresh working directory for a CLI test.
    static func scratchDirectory() throws -> String {
        let path = packageRoot + "/.ferry/test/cli-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}
