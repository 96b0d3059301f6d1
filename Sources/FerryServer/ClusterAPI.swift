package import FerryCluster
package import FerryCore
import Foundation
import Hummingbird
package import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// The HA cluster's control API: `GET /cluster`, `POST /cluster/switchover`, `POST /cluster/failover`,
/// `POST /cluster/rejoin/{node}`. Every request needs `Authorization: Bearer <cluster.api_token>`; every request,
/// allowed or not, is written to the log as an audit line (`ferry.audit`), without the token.
package struct ClusterAPI: Sendable {
    package let token: Secret
    package let operations: ClusterOperations
    /// The nodes `GET /cluster` inspects.
    package let nodes: [(name: String, endpoint: PostgresEndpoint)]
    /// The backup repository `GET /cluster` reports on, with the schedule's shortest interval.
    package var backups: (repository: String, every: Duration?)?
    package let logger: Logger
    let unauthorizedAudit = AuditThrottle(linesPerWindow: 20, window: .seconds(60))

    package init(token: Secret, operations: ClusterOperations, nodes: [(name: String, endpoint: PostgresEndpoint)], logger: Logger) {
        self.token = token
        self.operations = operations
        self.nodes = nodes
        self.logger = logger
    }

    static let endpoints: [(method: String, path: String, description: String)] = [
        ("GET", "/cluster", "every node's role, timeline, LSNs, lag, slot, sync state and agent; the WAL archiver and the backups"),
        ("POST", "/cluster/switchover", "planned switchover; body {\"to\": \"node2\"} (optional)"),
        ("POST", "/cluster/failover", "manual failover when the primary is gone; body {\"to\": \"node2\"}"),
        ("POST", "/cluster/rejoin/{node}", "rewind (or copy, body {\"copy\": true}) a node and make it follow"),
    ]

    /// The longest a client may take to send a request body.
    static let bodyTimeout: Duration = .seconds(10)

    func add(to router: Router<BasicRequestContext>) {
        let group = router.group("cluster")
        group.get { request, context in
            try await audited(request, action: "status") {
                let status = await ClusterInspector.inspect(
                    nodes, etcd: operations.etcd, scope: operations.keys.scope, backups: backups, logger: logger)
                return try Self.json(.ok, status)
            }
        }
        group.post("switchover") { request, context in
            try await audited(request, action: "switchover") {
                let body = try await Self.body(request, context: context)
                let result = try await operations.switchover(to: body.to, timeout: try body.timeout(default: 30))
                return try Self.json(.ok, result)
            }
        }
        group.post("failover") { request, context in
            try await audited(request, action: "failover") {
                let body = try await Self.body(request, context: context)
                guard let target = body.to else {
                    throw FerryError(.invalidInput, "the body names no standby", fix: "send {\"to\": \"node2\"}")
                }
                let result = try await operations.failover(to: target, timeout: try body.timeout(default: 30))
                return try Self.json(.ok, result)
            }
        }
        group.post("rejoin/:node") { request, context in
            try await audited(request, action: "rejoin") {
                let node = try context.parameters.require("node")
                let body = try await Self.body(request, context: context)
                let result = try await operations.rejoin(node, copy: body.copy ?? false, timeout: try body.timeout(default: 120))
                return try Self.json(.ok, result)
            }
        }
    }

    /// Checks the bearer token, runs `work`, turns a ``FerryError`` into a JSON error, and writes the audit line.
    private func audited(_ request: Request, action: String, _ work: () async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        var response: Response
        var outcome = "ok"
        if !authorized(request) {
            outcome = "unauthorized"
            response = Self.error(
                .unauthorized,
                FerryError(.permission, "missing or wrong bearer token", fix: "send `Authorization: Bearer <cluster.api_token>`"))
        } else {
            do {
                response = try await work()
            } catch is BodyTimeout {
                outcome = "error: body timeout"
                response = Self.error(
                    .requestTimeout,
                    FerryError(
                        .timeout, "the request body did not arrive within \(DurationParser.format(Self.bodyTimeout))",
                        fix: "send the whole body at once"))
            } catch let error as FerryError {
                outcome = "error: \(error.code)"
                response = Self.error(Self.status(for: error), error)
            } catch {
                // Internals (a type name, a stack of causes) stay in the log; the client learns where to look.
                outcome = "error"
                logger.error("cluster API request failed", metadata: ["ferry.action": "\(action)", "ferry.error": "\(error)"])
                response = Self.error(
                    .internalServerError,
                    FerryError(.server, "the \(action) request failed inside Ferry", fix: "read the daemon's log (ferry.cluster.api)"))
            }
        }
        if outcome == "unauthorized" {
            // A client without the token cannot flood the log: a few lines a minute, then one line with the count.
            guard let suppressed = unauthorizedAudit.admit() else { return response }
            if suppressed > 0 {
                logger.notice(
                    "cluster API: more requests without a valid token were refused than were logged",
                    metadata: ["ferry.audit": "true", "ferry.outcome": "unauthorized", "ferry.not_logged": "\(suppressed)"])
            }
        }
        logger.notice(
            "cluster API request",
            metadata: [
                "ferry.audit": "true", "ferry.action": "\(action)", "ferry.method": "\(request.method)", "ferry.path": "\(request.uri.path)",
                "ferry.outcome": "\(outcome)", "ferry.status": "\(response.status.code)", "ferry.took": "\(ContinuousClock.now - started)",
            ])
        return response
    }

    /// Constant-time comparison of the bearer token.
    func authorized(_ request: Request) -> Bool {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else { return false }
        let given = Array(header.dropFirst(7).utf8)
        let expected = Array(token.value.utf8)
        var difference = UInt8(given.count == expected.count ? 0 : 1)
        for index in 0..<max(given.count, expected.count) {
            difference |= (index < given.count ? given[index] : 0) ^ (index < expected.count ? expected[index] : 0)
        }
        return difference == 0
    }

    /// The request's body (at most 64 KiB, within ``bodyTimeout``), parsed and checked (``ClusterRequestBody``).
    static func body(_ request: Request, context: BasicRequestContext) async throws -> ClusterRequestBody {
        let buffer: ByteBuffer
        do {
            buffer = try await withThrowingTaskGroup(of: ByteBuffer?.self) { group in
                group.addTask { try await request.body.collect(upTo: ClusterRequestBody.maximumBytes) }
                group.addTask {
                    try await Task.sleep(for: bodyTimeout)
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let buffer = first else { throw BodyTimeout() }
                return buffer
            }
        } catch is NIOTooManyBytesError {
            throw FerryError(
                .tooLarge, "the request body is over \(ClusterRequestBody.maximumBytes / 1024) KiB",
                fix: "send the small JSON body this endpoint takes")
        }
        return try ClusterRequestBody.parse(buffer.readableBytesView)
    }

    static func status(for error: FerryError) -> HTTPResponse.Status {
        switch error.code {
        case .invalidInput, .configuration: .badRequest
        case .conflict: .conflict
        case .tooLarge: .contentTooLarge
        case .timeout: .gatewayTimeout
        case .unreachable: .serviceUnavailable
        case .permission, .authentication: .forbidden
        default: .internalServerError
        }
    }

    static func json(_ status: HTTPResponse.Status, _ value: some Encodable) throws -> Response {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        return FerryHTTPServer.jsonResponse(status, String(decoding: try encoder.encode(value), as: UTF8.self))
    }

    static func error(_ status: HTTPResponse.Status, _ error: FerryError) -> Response {
        var body = "{\"error\":\(JSONText.string(error.code.description)),\"message\":\(JSONText.string(error.message))"
        if let fix = error.fix { body += ",\"fix\":\(JSONText.string(fix))" }
        return FerryHTTPServer.jsonResponse(status, body + "}")
    }
}

/// A request body that did not arrive in time (408).
struct BodyTimeout: Error {}
