import Crypto
import FerryCore
import FerryPostgresNode
import FerrySandbox
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `GET /backups` and `POST /backups` in `ferry run`'s API, on a real archiving PostgreSQL: an admin takes a full and
/// an incremental backup as jobs and lists them; anyone else is refused.
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
            daemon.signal(SIGTERM)
            _ = try await daemon.wait(timeout: .seconds(30))
        }
    }
}
