import FerryCore
public import Foundation

/// The SQL Server client's public surface for `Fuzz/` only: a scripted server answers each of the client's
/// messages (PRELOGIN, LOGIN7, one query) from fuzz bytes; whatever it sends, the client must end with rows or an
/// error, never a crash or a hang.
public enum FerrySQLServerFuzzEntry {
    /// Logs in to 127.0.0.1:`port` (user `fuzz`, database `fuzz`, one-second timeouts), runs `SELECT 1` and reads every
    /// row. Returns what happened, as text.
    public static func loginAndQuery(port: Int) -> String {
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        Task {
            var endpoint = SQLServerEndpoint()
            endpoint.host = "127.0.0.1"
            endpoint.port = port
            endpoint.user = "fuzz"
            endpoint.password = Secret("fuzz")
            endpoint.database = "fuzz"
            endpoint.connectTimeout = .seconds(1)
            var options = SQLServerOptions()
            options.queryTimeoutSeconds = 1
            do {
                let connection = try await SQLServerConnection.connect(endpoint, key: "fuzz", options: options)
                do {
                    let rows = try await connection.rows("SELECT 1")
                    outcome.set("\(rows.count) rows")
                } catch {
                    outcome.set("query failed: \(error)")
                }
                await connection.close()
            } catch {
                outcome.set("login failed: \(error)")
            }
            done.signal()
        }
        done.wait()
        return outcome.get()
    }

    private final class Outcome: @unchecked Sendable {
        private let lock = NSLock()
        private var text = ""
        func set(_ value: String) { lock.withLock { text = value } }
        func get() -> String { lock.withLock { text } }
    }
}
