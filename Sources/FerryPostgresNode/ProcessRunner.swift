package import FerryCore
import Foundation
import Subprocess
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// Runs a helper program (initdb, pg_ctl, psql, redis-server) to completion, optionally as another user.
package enum ProcessRunner {
    package struct Output {
        package var status: Int32
        package var standardOutput: String
        package var standardError: String
        package var succeeded: Bool { status == 0 }
    }

    /// Runs `path` with `arguments`. A program that cannot be started is a ``FerryError`` naming it.
    package static func run(
        _ path: String,
        _ arguments: [String],
        as user: SystemUser? = nil,
        environment: [String: String] = [:],
        workingDirectory: String? = nil,
        input: [UInt8]? = nil
    ) async throws(FerryError) -> Output {
        // Dropping privileges is left to util-linux's setpriv, exec'd as a single-threaded process: setting the
        // user in a child forked from this multithreaded process (swift-subprocess's `userID`) can deadlock in
        // glibc's setxid handling.
        var executable = path
        var arguments = arguments
        if let user {
            executable = try SystemUser.setprivPath()
            arguments = ["--reuid=\(user.uid)", "--regid=\(user.gid)", "--clear-groups", "--", path] + arguments
        }
        var updates: [Environment.Key: String?] = [:]
        for (key, value) in environment { updates[Environment.Key(stringLiteral: key)] = value }
        if let user { updates["HOME"] = user.home }
        do {
            let directory = (workingDirectory ?? (user != nil ? "/" : nil)).map { FilePath($0) }
            // Secrets (a password in SQL) go through standard input, never the command line `ps` shows.
            let result =
                if let input {
                    try await Subprocess.run(
                        .path(FilePath(executable)), arguments: Arguments(arguments), environment: .inherit.updating(updates),
                        workingDirectory: directory, input: .array(input), output: .string(limit: 1 << 20), error: .string(limit: 1 << 20))
                } else {
                    try await Subprocess.run(
                        .path(FilePath(executable)), arguments: Arguments(arguments), environment: .inherit.updating(updates),
                        workingDirectory: directory, output: .string(limit: 1 << 20), error: .string(limit: 1 << 20))
                }
            let status: Int32
            switch result.terminationStatus {
            case .exited(let code): status = code
            case .signaled(let signal): status = 128 + signal
            }
            return Output(status: status, standardOutput: result.standardOutput, standardError: result.standardError)
        } catch {
            let name = path.split(separator: "/").last.map(String.init) ?? path
            throw FerryError(.sandbox, "cannot run \(path)", fix: "check that \(name) is installed (run `make setup`)", underlying: error)
        }
    }
}

/// Starts programs that outlive this process in a session of their own (a signal to this process's group does
/// not reach them): etcd in the sandbox, the HA agent's watchdog.
package enum DetachedProcess {
    /// Starts `arguments` (the program first) with its output appended to `log`; returns its pid. With
    /// `asPostgresUser`, it runs as the account PostgreSQL runs as (when this process is root).
    package static func start(_ arguments: [String], log: String, asPostgresUser: Bool = false) async throws(FerryError) -> Int32 {
        var arguments = arguments
        if asPostgresUser, let user = SystemUser.forPostgres() {
            arguments = [try SystemUser.setprivPath(), "--reuid=\(user.uid)", "--regid=\(user.gid)", "--clear-groups", "--"] + arguments
        }
        let command = arguments.map(shellQuote).joined(separator: " ")
        let script = "setsid \(command) >> \(shellQuote(log)) 2>&1 < /dev/null & echo $!"
        let result = try await ProcessRunner.run("/bin/sh", ["-c", script])
        guard result.succeeded, let pid = Int32(result.standardOutput.trimmed) else {
            throw FerryError(.sandbox, "cannot start \(arguments.first ?? "?"): \(result.standardError.trimmed)", fix: "read \(log)")
        }
        return pid
    }

    package static func shellQuote(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }
}

/// A local account that server processes run as.
package struct SystemUser: Sendable {
    package var name: String
    package var uid: UInt32
    package var gid: UInt32
    package var home: String

    package static func named(_ name: String) -> SystemUser? {
        guard let entry = getpwnam(name) else { return nil }
        return SystemUser(name: name, uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid, home: String(cString: entry.pointee.pw_dir))
    }

    package static var isRoot: Bool { geteuid() == 0 }

    /// util-linux's `setpriv`, present on every Debian system.
    package static func setprivPath() throws(FerryError) -> String {
        for path in ["/usr/bin/setpriv", "/bin/setpriv"] where access(path, X_OK) == 0 { return path }
        throw FerryError(
            .sandbox, "setpriv not found; it runs PostgreSQL as an unprivileged user", fix: "install util-linux (`sudo apt-get install util-linux`)")
    }

    /// Who runs PostgreSQL: nobody else when we are not root; otherwise `postgres` (from Debian's package), or
    /// `nobody` as a last resort. PostgreSQL refuses to run as root.
    package static func forPostgres() -> SystemUser? {
        guard isRoot else { return nil }
        return named("postgres") ?? named("nobody")
    }
}
