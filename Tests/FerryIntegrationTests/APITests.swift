import Crypto
import FerryAPI
import FerryAPIContract
import FerryCore
import FerryPostgres
import FerryPostgresNode
import FerrySandbox
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import PostgresNIO
import Synchronization
import Testing

/// The API's machinery against a real PostgreSQL (jobs and audit kept there), with a planner whose work the test
/// controls: tokens and permissions (401 / 403 / 404), the error shape, body limits, the audit in JSON lines and in its
/// table, jobs (progress, cancel, per-kind limits, idempotency keys, a restart), and the audit failing closed.
@Suite(.sandbox) struct APITests {
    static func hash(_ token: String) -> String { SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined() }

    static let permissions = """
        users:
          - name: abc
            token_sha256: \(hash("token-abc"))
            permissions:
              - table: sales.ventas
                access: read_write
                max_delete_rows: 10
              - query: ventas
                access: read
          - name: ops
            token_sha256: \(hash("token-ops"))
            permissions:
              - admin: true
          - name: viewer
            token_sha256: \(hash("token-viewer"))
        """

    /// Work the test releases: each job waits for `gate` (or fails when `fail` is set), reporting progress.
    final class Gate: Sendable {
        let open = Atomic<Bool>(false)
        let started = Atomic<Int>(0)
    }

    struct FakePlanner: JobPlanner {
        let gate: Gate
        static let tables = ["ventas": "sales.ventas", "compras": "sales.compras"]

        func work(_ label: String) -> JobWork {
            { [gate] context in
                gate.started.add(1, ordering: .relaxed)
                context.progress(rows: 42, bytes: 4200, phase: "working on \(label)")
                while !gate.open.load(ordering: .relaxed) { try await Task.sleep(for: .milliseconds(20)) }
                if label == "fail" { throw FerryError(.invalidInput, "the source said no", fix: "ask it nicely") }
                return "{\"label\":\(JSONText.string(label)),\"rows\":42}"
            }
        }

        func extract(_ request: Components.Schemas.ExtractRequest, user: Permissions.User) async throws -> PlannedJob {
            for query in request.queries ?? ["ventas"] where !user.mayRun(query: query) {
                throw APIError(.forbidden, .permission, "\(user.name) may not run query \(query)", fix: "add `- query: \(query)` with access: read")
            }
            return PlannedJob(
                target: request.destination, work: work(request.destination)
            )
        }

        func sync(pipeline: String, user: Permissions.User) async throws -> PlannedJob {
            guard let table = Self.tables[pipeline] else { throw APIError(.notFound, .notFound, "no pipeline \(pipeline)") }
            guard user.grant(table: table, .write) != nil else {
                throw APIError(.forbidden, .permission, "\(user.name) may not write \(table)", fix: "grant write on \(table)")
            }
            return PlannedJob(target: pipeline, work: work(pipeline))
        }

        func reconcile(pipeline: String, repair: Bool, user: Permissions.User) async throws -> PlannedJob {
            guard Self.tables[pipeline] != nil else { throw APIError(.notFound, .notFound, "no pipeline \(pipeline)") }
            return PlannedJob(target: pipeline, work: work(repair ? "fail" : pipeline))
        }
    }

    struct World {
        let router: Router<FerryRequestContext>
        let queue: JobQueue
        let gate: Gate
        let auditPath: String
        let session: PostgresSession
        let store: JobStore
        let audit: AuditLog
    }

    static func world(auditSession: PostgresSession? = nil, limits: [JobRecord.Kind: Int] = [.extract: 2, .sync: 2, .reconcile: 1]) async throws
        -> World
    {
        let sandbox = try SandboxContext.require()
        let postgres = try #require(sandbox.postgres)
        let logger = Logger(label: "ferry.test.api")
        let session = PostgresSession(endpoint: postgres.endpoint, key: "postgres", logger: logger)
        let store = JobStore(session: session, logger: logger)
        try await store.prepare()
        let directory = try FerryProcess.scratchDirectory()
        let auditPath = directory + "/audit.jsonl"
        let audit = try AuditLog(path: auditPath, session: auditSession ?? session, logger: logger)
        if auditSession == nil { try await audit.prepare() }
        let gate = Gate()
        let queue = JobQueue(store: store, limits: limits, logger: logger)
        let environment = APIEnvironment(
            version: "test",
            readiness: { .init(status: .ready, endpoints: [], jobs: []) }, metrics: { Array("ferry_up 1\n".utf8) }, jobs: queue,
            planner: FakePlanner(gate: gate))
        let permissions = PermissionsSource(try Permissions.parse(Self.permissions, file: "permissions.yaml"))
        let apiGuard = APIGuard(permissions: permissions, audit: audit, legacyAdminToken: Secret("old-cluster-token"), logger: logger)
        let router = try FerryAPIRouter.build(service: FerryAPIService(environment), guard: apiGuard)
        return World(router: router, queue: queue, gate: gate, auditPath: auditPath, session: session, store: store, audit: audit)
    }

