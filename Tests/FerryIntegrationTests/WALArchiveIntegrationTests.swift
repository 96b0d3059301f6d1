import FerryBackup
import FerryCore
import FerryPostgresNode
import FerrySandbox
import Foundation
import Logging
import Testing

/// PostgreSQL archives its WAL through `ferry wal push` (its archive_command, run as its own user) and gets it back
/// with `ferry wal fetch`, byte for byte; a second push of the same file succeeds, a different file under an archived
/// name fails and names it, a file the archive lacks exits with 1 and says nothing.
@Suite("WAL archive with a real PostgreSQL", .sandbox)
struct WALArchiveIntegrationTests {
    @Test func postgresArchivesThroughFerryAndGetsItBackByteForByte() async throws {
        try await ArchivingServer.with("wal") { server in try await check(server.instance, repository: server.repository) }
    }

    private func check(_ instance: PostgresInstance, repository: String) async throws {
        let scratch = try FerryProcess.scratchDirectory()
        _ = try await instance.psql(
            "CREATE TABLE archived (id int, note text); INSERT INTO archived SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g")
        let segment = try await instance.psql("SELECT pg_walfile_name(pg_current_wal_lsn())").trimmingCharacters(in: .whitespacesAndNewlines)
        _ = try await instance.psql("SELECT pg_switch_wal()")
        var archived = ""
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            archived = try await instance.psql(
                "SELECT coalesce(last_archived_wal, '') || '|' || failed_count || '|' || coalesce(last_failed_wal, '') FROM pg_stat_archiver"
            )
            .trimmingCharacters(in: .whitespacesAndNewlines)
            if let last = archived.split(separator: "|").first, String(last) >= segment { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(String(archived.split(separator: "|", omittingEmptySubsequences: false).first ?? "") >= segment, "pg_stat_archiver: \(archived)")
        #expect(archived.split(separator: "|", omittingEmptySubsequences: false).dropFirst().first == "0", "no failed archive attempt: \(archived)")

        let original = try #require(FileManager.default.contents(atPath: instance.dataDirectory + "/pg_wal/" + segment))
        let options = ["--repository", repository, "--data-directory", instance.dataDirectory]
        let fetched = try await FerryProcess.run(["wal", "fetch", segment, scratch + "/fetched"] + options, in: scratch)
        #expect(fetched.status == 0, "\(fetched.stderr)")
        #expect(FileManager.default.contents(atPath: scratch + "/fetched") == original, "the fetched segment is the original, byte for byte")

        let again = try await FerryProcess.run(["wal", "push", instance.dataDirectory + "/pg_wal/" + segment] + options, in: scratch)
        #expect(again.status == 0 && again.stdout.contains("already archived"), "\(again.stdout)\(again.stderr)")

        var changed = Array(original)
        changed[changed.count / 2] ^= 0x5A
        try FileManager.default.createDirectory(atPath: scratch + "/other", withIntermediateDirectories: true)
        try Data(changed).write(to: URL(fileURLWithPath: scratch + "/other/" + segment))
        let conflict = try await FerryProcess.run(["wal", "push", scratch + "/other/" + segment] + options, in: scratch)
        #expect(conflict.status == 1)
        #expect(conflict.stderr.contains(segment) && conflict.stderr.contains("other content"), "\(conflict.stderr)")

        let missing = try await FerryProcess.run(["wal", "fetch", "00000001000000FF000000FF", scratch + "/none"] + options, in: scratch)
        #expect(missing.status == 1)
        #expect(missing.stderr.isEmpty && missing.stdout.isEmpty, "\(missing.stderr)")
        #expect(!FileManager.default.fileExists(atPath: scratch + "/none"))

        let unsafe = try await FerryProcess.run(["wal", "fetch", "../../etc/passwd", scratch + "/x"] + options, in: scratch)
        #expect(unsafe.status == 1 && unsafe.stderr.contains("not the name of a WAL file"), "\(unsafe.stderr)")
    }
}
