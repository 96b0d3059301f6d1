import Foundation
import Hummingbird
package import Logging
import NIOCore
import Synchronization

/// A Databricks workspace as far as the Files API and its clients can tell: a Hummingbird server on a free loopback
/// port holding Unity Catalog volumes in memory. Databricks itself cannot run here; the emulator lets Ferry's client be
/// tested end to end, and the official Python `databricks-sdk` reads and writes through it, which checks that it
/// follows the service and not only Ferry's reading of it.
///
/// It serves, with Databricks' paths, statuses and error bodies (`{"error_code", "message"}`):
/// - the Files API: `PUT|GET|HEAD|DELETE /api/2.0/fs/files{path}` and `PUT|GET|HEAD|DELETE /api/2.0/fs/directories{path}`
///   (listings paged with `page_size` and `page_token`) — see ``EmulatedVolumes`` for the rules;
/// - OAuth machine-to-machine: `POST /oidc/v1/token` and `/oidc/.well-known/oauth-authorization-server`;
/// - what the SDK asks first: `/.well-known/databricks-config` (host metadata) and `GET /api/2.0/fs/endpoints`,
///   answered with the workspace host as the only Files API 2.0 endpoint (no presigned-URL storage here).
///
/// Knobs: valid tokens (`addToken`, read-only ones get 403 PERMISSION_DENIED on writes), OAuth clients and the
/// lifetime of their tokens, volumes (`createVolume`), injected failures (`failNext`), the largest accepted file, and
/// the log of requests received (`requests`).
package final class DatabricksEmulator: Sendable {
    /// A request as the emulator saw it.
    package struct ReceivedRequest: Sendable, CustomStringConvertible {
        package var method: String
        /// Percent-decoded, without the query.
        package var path: String
        /// The path as it came on the wire.
        package var rawPath: String
        package var query: [String: String]
        /// The Authorization header's scheme (`Bearer`, `Basic`), or nil without one.
        package var authorizationScheme: String?
        package var bodySize: Int

        package var description: String { "\(method) \(rawPath)" }
    }

    struct Failure: Sendable {
        var status: Int
        var retryAfter: Int?
    }

    struct ScriptedAnswer: Sendable {
        var status: Int
        var body: String
        var retryAfter: String?
    }

    struct State: Sendable {
        var volumes = EmulatedVolumes()
        var tokens: [String: Bool] = [:]  // token → read-only
        var clients: [String: String] = [:]
        var issued: [String: Date] = [:]  // OAuth access token → expiry
        var tokenLifetime = 3600
        var failures: [Failure] = []
        var scripted: [ScriptedAnswer] = []
        var requests: [ReceivedRequest] = []
        var maximumFileSize = 5 << 30
        var port = 0
        var issuedCount = 0
    }

    let state = Mutex(State())
    private let server = Mutex<Task<Void, Never>?>(nil)
    /// The logger it was made with (tests hand it to the clients they make).
    package let logger: Logger

    package init(logger: Logger = Logger(label: "ferry.databricks-emulator")) {
        self.logger = logger
    }

    /// The bound port (after `start()`).
    package var port: Int { state.withLock { $0.port } }
    /// `http://127.0.0.1:<port>`.
    package var host: String { "http://127.0.0.1:\(port)" }

    /// Listens on 127.0.0.1, on a free port, and returns once it accepts connections.
    package func start() async throws {
        let (ports, continuation) = AsyncStream.makeStream(of: Result<Int, any Error>.self)
        // Hummingbird reports `stop()`'s cancellation as errors ("Already closed"): only its critical messages are kept.
        var serverLogger = logger
        serverLogger.logLevel = .critical
        let application = Application(
            responder: CallbackResponder { (request: Request, _: BasicRequestContext) in await self.respond(to: request) },
            configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "databricks-emulator"),
            onServerRunning: { channel in continuation.yield(.success(channel.localAddress?.port ?? 0)) },
            logger: serverLogger)
        let task = Task {
            do {
                try await application.runService(gracefulShutdownSignals: [])
            } catch {
                continuation.yield(.failure(error))
            }
            continuation.finish()
        }
        server.withLock { $0 = task }
        for await result in ports {
            let port = try result.get()
            state.withLock { $0.port = port }
            return
        }
        throw CancellationError()
    }

    /// Stops serving and waits until the server is down.
    package func stop() async {
        let task = server.withLock { task in
            defer { task = nil }
            return task
        }
        task?.cancel()
        await task?.value
    }

    // MARK: Knobs

    /// A personal access token the workspace accepts; `readOnly` ones are refused writes with 403 PERMISSION_DENIED.
    package func addToken(_ token: String, readOnly: Bool = false) {
        state.withLock { $0.tokens[token] = readOnly }
    }

    /// A service principal's OAuth client id and secret.
    package func addOAuthClient(id: String, secret: String) {
        state.withLock { $0.clients[id] = secret }
    }

    /// The `expires_in` of the OAuth tokens issued from now on (default 3600 s).
    package func setTokenLifetime(seconds: Int) {
        state.withLock { $0.tokenLifetime = seconds }
    }

    /// Ends every OAuth access token issued so far at the server, while the clients holding them still think them
    /// valid: their next request gets 401 "token expired", as a token revoked or cut short by the workspace does.
    package func expireIssuedTokens() {
        state.withLock { state in
            let past = Date().addingTimeInterval(-1)
            for token in state.issued.keys { state.issued[token] = past }
        }
    }

    /// How many OAuth access tokens the token endpoint issued.
    package var issuedTokenCount: Int { state.withLock { $0.issuedCount } }

    /// Creates the volume `/Volumes/catalog/schema/volume` (as `CREATE VOLUME` does); paths under a volume that was not
    /// created are 404 RESOURCE_DOES_NOT_EXIST.
    package func createVolume(_ path: String) {
        state.withLock { $0.volumes.createVolume(path) }
    }

    /// The next `count` Files API requests are answered `status` (429 or 503), with `Retry-After: retryAfter` if given.
    package func failNext(_ count: Int, status: Int, retryAfter: Int? = nil) {
        state.withLock { $0.failures += Array(repeating: Failure(status: status, retryAfter: retryAfter), count: count) }
    }

    /// The next Files API or token request is answered `status` with `body` (JSON) as given, valid or not: for tests
    /// of what a client does with a hostile or broken answer.
    package func answerNext(status: Int, body: String, retryAfter: String? = nil) {
        state.withLock { $0.scripted.append(ScriptedAnswer(status: status, body: body, retryAfter: retryAfter)) }
    }

    /// The largest file an upload may carry (default 5 GiB, as Databricks); a larger one is 413.
    package func setMaximumFileSize(_ bytes: Int) {
        state.withLock { $0.maximumFileSize = bytes }
    }

    /// Every request received so far, oldest first.
    package var requests: [ReceivedRequest] { state.withLock { $0.requests } }

    package func clearRequests() {
        state.withLock { $0.requests.removeAll() }
    }

    /// The stored bytes of the file `path`, if there is one.
    package func file(_ path: String) -> [UInt8]? {
        state.withLock { $0.volumes.files[path]?.bytes }
    }
}