    typealias Answer = (status: Int, body: String, headers: HTTPFields)

    static func call(
        _ client: some TestClientProtocol, _ method: HTTPRequest.Method, _ path: String, token: String? = nil, body: String? = nil,
        headers extra: HTTPFields = [:]
    ) async throws -> Answer {
        var headers = extra
        if let token { headers[.authorization] = "Bearer \(token)" }
        if body != nil { headers[.contentType] = "application/json" }
        return try await client.execute(uri: path, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) {
            (Int($0.status.code), String(buffer: $0.body), $0.headers)
        }
    }

    static func json(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    @Test func tokensPermissionsAndTheErrorShape() async throws {
        let world = try await Self.world()
        world.gate.open.store(true, ordering: .relaxed)
        let app = Application(router: world.router)
        let queue = world.queue
        try await app.test(.router) { client in
            // Open: probes, metrics, the index.
            #expect(try await Self.call(client, .get, "/health/live").status == 200)
            #expect(try await Self.call(client, .get, "/metrics").body.contains("ferry_up 1"))
            let index = Self.json(try await Self.call(client, .get, "/").body)
            #expect((index["endpoints"] as? [[String: Any]])?.contains { $0["path"] as? String == "/jobs/{id}" } == true, "\(index)")
            // 401: no token, an unknown one; the header says how to authenticate.
            let none = try await Self.call(client, .get, "/jobs")
            #expect(none.status == 401 && none.headers[.wwwAuthenticate] == "Bearer", "\(none)")
            #expect(
                Self.json(none.body)["error"] as? String == "authentication"
                    && (Self.json(none.body)["fix"] as? String)?.contains("ferry token new") == true)
            #expect(try await Self.call(client, .get, "/jobs", token: "token-nobody").status == 401)
            #expect(!(try await Self.call(client, .get, "/jobs", token: "token-nobody").headers.contains { $0.name.rawName.hasPrefix("x-ferry") }))
            // 403: known, not allowed (a token for one table cannot write another); 404: no such pipeline.
            let other = try await Self.call(client, .post, "/sync/compras", token: "token-abc")
            #expect(other.status == 403 && other.body.contains("may not write sales.compras"), "\(other)")
            #expect(try await Self.call(client, .post, "/sync/nope", token: "token-abc").status == 404)
            #expect(try await Self.call(client, .post, "/sync/bad%20name", token: "token-abc").status == 400)
            let extractOther = try await Self.call(
                client, .post, "/extract", token: "token-abc", body: #"{"destination": "out", "queries": ["compras"]}"#)
            #expect(extractOther.status == 403 && extractOther.body.contains("query compras"), "\(extractOther)")
            // Allowed: 202 with Location; the job is the user's and an admin's to see, nobody else's.
            let started = try await Self.call(client, .post, "/sync/ventas", token: "token-abc")
            #expect(started.status == 202, "\(started)")
            let id = try #require(Self.json(started.body)["id"] as? String)
            #expect(started.headers[.location] == "/jobs/\(id)")
            #expect(try await Self.call(client, .get, "/jobs/\(id)", token: "token-abc").status == 200)
            #expect(try await Self.call(client, .get, "/jobs/\(id)", token: "token-ops").status == 200)
            #expect(try await Self.call(client, .get, "/jobs/\(id)", token: "token-viewer").status == 404)
            #expect(try await Self.call(client, .delete, "/jobs/\(id)", token: "token-viewer").status == 404)
            #expect(try await Self.call(client, .get, "/jobs/not-a-uuid", token: "token-abc").status == 400)
            // The cluster: admin only (the old cluster.api_token still counts as admin); this server controls none.
            #expect(try await Self.call(client, .get, "/cluster", token: "token-abc").status == 403)
            #expect(try await Self.call(client, .get, "/cluster", token: "token-ops").status == 404)
            #expect(try await Self.call(client, .get, "/cluster", token: "old-cluster-token").status == 404)
            // Malformed, oversized, unknown: clean 4xx in the one shape.
            let malformed = try await Self.call(client, .post, "/extract", token: "token-abc", body: #"{"destination": "#)
            #expect(malformed.status == 400 && Self.json(malformed.body)["error"] as? String == "invalid_input", "\(malformed)")
            let missing = try await Self.call(client, .post, "/extract", token: "token-abc", body: #"{"queries": []}"#)
            #expect(missing.status == 400 && missing.body.contains("destination"), "\(missing)")
            let huge = try await Self.call(
                client, .post, "/extract", token: "token-abc", body: #"{"destination": ""# + String(repeating: "x", count: 70_000) + #""}"#)
            #expect(huge.status == 413 && Self.json(huge.body)["error"] as? String == "too_large", "\(huge.status)")
            let unknown = try await Self.call(client, .get, "/nowhere", token: "token-abc")
            #expect(unknown.status == 404 && Self.json(unknown.body)["error"] as? String == "not_found", "\(unknown)")
            let badKey = try await Self.call(
                client, .post, "/sync/ventas", token: "token-abc", headers: [HTTPField.Name("Idempotency-Key")!: String(repeating: "k", count: 201)])
            #expect(badKey.status == 400, "\(badKey)")
            await queue.drain()
        }
        // The audit: every authenticated request and refusal, in JSON lines and in the table, never a token.
        try await world.audit.flush()
        let lines = try String(contentsOfFile: world.auditPath, encoding: .utf8).split(separator: "\n")
        #expect(lines.contains { $0.contains(#""event_type":"auth_failure""#) && $0.contains(#""resource":"/jobs""#) })
        #expect(lines.contains { $0.contains(#""event_type":"forbidden""#) && $0.contains(#""user_name":"abc""#) && $0.contains("startSync") })
        #expect(lines.contains { $0.contains(#""event_type":"attempt""#) && $0.contains("/sync/ventas") })
        #expect(lines.contains { $0.contains(#""event_type":"request""#) && $0.contains(#""status":202"#) && $0.contains("duration_ms") })
        #expect(!lines.contains { $0.contains("token-") }, "no token in the audit")
        let rows = try await world.session.withConnection { connection in
            try await connection.query(
                "SELECT count(*)::int8 FROM ferry_api.audit WHERE user_name = 'abc' AND action = 'startSync'", logger: Logger(label: "t")
            )
            .collect().first?.decode(Int64.self) ?? 0
        }
        #expect(rows >= 3, "the table has them too")
        await world.session.close()
    }

    @Test func jobsReportProgressCancelHonourLimitsAndKeys() async throws {
        let world = try await Self.world(limits: [.extract: 2, .sync: 1, .reconcile: 1])
        let app = Application(router: world.router)
        let (queue, gate) = (world.queue, world.gate)
        try await app.test(.router) { client in
            let key: HTTPFields = [HTTPField.Name("Idempotency-Key")!: "run-2026-12-07"]
            let first = try await Self.call(client, .post, "/extract", token: "token-abc", body: #"{"destination": "out"}"#, headers: key)
            #expect(first.status == 202, "\(first)")
            let id = try #require(Self.json(first.body)["id"] as? String)
            // The same request under the same key: the same job (200); another request under it: 409.
            let again = try await Self.call(client, .post, "/extract", token: "token-abc", body: #"{"destination": "out"}"#, headers: key)
            #expect(again.status == 200 && Self.json(again.body)["id"] as? String == id, "\(again)")
            let otherBody = try await Self.call(client, .post, "/extract", token: "token-abc", body: #"{"destination": "elsewhere"}"#, headers: key)
            #expect(otherBody.status == 409 && otherBody.body.contains("another request"), "\(otherBody)")
            // Progress while it runs.
            try await eventually("the job reports progress", timeout: .seconds(10)) {
                let job = Self.json(try await Self.call(client, .get, "/jobs/\(id)", token: "token-abc").body)
                let progress = job["progress"] as? [String: Any]
                return job["state"] as? String == "running" && progress?["rows"] as? Int == 42 && progress?["phase"] as? String == "working on out"
            }
            // One sync at a time: the second is a 429 with Retry-After.
            let sync = try await Self.call(client, .post, "/sync/ventas", token: "token-abc")
            #expect(sync.status == 202)
            let busy = try await Self.call(client, .post, "/sync/ventas", token: "token-abc")
            #expect(busy.status == 429 && busy.headers[.retryAfter] == "5", "\(busy)")
            // Cancel: 202, then cancelled by its user; a second cancel of a finished job is a 409.
            let syncID = try #require(Self.json(sync.body)["id"] as? String)
            let cancelled = try await Self.call(client, .delete, "/jobs/\(syncID)", token: "token-abc")
            #expect(cancelled.status == 202, "\(cancelled)")
            try await eventually("the cancelled job ends", timeout: .seconds(10)) {
                let job = Self.json(try await Self.call(client, .get, "/jobs/\(syncID)", token: "token-abc").body)
                return job["state"] as? String == "cancelled" && (job["error"] as? [String: Any])?["message"] as? String == "cancelled by abc"
            }
            #expect(try await Self.call(client, .delete, "/jobs/\(syncID)", token: "token-abc").status == 409)
            // A failing job keeps its error; a finished one its result.
            let failing = try await Self.call(client, .post, "/reconcile/ventas", token: "token-abc", body: #"{"repair": true}"#)
            let failingID = try #require(Self.json(failing.body)["id"] as? String)
            gate.open.store(true, ordering: .relaxed)
            await queue.drain()
            let done = Self.json(try await Self.call(client, .get, "/jobs/\(id)", token: "token-abc").body)
            #expect(done["state"] as? String == "succeeded" && (done["result"] as? [String: Any])?["label"] as? String == "out", "\(done)")
            let failed = Self.json(try await Self.call(client, .get, "/jobs/\(failingID)", token: "token-abc").body)
            #expect(failed["state"] as? String == "failed" && (failed["error"] as? [String: Any])?["fix"] as? String == "ask it nicely", "\(failed)")
            // Listing: newest first, the user's own; filters.
            let listed = Self.json(try await Self.call(client, .get, "/jobs?state=succeeded", token: "token-abc").body)
            let jobs = listed["jobs"] as? [[String: Any]] ?? []
            #expect(jobs.contains { $0["id"] as? String == id } && jobs.allSatisfy { $0["state"] as? String == "succeeded" })
            #expect((Self.json(try await Self.call(client, .get, "/jobs", token: "token-viewer").body)["jobs"] as? [Any])?.isEmpty == true)
            #expect(try await Self.call(client, .get, "/jobs?limit=0", token: "token-abc").status == 400)
        }
        await world.session.close()
    }

    /// A job that was running when the process died is failed, with that reason, by the next process.
    @Test func aJobRunningWhenTheProcessDiedIsMarkedFailed() async throws {
        let world = try await Self.world()
        let (record, _) = try await world.queue.submit(
            kind: .sync, target: "ventas", user: "abc", request: "interrupted \(UUID())", idempotencyKey: nil,
            work: FakePlanner(gate: world.gate).work("x"))
        let store = world.store
        try await eventually("the job runs", timeout: .seconds(10)) { try await store.job(record.id)?.state == .running }
        // The next process: its queue knows nothing of the job; recovery marks it.
        let recovered = try await world.store.recoverInterrupted()
        #expect(recovered >= 1)
        let stored = try #require(try await world.store.job(record.id))
        #expect(stored.state == .failed && stored.error?.message.contains("ferry run stopped while this job was running") == true, "\(stored)")
        world.gate.open.store(true, ordering: .relaxed)
        await world.queue.drain()
        await world.session.close()
    }

    /// The audit table cannot be written (its server is gone): state-changing requests are refused with 503 before any
    /// work starts; reads still answer.
    @Test func theAuditFailsClosed() async throws {
        var endpoint = try #require(try SandboxContext.require().postgres).endpoint
        endpoint.port = 1
        endpoint.connectTimeout = .seconds(1)
        let gone = PostgresSession(endpoint: endpoint, key: "audit", logger: Logger(label: "ferry.test.api"))
        let world = try await Self.world(auditSession: gone)
        world.gate.open.store(true, ordering: .relaxed)
        let app = Application(router: world.router)
        let gate = world.gate
        try await app.test(.router) { client in
            let refused = try await Self.call(client, .post, "/sync/ventas", token: "token-abc")
            #expect(refused.status == 503 && refused.body.contains("nothing was done"), "\(refused)")
            let started = gate.started.load(ordering: .relaxed)
            #expect(started == 0, "no work started")
            #expect(try await Self.call(client, .get, "/jobs", token: "token-abc").status == 200)
        }
        await gone.close()
        await world.session.close()
    }
}
