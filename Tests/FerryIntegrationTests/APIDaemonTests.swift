import Crypto
import FerryAPIContract
import FerryClient
import FerryCore
import FerryPostgresNode
import FerrySandbox
import Foundation
import HTTPTypes
import OpenAPIAsyncHTTPClient
import OpenAPIRuntime
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `ferry run` with an `api:` section, end to end: the generated Swift SDK (FerryClient) starts an extraction from the
/// sandbox's PostgreSQL and follows it to its files; permissions and the audit as the daemon serves them; a job running
/// when the process is killed is failed, with the reason, by the next process.
@Suite(.sandbox) struct APIDaemonTests {
    /// Adds the bearer token to every request of the SDK.
    struct Bearer: ClientMiddleware {
        let token: String

        func intercept(
            _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
            next: (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
        ) async throws -> (HTTPResponse, HTTPBody?) {
            var request = request
            request.headerFields[.authorization] = "Bearer \(token)"
            return try await next(request, body, baseURL)
        }
    }

    static func hash(_ token: String) -> String { SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined() }

    struct Daemon {
        let directory: String
        let port: Int
        let process: FerryProcess.Running
        let table: String
    }

    static func start(directory existing: String? = nil, table existingTable: String? = nil) async throws -> Daemon {
        let postgres = try #require(try SandboxContext.require().postgres)
        let directory = try existing ?? FerryProcess.scratchDirectory()
        let table = existingTable ?? "api_sales_\(UInt32.random(in: 0..<UInt32.max))"
        if existing == nil {
            _ = try await postgres.psql(
                "CREATE TABLE \(table) AS SELECT g AS id, 'item ' || g AS name, (g * 1.5)::numeric(12,2) AS amount FROM generate_series(1, 5000) g")
            for sub in ["queries", "config", "exports"] {
                try FileManager.default.createDirectory(atPath: directory + "/" + sub, withIntermediateDirectories: true)
            }
            try "SELECT * FROM \(table) WHERE id >= {min_id} ORDER BY id\n".write(
                toFile: directory + "/queries/sales.sql", atomically: true, encoding: .utf8)
            try "SELECT g AS id, pg_sleep(0.2)::text AS pause FROM generate_series(1, 600) g\n".write(
                toFile: directory + "/queries/slow.sql", atomically: true, encoding: .utf8)
            try "min_id: 1\n".write(toFile: directory + "/config/common_params.yaml", atomically: true, encoding: .utf8)
            try """
            users:
              - name: analyst
                token_sha256: \(hash("token-analyst"))
                permissions:
                  - query: "*"
                    access: read
              - name: intern
                token_sha256: \(hash("token-intern"))
                permissions:
                  - query: other
                    access: read
            """.write(toFile: directory + "/permissions.yaml", atomically: true, encoding: .utf8)
            let endpoint = postgres.endpoint
            try """
            postgres:
              host: \(endpoint.host)
              port: \(endpoint.port)
              user: \(endpoint.user)
              password: \(endpoint.password?.value ?? "")
              database: \(endpoint.database)
            api:
              permissions: permissions.yaml
              audit_log: audit.jsonl
              max_jobs:
                extract: 2

            """.write(toFile: directory + "/ferry.yaml", atomically: true, encoding: .utf8)
        }
        let port = try FreePort.find()
        let process = try FerryProcess.start(["run", "--http-port", "\(port)", "--log-format", "json"], in: directory)
        _ = try await HTTPProbe.waitFor(port: port, path: "/health/live", status: 200, timeout: .seconds(60))
        return Daemon(directory: directory, port: port, process: process, table: table)
    }

    static func client(_ daemon: Daemon, token: String) throws -> Client {
        Client(serverURL: URL(string: "http://127.0.0.1:\(daemon.port)")!, transport: AsyncHTTPClientTransport(), middlewares: [Bearer(token: token)])
    }

