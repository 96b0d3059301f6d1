import FerryAPIContract
package import FerryCore
package import Foundation
package import HTTPTypes
package import Hummingbird
package import Logging
package import NIOCore
import OpenAPIHummingbird
package import OpenAPIRuntime
import Synchronization

/// The permissions file, reloadable (SIGHUP) without dropping requests: a request uses the file as it was when the
/// request arrived; a file that no longer reads keeps the previous one in force (and the reload says why).
package final class PermissionsSource: Sendable {
    package let path: String
    private let current: Mutex<Permissions>

    package init(path: String) throws(FerryError) {
        self.path = path
        current = Mutex(try Permissions.load(path: path))
    }

    package init(_ permissions: Permissions, path: String = "-") {
        self.path = path
        current = Mutex(permissions)
    }

    package var permissions: Permissions { current.withLock { $0 } }

    /// Reads the file again; on an error the previous permissions stay and the error is thrown.
    package func reload() throws(FerryError) {
        let fresh = try Permissions.load(path: path)
        current.withLock { $0 = fresh }
    }
}

/// Opens when the API's tables exist: requests that need them wait for it a while, then get a 503 with Retry-After.
package final class StartupGate: Sendable {
    private let open: Mutex<Bool>

    package init(open: Bool = false) { self.open = Mutex(open) }

    package func markOpen() { open.withLock { $0 = true } }

    package var isOpen: Bool { open.withLock { $0 } }

    /// Waits up to `timeout` for the gate; false when it stayed shut.
    package func wait(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !isOpen {
            guard ContinuousClock.now < deadline, (try? await Task.sleep(for: .milliseconds(50))) != nil else { return isOpen }
        }
        return true
    }
}

/// What the API knows about the request being served, for handlers: the authenticated user and the client's address.
package enum APIRequestInfo {
    @TaskLocal package static var user: Permissions.User?
    @TaskLocal package static var remoteAddress: String?
}

