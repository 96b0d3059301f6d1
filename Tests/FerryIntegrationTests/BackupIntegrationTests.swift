import FerryBackup
import FerryCore
import FerryPostgresNode
import FerrySandbox
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Base backups of a real PostgreSQL 15 under pgbench load, block-level incrementals, restores to the latest WAL and
/// to a time between two marker rows, damage found and named, and a backup killed at a random point.
@Suite("Base backups and restore with a real PostgreSQL", .sandbox)
struct BackupIntegrationTests {
    @Test func aChainRestoresToTheSourceAndToATimeBetweenTwoMarkers() async throws {
        try await ArchivingServer.with("backup") { server in
            let pg = server.instance
            let scratch = try FerryProcess.scratchDirectory()
            let kit = BackupTestKit(server: server, scratch: scratch)
            try await kit.pgbench(["-i", "-s", "4", "-q"])
            _ = try await pg.psql("CREATE TABLE markers (id int PRIMARY KEY, note text, at timestamptz DEFAULT clock_timestamp())")

            // A full backup while pgbench writes.
            let load = Task { try await kit.pgbench(["-T", "5", "-c", "2", "-n"]) }
            let full = try await kit.backup("full")
            try await load.value
            #expect(full.kind == "full")

            try await kit.pgbench(["-T", "2", "-n"])
            let first = try await kit.backup("incr")
            #expect(first.kind == "incremental" && first.prior == full.id)
            // Block-level: only the blocks pgbench changed (at this small scale its random updates reach many of them).
            #expect(first.storedBlocks * 8192 < full.bytes, "incremental stored \(first.storedBlocks) blocks of \(full.bytes / 8192)")

            _ = try await pg.psql("INSERT INTO markers (id, note) VALUES (1, 'first')")
            try await Task.sleep(for: .milliseconds(1500))
            let between = try await pg.psql("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
            try await Task.sleep(for: .milliseconds(1500))
            _ = try await pg.psql("INSERT INTO markers (id, note) VALUES (2, 'second')")
            let second = try await kit.backup("incr")
            #expect(second.prior == first.id)
            // Two rows written since: a handful of blocks, not whole files.
            #expect(second.storedBlocks * 8192 < full.bytes / 20, "a quiet incremental stored \(second.storedBlocks) blocks of \(full.bytes / 8192)")
            // Committed after the last backup: only the archived WAL holds it.
            _ = try await pg.psql("INSERT INTO markers (id, note) VALUES (3, 'after the last backup')")
            let source = try await kit.checksum(pg)
            try await kit.archiveCurrentWAL()

            // Latest: the whole chain, then the WAL.
            let latest = try await kit.restore(["--to", "latest"], name: "latest")
            #expect(latest.chain == [full.id, first.id, second.id])
            #expect(try await kit.checksum(latest.instance) == source, "the restored cluster holds exactly the source's rows")
            #expect(try await latest.instance.psql("SELECT count(*) FROM markers") == "3")
            await latest.instance.stop()

            // A time between the markers: the first present, the second absent (full + first incremental, then WAL).
            let pitr = try await kit.restore(["--to", between], name: "pitr")
            #expect(pitr.chain == [full.id, first.id])
            #expect(try await pitr.instance.psql("SELECT string_agg(note, ',' ORDER BY id) FROM markers") == "first")
            await pitr.instance.stop()

            let list = try await FerryProcess.run(["backup", "list", "--json", "--repository", server.repository], in: scratch)
            #expect(list.status == 0 && list.stdout.contains(second.id) && list.stdout.contains(#""incomplete":[]"#), "\(list.stdout)\(list.stderr)")
            // A segment missing after the backup: restoring to the latest stops there and says so, naming it.
            let system = try PostgresControlFile.systemIdentifier(dataDirectory: pg.dataDirectory)
            let next = String(second.stopWal.prefix(16)) + String(format: "%08X", try #require(UInt32(second.stopWal.suffix(8), radix: 16)) + 1)
            let gap = server.repository + "/" + (try WALArchive.path(of: next, system: system))
            try FileManager.default.moveItem(atPath: gap, toPath: gap + ".moved")
            let gapped = try await kit.restore(["--to", "latest", "--backup", second.id], name: "gap", expectFailure: true)
            #expect(gapped.failure?.contains(next) == true && gapped.failure?.contains("missing") == true, "\(gapped.failure ?? "")")
            await gapped.instance.stop()
            try FileManager.default.moveItem(atPath: gap + ".moved", toPath: gap)

            try await checkCatalogue(kit, ids: [full.id, first.id, second.id])
            let verified = try await FerryProcess.run(["backup", "verify", second.id, "--repository", server.repository], in: scratch)
            #expect(verified.status == 0 && verified.stdout.contains("intact"), "\(verified.stdout)\(verified.stderr)")

            // A full backup with incrementals on it is not deleted alone.
            let refused = try await FerryProcess.run(["backup", "delete", full.id, "--repository", server.repository], in: scratch)
            #expect(refused.status == 1 && refused.stderr.contains(first.id) && refused.stderr.contains("--with-dependents"), "\(refused.stderr)")

            // One flipped byte in the first incremental: verify and restore name it; restore leaves nothing behind.
            let bundle = server.repository + "/backups/\(first.id)/data/0"
            var bytes = try #require(FileManager.default.contents(atPath: bundle))
            bytes[bytes.count / 2] ^= 0x40
            try bytes.write(to: URL(fileURLWithPath: bundle))
            let damaged = try await FerryProcess.run(["backup", "verify", second.id, "--repository", server.repository], in: scratch)
            #expect(damaged.status == 1 && damaged.stderr.contains("backup \(first.id)") && damaged.stderr.contains("data/0"), "\(damaged.stderr)")
            let broken = server.servers + "/restored-broken"
            let refusedRestore = try await FerryProcess.run(
                ["restore", "--repository", server.repository, "--target", broken, "--backup", second.id, "--quiet"], in: scratch)
            #expect(refusedRestore.status == 1 && refusedRestore.stderr.contains("data/0"), "\(refusedRestore.stderr)")
            #expect(((try? FileManager.default.contentsOfDirectory(atPath: broken)) ?? []).isEmpty, "a failed restore leaves nothing half-written")

            // A missing WAL segment the full backup needs: named, and nothing written.
            let segment = server.repository + "/" + (try WALArchive.path(of: full.startWal, system: system))
            try FileManager.default.moveItem(atPath: segment, toPath: segment + ".moved")
            let missing = server.servers + "/restored-missing"
            let noWAL = try await FerryProcess.run(
                ["restore", "--repository", server.repository, "--target", missing, "--backup", full.id, "--quiet"], in: scratch)
            #expect(noWAL.status == 1 && noWAL.stderr.contains(full.startWal) && noWAL.stderr.contains("nothing was written"), "\(noWAL.stderr)")
            #expect(!FileManager.default.fileExists(atPath: missing))
            let noWALVerify = try await FerryProcess.run(["backup", "verify", full.id, "--repository", server.repository], in: scratch)
            #expect(noWALVerify.status == 1 && noWALVerify.stderr.contains(full.startWal), "\(noWALVerify.stderr)")
        }
    }

    /// The Redis catalogue lists what the repository holds; wiped, it is rebuilt from the manifests at the next list.
    private func checkCatalogue(_ kit: BackupTestKit, ids: [String]) async throws {
        let redis = try #require(try SandboxContext.require().redis)
        let catalog = ["--catalog", "redis://127.0.0.1:\(redis.port)/3", "--repository", kit.server.repository]
        let environment = ["REDIS_PASSWORD": redis.password ?? ""]
        let first = try await FerryProcess.run(["backup", "list", "--json"] + catalog, in: kit.scratch, environment: environment)
        #expect(first.status == 0 && first.stdout.contains(#""rebuilt":3"#), "\(first.stdout)\(first.stderr)")
        let key = "ferry:backups:" + kit.server.repository
        let members = try await RedisAdmin.send(redis, ["ZRANGE", key, "0", "-1"], database: 3)
        #expect("\(members)".contains(ids[2]), "\(members)")
        let cached = try await FerryProcess.run(["backup", "list", "--json"] + catalog, in: kit.scratch, environment: environment)
        #expect(cached.stdout.contains(#""rebuilt":0"#), "the second list comes from Redis: \(cached.stdout)")
        try await RedisAdmin.send(redis, ["FLUSHALL"])
        let rebuilt = try await FerryProcess.run(["backup", "list", "--json"] + catalog, in: kit.scratch, environment: environment)
        #expect(rebuilt.status == 0 && rebuilt.stdout.contains(#""rebuilt":3"#), "\(rebuilt.stdout)\(rebuilt.stderr)")
        for id in ids { #expect(rebuilt.stdout.contains(id)) }
        // A stale entry for a backup the repository does not hold is dropped.
        try await RedisAdmin.send(redis, ["ZADD", key, "1", "20200101-000000F"], database: 3)
        let dropped = try await FerryProcess.run(["backup", "list", "--json"] + catalog, in: kit.scratch, environment: environment)
        #expect(dropped.stdout.contains(#""dropped":1"#) && !dropped.stdout.contains("20200101-000000F"), "\(dropped.stdout)")
    }

    /// `ferry run` with a `backup:` schedule: a full backup at once, incrementals on schedule, metrics; an archiver
    /// that starts failing turns `/health/ready` to 503, naming it.
    @Test func ferryRunTakesScheduledBackupsAndReportsAFailingArchiver() async throws {
        try await ArchivingServer.with("backup-run") { server in
            let pg = server.instance
            let scratch = try FerryProcess.scratchDirectory()
            let kit = BackupTestKit(server: server, scratch: scratch)
            let yaml = """
                postgres:
                  host: 127.0.0.1
                  port: \(pg.port)
                  user: \(pg.user)
                  password: \(pg.password)
                  database: \(pg.database)
                  tls: disable
                backup:
                  repository: \(server.repository)
                  data_directory: \(pg.dataDirectory)
                  full_every: 1h
                  incremental_every: 3s
                  keep_full: 1

                """
            try yaml.write(toFile: scratch + "/ferry.yaml", atomically: true, encoding: .utf8)
            let port = try FreePort.find()
            let daemon = try FerryProcess.start(["run", "--http-port", "\(port)", "--log-format", "json"], in: scratch)
            defer { daemon.signal(SIGKILL) }
            var listing: (backups: [String], incomplete: [String]) = ([], [])
            for _ in 0..<600 {
                listing = try await kit.listing()
                if listing.backups.count >= 2 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(
                listing.backups.first?.hasSuffix("F") == true && listing.backups.dropFirst().first?.hasSuffix("I") == true,
                "\(listing)\n\(daemon.errors().suffix(3000))")
            let metrics = try await HTTPProbe.get(port: port, path: "/metrics")
            #expect(metrics.body.contains("ferry_backup_last_success_timestamp_seconds{kind=\"full\"}"), "\(metrics.body.suffix(3000))")
            #expect(metrics.body.contains("ferry_backup_last_success_timestamp_seconds{kind=\"incremental\"}"))
            #expect(metrics.body.contains("ferry_wal_archive_failing 0"))
            let ready = try await HTTPProbe.waitFor(port: port, path: "/health/ready", status: 200, timeout: .seconds(30))
            #expect(ready.status == 200)

            // The archiver starts failing: the backup job shows it.
            _ = try await pg.psql("ALTER SYSTEM SET archive_command = '/bin/false'")
            _ = try await pg.psql("SELECT pg_reload_conf()")
            _ = try await pg.psql("CREATE TABLE IF NOT EXISTS churn (id int); INSERT INTO churn SELECT generate_series(1, 1000)")
            _ = try await pg.psql("SELECT pg_switch_wal()")
            let failing = try await HTTPProbe.waitFor(port: port, path: "/health/ready", status: 503, timeout: .seconds(60))
            #expect(failing.body.contains("backup") && failing.body.contains("archive_command is failing"), "\(failing.body)")
            _ = try await pg.psql("ALTER SYSTEM RESET archive_command")
            _ = try await pg.psql("SELECT pg_reload_conf()")
            daemon.signal(SIGTERM)
            #expect(try await daemon.wait(timeout: .seconds(30)) == 0, "\(daemon.errors().suffix(2000))")
            #expect(!daemon.errors().contains(pg.password))
        }
    }

    @Test func aBackupKilledAtARandomPointIsNeverUsableAndTheNextRunCleansUp() async throws {
        try await ArchivingServer.with("backup-kill") { server in
            let scratch = try FerryProcess.scratchDirectory()
            let kit = BackupTestKit(server: server, scratch: scratch)
            try await kit.pgbench(["-i", "-s", "3", "-q"])
            var killedMidRun = 0
            for round in 0..<3 {
                // gzip on one worker: slow enough that most kills land mid-run.
                let running = try FerryProcess.start(
                    ["backup", "full", "--compression", "gzip", "--workers", "1", "--quiet"] + kit.connection, in: scratch,
                    environment: ["PGPASSWORD": server.instance.password])
                try await Task.sleep(for: .milliseconds(Int.random(in: 200...1500)))
                kill(running.process.processIdentifier, SIGKILL)
                running.process.waitUntilExit()
                let list = try await kit.listing()
                let usable = list.backups.count
                if usable == round { killedMidRun += 1 }
                // Whatever was left is either complete and intact, or not listed as usable.
                for backup in list.backups {
                    let verified = try await FerryProcess.run(["backup", "verify", backup, "--repository", server.repository], in: scratch)
                    #expect(verified.status == 0, "\(verified.stderr)")
                }
                // The next run removes what the killed one left and succeeds.
                let next = try await kit.backup("full")
                let after = try await kit.listing()
                #expect(after.incomplete.isEmpty && after.backups.last == next.id, "\(after)")
            }
            #expect(killedMidRun > 0, "at least one kill landed before the backup finished")
        }
    }
}

/// What the backup tests share: pgbench, `ferry backup` and `ferry restore` runs, checksums.
struct BackupTestKit {
    let server: ArchivingServer
    let scratch: String

    var connection: [String] {
        let pg = server.instance
        return [
            "--host", "127.0.0.1", "--port", "\(pg.port)", "--user", pg.user, "--database", pg.database, "--data-directory", pg.dataDirectory,
            "--repository", server.repository,
        ]
    }

    func pgbench(_ arguments: [String]) async throws {
        let pg = server.instance
        let result = try await ProcessRunner.run(
            pg.binDirectory + "/pgbench", arguments + ["-h", "127.0.0.1", "-p", "\(pg.port)", "-U", pg.user, pg.database],
            environment: ["PGPASSWORD": pg.password])
        if !result.succeeded { throw FerryError(.server, "pgbench \(arguments) failed: \(result.standardError)") }
    }

    struct Taken: Decodable {
        var id: String
        var kind: String
        var prior: String?
        var bytes: Int64
        var storedBlocks: Int
        var startWal: String
        var stopWal: String
    }

    func backup(_ kind: String) async throws -> Taken {
        let result = try await FerryProcess.run(
            ["backup", kind, "--json"] + connection, in: scratch, environment: ["PGPASSWORD": server.instance.password], timeout: .seconds(240))
        guard result.status == 0 else { throw FerryError(.server, "ferry backup \(kind) failed: \(result.stderr)") }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(Taken.self, from: Data(result.stdout.utf8))
    }

    struct Listing: Decodable {
        struct Entry: Decodable { var id: String }
        var backups: [Entry]
        var incomplete: [String]
    }

    func listing() async throws -> (backups: [String], incomplete: [String]) {
        let result = try await FerryProcess.run(["backup", "list", "--json", "--repository", server.repository], in: scratch)
        guard result.status == 0 else { throw FerryError(.server, "ferry backup list failed: \(result.stderr)") }
        let listing = try JSONDecoder().decode(Listing.self, from: Data(result.stdout.utf8))
        return (listing.backups.map(\.id), listing.incomplete)
    }

    struct Restored {
        var instance: PostgresInstance
        var chain: [String]
        /// With `expectFailure`: ferry restore's error output.
        var failure: String?
    }

    /// `ferry restore …` into a new directory, started on a free port; the caller stops it.
    func restore(_ arguments: [String], name: String, expectFailure: Bool = false) async throws -> Restored {
        let pg = server.instance
        let target = server.servers + "/restored-\(name)"
        let port = try FreePort.find()
        let result = try await FerryProcess.run(
            [
                "restore", "--repository", server.repository, "--target", target, "--port", "\(port)", "--archive-mode", "off", "--ferry-binary",
                server.binary,
                "--json",
            ] + arguments, in: scratch, timeout: .seconds(300))
        var instance = PostgresInstance(
            directory: server.servers + "/restored-\(name)-instance", port: port, user: pg.user, password: pg.password, database: pg.database,
            binDirectory: pg.binDirectory, externalDataDirectory: target)
        instance.host = "127.0.0.1"
        if expectFailure {
            #expect(result.status == 1)
            return Restored(instance: instance, chain: [], failure: result.stderr)
        }
        guard result.status == 0 else {
            await instance.stop()
            throw FerryError(.server, "ferry restore \(arguments) failed: \(result.stderr)")
        }
        struct Report: Decodable { var chain: [String] }
        return Restored(instance: instance, chain: try JSONDecoder().decode(Report.self, from: Data(result.stdout.utf8)).chain, failure: nil)
    }

    /// Every row of pgbench's tables and the markers, as one checksum.
    func checksum(_ instance: PostgresInstance) async throws -> String {
        try await instance.psql(
            """
            SELECT (SELECT md5(string_agg(a::text, ',' ORDER BY aid)) FROM pgbench_accounts a)
                || (SELECT md5(string_agg(b::text, ',' ORDER BY bid)) FROM pgbench_branches b)
                || (SELECT md5(string_agg(t::text, ',' ORDER BY tid)) FROM pgbench_tellers t)
                || (SELECT md5(coalesce(string_agg(h::text, ',' ORDER BY h::text), '')) FROM pgbench_history h)
                || (SELECT md5(coalesce(string_agg(m::text, ',' ORDER BY id), '')) FROM markers m)
            """)
    }

    /// Switches to a new WAL segment and waits until the one before is archived.
    func archiveCurrentWAL() async throws {
        let pg = server.instance
        let segment = try await pg.psql("SELECT pg_walfile_name(pg_current_wal_lsn())")
        _ = try await pg.psql("SELECT pg_switch_wal()")
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if try await pg.psql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") >= segment { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw FerryError(.timeout, "\(segment) was not archived within 60 s")
    }
}