    @Test func theSDKRunsAnExtractionToItsFiles() async throws {
        let daemon = try await Self.start()
        defer { daemon.process.signal(SIGKILL) }
        let client = try Self.client(daemon, token: "token-analyst")
        let started = try await client.startExtract(
            headers: .init(idempotencyKey: "sdk-test-1"), body: .json(.init(queries: ["sales"], destination: "sdk/run1")))
        guard case .accepted(let accepted) = started else {
            Issue.record("\(started)")
            return
        }
        let job = try accepted.body.json
        #expect(job.kind == .extract && job.requestedBy == "analyst")
        var finished: Components.Schemas.Job?
        for _ in 0..<300 {
            let current = try await client.getJob(path: .init(id: job.id))
            if case .ok(let ok) = current, let body = try? ok.body.json, body.state != .running && body.state != .queued {
                finished = body
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        let done = try #require(finished)
        #expect(done.state == .succeeded, "\(done)")
        #expect(done.progress.rows == 5000 && done.progress.bytes > 0, "\(done.progress)")
        let file = daemon.directory + "/exports/sdk/run1/sales.parquet"
        let rows = try await ExternalClient.run(
            "python3", ["-c", "import pyarrow.parquet as pq, sys; print(pq.read_metadata(sys.argv[1]).num_rows)", file])
        #expect(rows.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "5000", "\(rows.stdout)\(rows.stderr)")
        // The same key and request: the same job, not a second run.
        let replay = try await client.startExtract(
            headers: .init(idempotencyKey: "sdk-test-1"), body: .json(.init(queries: ["sales"], destination: "sdk/run1")))
        guard case .ok(let replayed) = replay else {
            Issue.record("\(replay)")
            return
        }
        #expect(try replayed.body.json.id == job.id)
        // Permissions: a user without the query gets 403 before anything runs; an unknown query is 422; a path out of
        // the extract root is 422; an existing file without overwrite is 409.
        let intern = try Self.client(daemon, token: "token-intern")
        guard case .forbidden(let forbidden) = try await intern.startExtract(body: .json(.init(queries: ["sales"], destination: "x"))) else {
            Issue.record("not forbidden")
            return
        }
        #expect(try forbidden.body.json.message.contains("may not run query sales"))
        guard case .unprocessableContent = try await client.startExtract(body: .json(.init(queries: ["nope"], destination: "x"))) else {
            Issue.record("an unknown query was accepted")
            return
        }
        guard case .unprocessableContent(let escape) = try await client.startExtract(body: .json(.init(queries: ["sales"], destination: "../../etc")))
        else {
            Issue.record("a destination out of the root was accepted")
            return
        }
        #expect(try escape.body.json.message.contains("extract root"))
        guard case .conflict = try await client.startExtract(body: .json(.init(queries: ["sales"], destination: "sdk/run1"))) else {
            Issue.record("an existing file was not a conflict")
            return
        }
        // The audit names the user and the outcome, never a token (reads are written by the flusher, within 200 ms).
        try await Task.sleep(for: .milliseconds(600))
        let audit = try String(contentsOfFile: daemon.directory + "/audit.jsonl", encoding: .utf8)
        #expect(audit.contains(#""user_name":"analyst""#) && audit.contains(#""action":"startExtract""#) && audit.contains(#""status":202"#))
        #expect(audit.contains(#""user_name":"intern""#) && audit.contains(#""event_type":"forbidden""#))
        #expect(audit.contains(#""source_ip":"127.0.0.1""#), "\(audit.suffix(600))")
        #expect(!audit.contains("token-"))
        daemon.process.signal(SIGTERM)
        #expect(try await daemon.process.wait(timeout: .seconds(30)) == 0, "\(daemon.process.errors().suffix(2000))")
    }

    @Test func aJobRunningWhenTheDaemonIsKilledIsFailedByTheNextOne() async throws {
        let first = try await Self.start()
        let client = try Self.client(first, token: "token-analyst")
        let started = try await client.startExtract(body: .json(.init(queries: ["slow"], destination: "slow")))
        guard case .accepted(let accepted) = started else {
            first.process.signal(SIGKILL)
            Issue.record("\(started)")
            return
        }
        let id = try accepted.body.json.id
        try await Task.sleep(for: .milliseconds(500))
        first.process.signal(SIGKILL)
        _ = try await first.process.wait(timeout: .seconds(10))
        let second = try await Self.start(directory: first.directory, table: first.table)
        defer { second.process.signal(SIGKILL) }
        let again = try Self.client(second, token: "token-analyst")
        try await eventually("the interrupted job is failed", timeout: .seconds(30)) {
            guard case .ok(let ok) = try await again.getJob(path: .init(id: id)), let job = try? ok.body.json else { return false }
            return job.state == .failed && job.error?.message.contains("ferry run stopped while this job was running") == true
        }
        #expect(!FileManager.default.fileExists(atPath: first.directory + "/exports/slow/slow.parquet"), "nothing published")
    }

    /// `http.tls_certificate`: HTTPS only (a client that checks the certificate against it gets the API; plain HTTP is
    /// not served). Beyond loopback without TLS or without tokens, `ferry run` refuses to start, naming the fix.
    @Test func tlsAndTheBindCheck() async throws {
        let base = try await Self.start()
        base.process.signal(SIGTERM)
        _ = try await base.process.wait(timeout: .seconds(30))
        let certificate = try await TestCertificate.make()
        let yaml = try String(contentsOfFile: base.directory + "/ferry.yaml", encoding: .utf8)
        try (yaml + "http:\n  tls_certificate: \(certificate.certificate)\n  tls_key: \(certificate.key)\n").write(
            toFile: base.directory + "/ferry.yaml", atomically: true, encoding: .utf8)
        let port = try FreePort.find()
        let daemon = try FerryProcess.start(["run", "--http-port", "\(port)"], in: base.directory)
        defer { daemon.signal(SIGKILL) }
        var answer = ""
        for _ in 0..<100 {
            let probe = try await ExternalClient.run(
                "curl", ["-s", "--cacert", certificate.certificate, "-H", "Authorization: Bearer token-analyst", "https://127.0.0.1:\(port)/jobs"])
            answer = probe.stdout
            if probe.status == 0 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(answer.contains(#""jobs""#), "\(answer)\(daemon.errors().suffix(1000))")
        let plain = try await ExternalClient.run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(port)/health/live"])
        #expect(plain.stdout != "200", "plain HTTP is not served: \(plain.stdout)")
        daemon.signal(SIGTERM)
        _ = try await daemon.wait(timeout: .seconds(30))

        // Beyond loopback: TLS and tokens, or allow_insecure.
        try (yaml + "http:\n  host: 0.0.0.0\n").write(toFile: base.directory + "/ferry.yaml", atomically: true, encoding: .utf8)
        let refused = try await FerryProcess.run(["run", "--http-port", "\(try FreePort.find())"], in: base.directory, timeout: .seconds(60))
        #expect(
            refused.status != 0 && refused.stderr.contains("http.host 0.0.0.0") && refused.stderr.contains("tls_certificate"), "\(refused.stderr)")
    }

    /// schemathesis (PyPI), generating requests from openapi.yaml against the live server, with a token: no 5xx, and
    /// every response as the spec says (status codes, headers, bodies, 405 for methods a route does not take, 4xx for
    /// requests off the schema). The cluster operations are left out: this server controls no cluster. Left out too is
    /// the check that every schema-valid request is accepted: a well-formed request for a country or query the library
    /// does not have is a 422 by design, which no schema can express.
    @Test func schemathesisFindsNoServerErrorsAndNoResponseOffTheSpec() async throws {
        let daemon = try await Self.start()
        defer { daemon.process.signal(SIGKILL) }
        let spec = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("openapi.yaml").path
        let run = try await ExternalClient.run(
            "python3",
            [
                "-m", "schemathesis.cli", "run", spec, "--url", "http://127.0.0.1:\(daemon.port)", "-H", "Authorization: Bearer token-analyst",
                "--checks", "all", "--exclude-checks", "positive_data_acceptance",
                "--max-examples", "25", "--seed", "7", "--exclude-path-regex", "^/cluster", "--request-timeout", "20",
                "--generation-allow-x00", "false", "--no-color",
            ], timeout: .seconds(900))
        #expect(run.status == 0, "\(run.stdout.suffix(6000))\(run.stderr.suffix(2000))")
        #expect(!daemon.process.errors().contains("fatal"), "the server stayed up")
        #expect(try await HTTPProbe.get(port: daemon.port, path: "/health/live").status == 200)
    }

    /// SIGHUP reloads the permissions file without a restart: a user added is let in, a file with a plaintext token is
    /// refused (the file in force stays, and the log says why), and requests go on being answered meanwhile.
    @Test func sighupReloadsThePermissions() async throws {
        let daemon = try await Self.start()
        defer { daemon.process.signal(SIGKILL) }
        let headers = ["Authorization": "Bearer token-newcomer"]
        // The API is up once a known token is answered (its tables exist).
        _ = try await HTTPProbe.waitFor(
            port: daemon.port, path: "/jobs", headers: ["Authorization": "Bearer token-analyst"], status: 200, timeout: .seconds(60))
        #expect(try await HTTPProbe.get(port: daemon.port, path: "/jobs", headers: headers).status == 401)
        let file = daemon.directory + "/permissions.yaml"
        let original = try String(contentsOfFile: file, encoding: .utf8)
        try (original + "\n  - name: newcomer\n    token_sha256: \(Self.hash("token-newcomer"))\n").write(
            toFile: file, atomically: true, encoding: .utf8)
        daemon.process.signal(SIGHUP)
        try await eventually("the newcomer is let in", timeout: .seconds(20)) {
            (try? await HTTPProbe.get(port: daemon.port, path: "/jobs", headers: headers).status) == 200
        }
        try (original + "\n  - name: careless\n    token: plain-text-secret\n").write(toFile: file, atomically: true, encoding: .utf8)
        daemon.process.signal(SIGHUP)
        try await eventually("the reload is refused in the log", timeout: .seconds(20)) {
            daemon.process.errors().contains("API permissions not reloaded")
        }
        #expect(!daemon.process.errors().contains("plain-text-secret"))
        #expect(try await HTTPProbe.get(port: daemon.port, path: "/jobs", headers: headers).status == 200, "the file in force stayed")
        #expect(try await HTTPProbe.get(port: daemon.port, path: "/jobs", headers: ["Authorization": "Bearer token-analyst"]).status == 200)
    }
}
