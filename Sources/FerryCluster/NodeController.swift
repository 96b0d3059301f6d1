/// What an agent does to the PostgreSQL beside it. A local cluster's nodes are driven with `pg_ctl`, `pg_rewind`
/// and `pg_basebackup` on their data directories (``LocalNodeController``); a deployment's node the same way.
package protocol NodeController: Sendable {
    /// The data directory (the watchdog reads the postmaster's pid from it).
    var dataDirectory: String { get }
    /// Whether the postmaster runs.
    var isRunning: Bool { get }
    /// Whether the data directory starts as a standby.
    var startsAsStandby: Bool { get }
    /// Starts the server in whatever role its data directory says, and waits until it accepts connections.
    func start() async throws
    /// Promotes a running standby and waits until it takes writes.
    func promote() async throws
    /// Points a running standby at the primary `host:port` through its slot `slot`, reloading the configuration.
    func follow(host: String, port: Int, slot: String) async throws
    /// Makes the stopped server start as a standby of `host:port` (the switchover's old primary, or after a rewind).
    func configureStandby(host: String, port: Int, slot: String) throws
    /// Brings the stopped server's data in line with the primary at `host:port` (`pg_rewind`); returns what it did.
    func rewind(host: String, port: Int) async throws -> String
    /// Replaces the stopped server's data with a fresh copy of the primary at `host:port` through `slot`.
    func copy(host: String, port: Int, slot: String) async throws
    /// The stopped server's last checkpoint position and timeline (`pg_controldata`).
    func controlData() async -> (checkpoint: UInt64, timeline: Int)?
    /// Stops the server at once: a primary that lost its leadership must take no more writes.
    func fence() async
    /// Stops the server cleanly (its WAL reaches the connected standbys first).
    func shutdown() async
}