/// A Hummingbird request context that keeps the client's address (for the audit log).
package struct FerryRequestContext: RequestContext, RemoteAddressRequestContext {
    package var coreContext: CoreRequestContextStorage
    package let remoteAddress: SocketAddress?

    package init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

/// Every API request passes here (an OpenAPI server middleware): the bearer token is checked against the permissions
/// (401 without a known one; the health, metrics and index operations are open), the body is read whole within
/// `bodyTimeout` and at most `maximumBodyBytes` (408, 413), errors become the one error shape with their status, and
/// the request is audited. A state-changing request is audited before it runs; when that write fails the request is
/// refused with 503 and nothing is done (the audit fails closed). Tokens and bodies are never logged.
package struct APIGuard: ServerMiddleware {
    package let permissions: PermissionsSource
    package let audit: AuditLog
    package let logger: Logger
    /// Accepted as an admin's token, with a deprecation warning once (the old `cluster.api_token`).
    package let legacyAdminToken: Secret?
    /// Open once the job and audit tables exist (``StartupGate``).
    package let startup: StartupGate
    package var maximumBodyBytes = 64 << 10
    package var bodyTimeout: Duration = .seconds(10)
    let unauthorizedAudit = AuditThrottle(linesPerWindow: 20, window: .seconds(60))
    let warnedLegacy = OnceFlag()

    /// Operations anyone may call: probes, metrics, the index.
    package static let openOperations: Set<String> = ["getIndex", "getLive", "getReady", "getMetrics"]
    /// Operations that change something: audited before they run.
    package static let stateChanging: Set<String> = ["startExtract", "startSync", "startReconcile", "cancelJob", "switchover", "failover", "rejoin"]

    package init(
        permissions: PermissionsSource, audit: AuditLog, legacyAdminToken: Secret? = nil, startup: StartupGate = StartupGate(open: true),
        logger: Logger
    ) {
        self.permissions = permissions
        self.audit = audit
        self.legacyAdminToken = legacyAdminToken
        self.startup = startup
        self.logger = logger
    }

    package func intercept(
        _ request: HTTPRequest, body: HTTPBody?, metadata: ServerRequestMetadata, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        var (response, responseBody) = try await guarded(request, body: body, metadata: metadata, operationID: operationID, next: next)
        response.headerFields[Self.errorCodeField] = nil
        // OpenAPIRuntime writes header values URI-encoded (`%2Fjobs%2F…`); a Location is a path as it is.
        if let location = response.headerFields[.location], let plain = location.removingPercentEncoding {
            response.headerFields[.location] = plain
        }
        return (response, responseBody)
    }

    private func guarded(
        _ request: HTTPRequest, body: HTTPBody?, metadata: ServerRequestMetadata, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        let started = ContinuousClock.now
        let path = String((request.path ?? "/").prefix { $0 != "?" })
        let address = APIRequestInfo.remoteAddress
        func event(_ type: String, user: String?, result: String, status: Int?) -> AuditEvent {
            let elapsed = (ContinuousClock.now - started).components
            return AuditEvent(
                eventType: type, user: user, sourceIP: address, method: request.method.rawValue, resource: path, action: operationID, result: result,
                status: status, durationMilliseconds: status == nil ? nil : Double(elapsed.seconds) * 1000 + Double(elapsed.attoseconds) / 1e15)
        }
        if Self.openOperations.contains(operationID) {
            return try await Self.answering { try await next(request, body, metadata) }
        }
        guard let user = authenticate(request) else {
            let response = Self.errorResponse(
                APIError(
                    .unauthorized, .authentication, "missing or unknown bearer token",
                    fix: "send `Authorization: Bearer <token>` with a token from `ferry token new` whose hash is in the permissions file"))
            if let suppressed = unauthorizedAudit.admit() {
                if suppressed > 0 {
                    logger.notice(
                        "API: more requests without a valid token were refused than were audited", metadata: ["ferry.not_audited": "\(suppressed)"])
                }
                audit.enqueue(event("auth_failure", user: nil, result: "authentication", status: 401))
            }
            return response
        }
        guard await startup.wait(timeout: .seconds(10)) else {
            return Self.errorResponse(
                APIError(
                    .serviceUnavailable,
                    FerryError(
                        .unreachable, "the API is starting: its tables in PostgreSQL are not ready yet",
                        fix: "try again shortly; if it lasts, the log of ferry run (ferry.api) says why"),
                    retryAfterSeconds: 2))
        }
        if Self.stateChanging.contains(operationID) {
            do {
                try await audit.record(event("attempt", user: user.name, result: "started", status: nil))
            } catch {
                logger.error("API: the audit log cannot be written; refusing a state-changing request", metadata: ["ferry.error": "\(error)"])
                return Self.errorResponse(
                    APIError(
                        .serviceUnavailable, .server, "the audit log cannot be written, so nothing was done",
                        fix: "check the audit log's file (api.audit_log) and the PostgreSQL database; then send the request again"))
            }
        }
        let (response, responseBody) = await APIRequestInfo.$user.withValue(user) {
            await Self.answering(logger: logger) {
                let checked = try await readBody(request, body)
                return try await next(request, checked, metadata)
            }
        }
        let status = response.status.code
        let result = status < 400 ? "ok" : (response.headerFields[Self.errorCodeField] ?? "error")
        audit.enqueue(event(status == 403 ? "forbidden" : "request", user: user.name, result: result, status: status))
        return (response, responseBody)
    }

    /// The user a bearer token belongs to.
    func authenticate(_ request: HTTPRequest) -> Permissions.User? {
        guard let header = request.headerFields[.authorization], header.hasPrefix("Bearer ") else { return nil }
        let token = String(header.dropFirst(7))
        if let user = permissions.permissions.authenticate(token) { return user }
        if let legacy = legacyAdminToken, Self.constantTimeEqual(Array(token.utf8), Array(legacy.value.utf8)) {
            if warnedLegacy.first() {
                logger.warning(
                    "API: a request used cluster.api_token, which is deprecated",
                    metadata: ["ferry.fix": "make an admin token with `ferry token new --name ops` and `- admin: true` in the permissions file"])
            }
            return Permissions.User(name: "cluster.api_token", tokenHash: [], grants: [], admin: true)
        }
        return nil
    }

    static func constantTimeEqual(_ left: [UInt8], _ right: [UInt8]) -> Bool {
        var difference = UInt8(left.count == right.count ? 0 : 1)
        for index in 0..<max(left.count, right.count) {
            difference |= (index < left.count ? left[index] : 0) ^ (index < right.count ? right[index] : 0)
        }
        return difference == 0
    }

    /// The body whole, within the limits: too large is a 413 (by its Content-Length before reading it), too slow a 408.
    func readBody(_ request: HTTPRequest, _ body: HTTPBody?) async throws -> HTTPBody? {
        // GET, HEAD and DELETE take no body here, and most requests are GETs: no task group and timer for them.
        guard let body, ![.get, .head, .delete].contains(request.method) else { return nil }
        if case .known(let length) = body.length, length == 0 { return nil }
        let limit = maximumBodyBytes
        let tooLarge = APIError(
            .contentTooLarge, .tooLarge, "the request body is over \(limit / 1024) KiB", fix: "send the small JSON body this endpoint takes")
        if case .known(let length) = body.length, length > limit { throw tooLarge }
        let timeout = bodyTimeout
        let bytes: [UInt8] = try await withThrowingTaskGroup(of: [UInt8]?.self) { group in
            group.addTask {
                do {
                    return try await [UInt8](collecting: body, upTo: limit)
                } catch {
                    throw tooLarge
                }
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let bytes = first else {
                throw APIError(
                    .requestTimeout, .timeout, "the request body did not arrive within \(DurationParser.format(timeout))",
                    fix: "send the whole body at once")
            }
            return bytes
        }
        // No bytes is no body (an optional body left out), not an empty JSON document.
        return bytes.isEmpty ? nil : HTTPBody(bytes)
    }

    /// Internal: carries an error response's code from ``answering(logger:_:)`` to the audit line.
    static let errorCodeField = HTTPField.Name("x-ferry-error-code")!

    /// Runs `work`; any error becomes the one error shape with its status. Errors the API did not make (a bug, a
    /// server's) are logged and answered 500 without internals.
    static func answering(
        logger: Logger? = nil, _ work: () async throws -> (HTTPResponse, HTTPBody?)
    ) async -> (HTTPResponse, HTTPBody?) {
        do {
            return try await work()
        } catch {
            return errorResponse(apiError(for: error, logger: logger))
        }
    }

    static func apiError(for error: any Error, logger: Logger?) -> APIError {
        var cause: any Error = error
        var described: String?
        var status: HTTPResponse.Status?
        if let server = error as? ServerError {
            cause = server.underlyingError
            described = server.causeDescription
            status = server.httpStatus
        }
        switch cause {
        case let failure as APIError: return failure
        case let failure as FerryError: return APIError(Self.status(for: failure.code), failure)
        case is DecodingError:
            return APIError(
                .badRequest, .invalidInput, "the request body is not the JSON this endpoint takes: \(Self.decodingProblem(cause))",
                fix: "compare it with openapi.yaml (GET / lists the endpoints)")
        default:
            if let status, (400..<500).contains(status.code) {
                return APIError(status, .invalidInput, described ?? "the request is malformed", fix: "compare it with openapi.yaml")
            }
            logger?.error("API: a request failed inside Ferry", metadata: ["ferry.error": "\(error)"])
            return APIError(.internalServerError, .server, "the request failed inside Ferry", fix: "read the log of ferry run (ferry.api)")
        }
    }

    static func decodingProblem(_ error: any Error) -> String {
        guard let decoding = error as? DecodingError else { return "unreadable" }
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? "." + $0.stringValue }.joined()
            return keys.isEmpty ? "the body" : String(keys.drop { $0 == "." })
        }
        switch decoding {
        case .keyNotFound(let key, let context): return "\(path(context)): `\(key.stringValue)` is missing"
        case .typeMismatch(_, let context), .valueNotFound(_, let context): return "\(path(context)) has the wrong type"
        case .dataCorrupted(let context): return "\(path(context)): \(context.debugDescription.prefix(120))"
        @unknown default: return "unreadable"
        }
    }

    package static func status(for code: FerryError.Code) -> HTTPResponse.Status {
        switch code {
        case .invalidInput, .configuration: .badRequest
        case .authentication: .unauthorized
        case .permission: .forbidden
        case .notFound: .notFound
        case .conflict: .conflict
        case .tooLarge: .contentTooLarge
        case .timeout: .gatewayTimeout
        case .unreachable, .closed: .serviceUnavailable
        default: .internalServerError
        }
    }

    package static func errorResponse(_ failure: APIError) -> (HTTPResponse, HTTPBody?) {
        var text = "{\"error\":\(JSONText.string(failure.error.code.description)),\"message\":\(JSONText.string(failure.error.message))"
        if let fix = failure.error.fix { text += ",\"fix\":\(JSONText.string(fix))" }
        text += "}"
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        headers[errorCodeField] = failure.error.code.description
        if failure.status == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
        if let seconds = failure.retryAfterSeconds { headers[.retryAfter] = "\(seconds)" }
        return (HTTPResponse(status: failure.status, headerFields: headers), HTTPBody(text))
    }
}

