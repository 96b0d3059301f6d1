import Crypto
import FerryCore
import FerryPostgresNode
import FerrySandbox
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `GET /backups`, `POST /backups` and `POST /restore` in `ferry run`'s API, on a real archiving PostgreSQL: an admin
/// takes a full and an incremental backup as jobs, lists them, restores into a new directory that then answers; a
/// target in use, a point that is none and anyone else are refused.
@Suite(.sandbox) struct APIBackupTests {
    static func hash(_ token: String) -> String { SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined() }

    static func json(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    @Test func anAdminTakesAndListsBackupsAsJobs() async throws {
        try await ArchivingServer.with("api-backup") { server in
            let pg = server.instance
            let directory = try FerryProcess.scratchDirectory()
            try """
            users:
              - name: ops
                token_sha256: \(Self.hash("token-ops"))
                permissions:
                  - admin: true
              - name: analyst
                token_sha256: \(Self.hash("token-analyst"))
                permissions:
                  - query: "*"
                    access: read
            """.write(toFile: directory + "/permissions.yaml", atomically: true, encoding: .utf8)
            try """
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
              restore_root: \(server.servers)
              ferry_binary: \(server.binary)
            api:
              permissions: permissions.yaml
              audit_log: audit.jsonl

            """.write(toFile: directory + "/ferry.yaml", atomically: true, encoding: .utf8)
            let port = try FreePort.find()
            let daemon = try FerryProcess.start(["run", "--http-port", "\(port)"], in: directory)
            defer { daemon.signal(SIGKILL) }
            let ops = ["Authorization": "Bearer token-ops"]
            _ = try await HTTPProbe.waitFor(port: port, path: "/backups", headers: ops, status: 200, timeout: .seconds(60))
            let refused = try await HTTPProbe.request("POST", port: port, path: "/backups", headers: ["Authorization": "Bearer token-analyst"])
            #expect(refused.status == 403 && refused.body.contains("admin"), "\(refused.body)")
            for kind in ["full", "incremental"] {
                let started = try await HTTPProbe.request(
                    "POST", port: port, path: "/backups", headers: ops.merging(["Content-Type": "application/json"]) { $1 },
                    body: "{\"kind\": \"\(kind)\"}")
                #expect(started.status == 202, "\(started.body)")
                let id = try #require(Self.json(started.body)["id"] as? String)
                try await eventually("the \(kind) backup job ends", timeout: .seconds(120)) {
                    let job = Self.json(try await HTTPProbe.get(port: port, path: "/jobs/\(id)", headers: ops).body)
                    return job["state"] as? String != "running" && job["state"] as? String != "queued"
                }
                let job = Self.json(try await HTTPProbe.get(port: port, path: "/jobs/\(id)", headers: ops).body)
                #expect(job["state"] as? String == "succeeded", "\(job)\n\(daemon.errors().suffix(2000))")
            }
            let listed = Self.json(try await HTTPProbe.get(port: port, path: "/backups", headers: ops).body)
            let backups = listed["backups"] as? [[String: Any]] ?? []
            #expect(backups.map { $0["kind"] as? String } == ["full", "incremental"], "\(listed)")
            #expect(backups.last?["prior"] as? String == backups.first?["id"] as? String)

            // A restore as a job: into a new directory under restore_root, started on a port, recovered, answering.
            let json = ops.merging(["Content-Type": "application/json"]) { $1 }
            let restorePort = try FreePort.find()
            let restore = try await HTTPProbe.request(
                "POST", port: port, path: "/restore", headers: json,
                body: "{\"target\": \"api-restored\", \"port\": \(restorePort), \"archive_mode\": \"off\"}")
            #expect(restore.status == 202, "\(restore.body)")
            let restoreID = try #require(Self.json(restore.body)["id"] as? String)
            try await eventually("the restore job ends", timeout: .seconds(180)) {
                let job = Self.json(try await HTTPProbe.get(port: port, path: "/jobs/\(restoreID)", headers: ops).body)
                return job["state"] as? String != "running" && job["state"] as? String != "queued"
            }
            let restored = Self.json(try await HTTPProbe.get(port: port, path: "/jobs/\(restoreID)", headers: ops).body)
            #expect(restored["state"] as? String == "succeeded", "\(restored)\n\(daemon.errors().suffix(2000))")
            var instance = PostgresInstance(
                directory: server.servers + "/api-restored-instance", port: restorePort, user: pg.user, password: pg.password, database: pg.database,
                binDirectory: pg.binDirectory, externalDataDirectory: server.servers + "/api-restored")
            instance.host = "127.0.0.1"
            #expect(try await instance.psql("SELECT 1") == "1", "the restored server answers")
            await instance.stop()
            // The same target again: 409; a point that is none: 422; a non-admin: 403.
            let again = try await HTTPProbe.request("POST", port: port, path: "/restore", headers: json, body: "{\"target\": \"api-restored\"}")
            #expect(again.status == 409, "\(again.body)")
            let nowhere = try await HTTPProbe.request(
                "POST", port: port, path: "/restore", headers: json, body: "{\"target\": \"other\", \"to\": \"yesterday\"}")
            #expect(nowhere.status == 422, "\(nowhere.body)")
            let notAdmin = try await HTTPProbe.request(
                "POST", port: port, path: "/restore", headers: ["Authorization": "Bearer token-analyst", "Content-Type": "application/json"],
                body: "{\"target\": \"x\"}")
            #expect(notAdmin.status == 403)
            daemon.signal(SIGTERM)
            _ = try await daemon.wait(timeout: .seconds(30))
        }
    }
}
