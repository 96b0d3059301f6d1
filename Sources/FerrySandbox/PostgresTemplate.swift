import FerryCore
import FerryPostgresNode
import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A cached, initialised PostgreSQL data directory that new instances copy.
///
/// Built once per cache directory with `initdb` (data checksums on, so `pg_rewind` works; SCRAM passwords for
/// TCP), a superuser `ferry` and a database `ferry`. Guarded by a file lock so parallel test processes build it
/// once.
struct PostgresTemplate: Sendable {
    static let version = "pg-template-v1"

    let directory: String
    let user = "ferry"
    let database = "ferry"
    let password: String

    var dataDirectory: String { directory + "/data" }

    private static let inProcess = Mutex<[String: PostgresTemplate]>([:])
    private static let building = AsyncLock()

    static func ensure(cache: String, binaries: PostgresBinaries, logger: Logger) async throws(FerryError) -> PostgresTemplate {
        let directory = cache + "/" + version + "-" + (binaries.directory.split(separator: "/").dropLast().last.map(String.init) ?? "pg")
        if let known = inProcess.withLock({ $0[directory] }) { return known }
        return try await building.withLock { () async throws(FerryError) -> PostgresTemplate in
            if let known = inProcess.withLock({ $0[directory] }) { return known }
            try FileSystem.makeDirectory(cache)
            let lockFD = open(cache + "/.template.lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
            guard lockFD >= 0 else { throw FerryError(.sandbox, "cannot create a lock file in \(cache)", fix: "check the directory's permissions") }
            defer { close(lockFD) }
            while flock(lockFD, LOCK_EX) != 0 && errno == EINTR {}
            defer { flock(lockFD, LOCK_UN) }
            let template: PostgresTemplate
            if let password = FileSystem.read(directory + "/password"), FileSystem.exists(directory + "/data/PG_VERSION") {
                template = PostgresTemplate(directory: directory, password: password.trimmed)
            } else {
                template = try await build(directory: directory, binaries: binaries, logger: logger)
            }
            inProcess.withLock { $0[directory] = template }
            return template
        }
    }

    private static func build(directory: String, binaries: PostgresBinaries, logger: Logger) async throws(FerryError) -> PostgresTemplate {
        logger.info("preparing a PostgreSQL template (initdb, once)", metadata: ["ferry.sandbox": "\(directory)"])
        let owner = SystemUser.forPostgres()
        let staging = directory + ".building-\(getpid())"
        FileSystem.remove(staging)
        FileSystem.remove(directory)
        try FileSystem.makeDirectory(staging)
        let password = randomPassword()
        let template = PostgresTemplate(directory: staging, password: password)
        try FileSystem.write(password + "\n", to: staging + "/pwfile", mode: 0o600)
        if let owner { FileSystem.chownRecursive(staging, to: owner) }
        let initdb = try await ProcessRunner.run(
            binaries.initdb,
            [
                "-D", template.dataDirectory, "-U", template.user, "--pwfile=\(staging)/pwfile", "--auth-local=trust",
                "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--data-checksums", "--no-instructions",
            ],
            as: owner
        )
        guard initdb.succeeded else {
            FileSystem.remove(staging)
            throw FerryError(
                .sandbox, "initdb failed: \(initdb.standardError.trimmed)", fix: "check that PostgreSQL 15 is installed correctly (`make setup`)")
        }
        FileSystem.remove(staging + "/pwfile")
        // Replication connections from loopback for standbys started by the cluster sandbox.
        let hba = template.dataDirectory + "/pg_hba.conf"
        let hbaText = (FileSystem.read(hba) ?? "") + "host    replication     all             127.0.0.1/32            scram-sha-256\n"
        try FileSystem.write(hbaText, to: hba, mode: 0o600)
        let conf = template.dataDirectory + "/postgresql.conf"
        try FileSystem.write((FileSystem.read(conf) ?? "") + "\ninclude_if_exists = 'ferry.conf'\n", to: conf, mode: 0o600)
        if let owner { FileSystem.chownRecursive(staging, to: owner) }

        let instance = PostgresInstance(
            directory: staging, port: try FreePort.find(), user: template.user, password: password, database: "postgres",
            binDirectory: binaries.directory,
            settings: ["listen_addresses": "'127.0.0.1'", "unix_socket_directories": "''", "fsync": "off"]
        )
        try instance.writeConfiguration()
        try await instance.start()
        do {
            _ = try await instance.psql("CREATE DATABASE \(template.database)")
        } catch {
            await instance.stop()
            throw error
        }
        await instance.stop()
        FileSystem.remove(template.dataDirectory + "/ferry.conf")
        FileSystem.remove(staging + "/postgres.log")
        try FileSystem.write(password + "\n", to: staging + "/password", mode: 0o600)
        do {
            try FileManager.default.moveItem(atPath: staging, toPath: directory)
        } catch {
            throw FerryError(.sandbox, "cannot move the PostgreSQL template into \(directory)", underlying: error)
        }
        return PostgresTemplate(directory: directory, password: password)
    }

    static func randomPassword() -> String {
        let alphabet = Array("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<24).map { _ in alphabet.randomElement(using: &generator)! })
    }
}

/// A lock for async code: one holder at a time, waiters resume in order.
final class AsyncLock: Sendable {
    private struct State {
        var held = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    func withLock<T>(_ body: () async throws(FerryError) -> T) async throws(FerryError) -> T {
        await acquire()
        defer { release() }
        return try await body()
    }

    private func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let acquired = state.withLock { state -> Bool in
                if !state.held {
                    state.held = true
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if acquired { continuation.resume() }
        }
    }

    private func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.held = false
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }
}