/// True the first time only.
final class OnceFlag: Sendable {
    private let flag = Atomic<Bool>(false)

    func first() -> Bool { !flag.exchange(true, ordering: .relaxed) }
}

/// Builds the API's router: the client's address kept for the audit, every operation of openapi.yaml registered
/// behind ``APIGuard``, and Hummingbird's own errors (no such route, a method the route does not take) in the one
/// error shape.
package enum FerryAPIRouter {
    package static func build(service: FerryAPIService, guard apiGuard: APIGuard, statusPage: StatusPage? = nil) throws -> Router<
        FerryRequestContext
    > {
        let router = Router(context: FerryRequestContext.self)
        router.add(middleware: APIEdgeMiddleware())
        statusPage?.add(to: router)
        // Compact JSON (the runtime's default pretty-prints), dates formatted without ICU.
        let configuration = Configuration(dateTranscoder: APIDateTranscoder(), jsonEncodingOptions: [.sortedKeys, .withoutEscapingSlashes])
        try service.registerHandlers(on: router, configuration: configuration, middlewares: [apiGuard])
        return router
    }
}

/// Sets ``APIRequestInfo/remoteAddress`` for the request, and answers what no operation handled (404, 405) as JSON.
struct APIEdgeMiddleware: RouterMiddleware {
    typealias Context = FerryRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let address = context.remoteAddress.flatMap { $0.ipAddress }
        return try await APIRequestInfo.$remoteAddress.withValue(address) {
            do {
                return try await next(request, context)
            } catch let error as HTTPError {
                let path = request.uri.path
                let allowed = FerryAPIService.methods(for: path)
                if error.status == .notFound, !allowed.isEmpty {
                    // A route the API has, with a method it does not take.
                    let (head, body) = APIGuard.errorResponse(
                        APIError(
                            .methodNotAllowed, .invalidInput,
                            "\(request.method) is not a method of \(PrintableText.escaped(String(path.prefix(200))))",
                            fix: "use \(allowed.joined(separator: ", "))"))
                    var headers = head.headerFields
                    headers[APIGuard.errorCodeField] = nil
                    headers[.allow] = allowed.joined(separator: ", ")
                    var bytes: [UInt8] = []
                    if let body { bytes = try await [UInt8](collecting: body, upTo: 1 << 20) }
                    return Response(status: head.status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
                }
                let code: FerryError.Code = error.status == .notFound ? .notFound : .invalidInput
                let message =
                    error.status == .notFound
                    ? "no endpoint \(request.method) \(PrintableText.escaped(String(request.uri.path.prefix(200))))"
                    : "\(request.method) \(PrintableText.escaped(String(request.uri.path.prefix(200)))): \(error.body ?? error.status.reasonPhrase)"
                let (head, body) = APIGuard.errorResponse(APIError(error.status, FerryError(code, message, fix: "GET / lists the endpoints")))
                var headers = head.headerFields
                headers[APIGuard.errorCodeField] = nil
                var bytes: [UInt8] = []
                if let body { bytes = try await [UInt8](collecting: body, upTo: 1 << 20) }
                return Response(status: head.status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
            }
        }
    }
}
