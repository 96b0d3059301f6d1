import CoreMetrics
package import FerryCore
import FerryEtcd
import FerryPostgres
import Foundation
package import Logging
import Metrics
import PostgresNIO
package import ServiceLifecycle

/// Settings of one agent.
package struct AgentSettings: Sendable {
    /// The etcd prefix is `/ferry/<cluster>/`.
    package var cluster = "ferry"
    package var node: String
    /// How others reach this node's PostgreSQL (published in etcd for followers).
    package var host = "127.0.0.1"
    package var port: Int
    /// The agent's own connection to its PostgreSQL (superuser); the same credentials reach the other nodes
    /// (switchover checks).
    package var postgres: PostgresEndpoint
    package var etcd: [String]
    /// The leader key's lease. The crash-to-writable time is about ttl + one loop.
    package var ttl = 3
    /// How often the agent looks at its node and etcd when nothing wakes it (etcd's watch wakes it at once when the
    /// leader key, a switchover, a failover or a rejoin request changes).
    package var loopInterval: Duration = .milliseconds(300)
    /// A standby further behind the last known primary position than this does not promote itself.
    package var maximumLagBytes: Int64 = 16 << 20
    /// What a primary does when it cannot renew its leadership (etcd unreachable): stop taking writes before the
    /// lease can expire, so no second primary can ever be writable beside it (default), or keep serving.
    package var keepServingWithoutEtcd = false
    /// Synchronous replication: a commit waits for this many standbys (`ANY n (…)`); 0 is asynchronous.
    package var synchronousCount = 0
    /// In synchronous mode with no standby streaming: keep waiting (no acknowledged commit without a standby's
    /// copy), or fall back to asynchronous until one streams again (default).
    package var synchronousStrict = false
    /// The watchdog process that fences this node's primary if the agent stops renewing (killed, frozen).
    package var watchdog: WatchdogSettings?
    /// The backup repository the cluster archives its WAL into: after promoting, the agent archives the segments of
    /// the old timeline the old primary may have left unarchived (``WALCatchUp``).
    package var archiveRepository: String?

    package init(node: String, port: Int, postgres: PostgresEndpoint, etcd: [String]) {
        self.node = node
        self.port = port
        self.postgres = postgres
        self.etcd = etcd
    }
}

/// One node's agent: keeps its state in etcd, holds or follows the leader key, promotes the healthiest standby when
/// the leader is gone, serves switchovers, failovers and rejoins asked for through etcd, manages synchronous
/// replication, starts its PostgreSQL in the right role (rewinding an old primary first), and fences a primary
/// that lost its lease.
package final class ClusterAgent: Service, Sendable {
    let settings: AgentSettings
    let controller: any NodeController
    let etcd: EtcdClient
    let keys: ClusterKeys
    let logger: Logger
    let metrics: AgentMetrics

    package init(settings: AgentSettings, controller: any NodeController, logger: Logger) {
        self.settings = settings
        self.controller = controller
        self.etcd = EtcdClient(endpoints: settings.etcd, timeout: .milliseconds(800))
        self.keys = ClusterKeys(scope: settings.cluster)
        self.logger = logger
        self.metrics = AgentMetrics(node: settings.node)
    }

    var me: String { settings.node }
    var metadata: Logger.Metadata { ["ferry.node": "\(settings.node)"] }

    struct State {
        var lease: Int64?
        var leaseRenewed: ContinuousClock.Instant?
        /// The leader this standby is configured to stream from.
        var following: String?
        /// Fenced because etcd could not be reached: PostgreSQL stays down until etcd answers.
        var fencedWithoutEtcd = false
        /// The members this primary last made sure have a slot, and under which lease.
        var slotsFor: (lease: Int64, members: Set<String>)?
        /// The local server's role at the last step.
        var role: NodeRole?
        /// `synchronous_standby_names` as this primary last set it.
        var synchronousNames: String?
        /// Since when this standby has not streamed from a live leader.
        var notStreamingSince: ContinuousClock.Instant?
        /// The next start must rewind (or copy) first: the data may have diverged from the leader's.
        var mustRejoin = false
        /// Starts as a standby that failed in a row (the data cannot follow the leader: rewind, then copy).
        var failedStarts = 0
        var lastError: (text: String, at: ContinuousClock.Instant)?
    }

    package func run() async throws {
        var state = State()
        let session = PostgresSession(endpoint: settings.postgres, key: "cluster.nodes.\(settings.node)", logger: logger)
        var watchdog: WatchdogHandle?
        if let watchdogSettings = settings.watchdog {
            watchdog = try await WatchdogHandle.start(watchdogSettings, dataDirectory: controller.dataDirectory, logger: logger)
        }
        let doorbell = Doorbell()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.watch(doorbell) }
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                do {
                    try await tick(&state, session: session, watchdog: watchdog)
                    state.lastError = nil
                } catch {
                    report(error, &state)
                }
                await doorbell.wait(timeout: settings.loopInterval)
            }
            group.cancelAll()
        }
        // A primary must not outlive its agent as a writable server: stop it cleanly first (its WAL reaches the
        // standbys), then hand leadership over at once instead of after the lease.
        let role = await localState(session)?.role ?? state.role
        if role == .primary {
            logger.notice("agent stopping: shutting down this primary before releasing the leader key", metadata: metadata)
            // A fast shutdown sends all WAL to the standbys connected at that moment: give a standby that is
            // reconnecting a few seconds, so the next leader has every write.
            await waitForStreamingStandby(session, timeout: .seconds(10))
            watchdog?.disarm()
            await controller.shutdown()
        }
        watchdog?.quit()
        if let lease = state.lease { try? await etcd.revoke(lease: lease) }
        await session.close()
    }

    /// Logs a failed step once per distinct error every 10 seconds (etcd down would otherwise log every loop).
    private func report(_ error: any Error, _ state: inout State) {
        let text = "\(error)"
        if let last = state.lastError, last.text == text, ContinuousClock.now - last.at < .seconds(10) { return }
        state.lastError = (text, .now)
        logger.warning("agent step failed", metadata: metadata.merging(["ferry.error": "\(text)"]) { $1 })
    }

    /// Rings `doorbell` whenever a key the agents react to changes: the leader, a switchover, a failover or a
    /// rejoin request. Member keys (rewritten every loop by every agent) do not ring.
    private func watch(_ doorbell: Doorbell) async {
        let quiet = [keys.members, keys.history, keys.lastPrimary]
        while !Task.isCancelled {
            do {
                try await etcd.watch(prefix: keys.prefix) { changed in
                    if changed.contains(where: { key in !quiet.contains { key.hasPrefix($0) } }) { doorbell.ring() }
                }
            } catch {
                if Task.isCancelled { return }
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    func tick(_ state: inout State, session: PostgresSession, watchdog: WatchdogHandle?) async throws {
        guard let local = await localState(session) else {
            state.role = nil
            watchdog?.disarm()
            metrics.record(role: nil, timeline: nil, lagBytes: nil, lagSeconds: nil)
            try await stoppedTick(&state)
            return
        }
        state.role = local.role
        metrics.record(role: local.role, timeline: local.timeline, lagBytes: local.lagBytes, lagSeconds: local.lagSeconds)
        if local.role == .primary {
            try await primaryTick(local, &state, session: session, watchdog: watchdog)
        } else {
            watchdog?.disarm()
            try await standbyTick(local, &state, session: session)
        }
    }

    /// The local server's role and position, or nil when it does not answer.
    func localState(_ session: PostgresSession) async -> MemberState? {
        try? await session.withConnection { connection -> MemberState? in
            let rows = try await connection.query(
                """
                SELECT pg_is_in_recovery(),
                  (CASE WHEN pg_is_in_recovery() THEN greatest(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())
                   ELSE pg_current_wal_lsn() END - '0/0'::pg_lsn)::int8,
                  CASE WHEN pg_is_in_recovery()
                    THEN coalesce((SELECT received_tli FROM pg_stat_wal_receiver), (SELECT timeline_id FROM pg_control_checkpoint()))
                    ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END,
                  coalesce((SELECT status = 'streaming' FROM pg_stat_wal_receiver), false),
                  CASE WHEN pg_is_in_recovery() THEN greatest(0, coalesce(pg_last_wal_receive_lsn() - pg_last_wal_replay_lsn(), 0))::int8 END,
                  CASE WHEN pg_is_in_recovery() THEN
                    CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
                    ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 END END
                """, logger: logger)
            for try await (recovery, lsn, timeline, streaming, lagBytes, lagSeconds) in rows.decode(
                (Bool, Int64?, Int32?, Bool, Int64?, Double?).self)
            {
                var member = MemberState(
                    node: settings.node, host: settings.host, port: settings.port, role: recovery ? .standby : .primary,
                    lsn: UInt64(max(0, lsn ?? 0)), timeline: Int(timeline ?? 0))
                member.streaming = recovery && streaming
                member.lagBytes = lagBytes
                member.lagSeconds = lagSeconds.map { max(0, $0) }
                return member
            }
            return nil
        }
    }

    func publish(_ member: MemberState, lease: Int64) async throws {
        try await etcd.put(keys.member(me), value: etcd.encode(member), lease: lease)
    }

    func ensureLease(_ state: inout State) async throws -> Int64 {
        if let lease = state.lease, try await etcd.keepAlive(lease: lease) > 0 {
            state.leaseRenewed = .now
            return lease
        }
        let lease = try await etcd.grantLease(ttl: settings.ttl)
        state.lease = lease
        state.leaseRenewed = .now
        return lease
    }

    func member(_ node: String) async throws -> MemberState? {
        try await etcd.decode(MemberState.self, at: keys.member(node))
    }

    func record(_ event: HistoryEvent) async {
        let stamp = String(format: "%020.6f", Date().timeIntervalSince1970)
        try? await etcd.put(keys.history + stamp, value: etcd.encode(event))
    }

    /// Waits until some standby streams from this primary, for at most `timeout`.
    func waitForStreamingStandby(_ session: PostgresSession, timeout: Duration) async {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let streaming = try? await session.withConnection { connection -> Bool in
                let rows = try await connection.query("SELECT count(*)::int8 FROM pg_stat_replication WHERE state = 'streaming'", logger: logger)
                for try await count in rows.decode(Int64.self) { return count > 0 }
                return false
            }
            if streaming != false { return }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    /// A session to another node's PostgreSQL with this agent's credentials.
    func session(to member: MemberState) -> PostgresSession {
        var endpoint = settings.postgres
        endpoint.host = member.host
        endpoint.port = member.port
        endpoint.connectTimeout = .seconds(2)
        return PostgresSession(endpoint: endpoint, key: "cluster.nodes.\(member.node)", logger: logger)
    }
}

/// The agent's figures on `/metrics`.
struct AgentMetrics: Sendable {
    let role: Gauge
    let timeline: Gauge
    let lagBytes: Gauge
    let lagSeconds: Gauge
    let failovers: Counter
    let switchovers: Counter
    let rejoins: Counter

    init(node: String) {
        let dimensions = [("node", node)]
        role = Gauge(label: "ferry_cluster_role", dimensions: dimensions)
        timeline = Gauge(label: "ferry_cluster_timeline", dimensions: dimensions)
        lagBytes = Gauge(label: "ferry_cluster_lag_bytes", dimensions: dimensions)
        lagSeconds = Gauge(label: "ferry_cluster_lag_seconds", dimensions: dimensions)
        failovers = Counter(label: "ferry_cluster_failovers_total", dimensions: dimensions)
        switchovers = Counter(label: "ferry_cluster_switchovers_total", dimensions: dimensions)
        rejoins = Counter(label: "ferry_cluster_rejoins_total", dimensions: dimensions)
    }

    /// Role: 1 primary, 0 standby, -1 stopped.
    func record(role: NodeRole?, timeline: Int?, lagBytes: Int64?, lagSeconds: Double?) {
        self.role.record(role == .primary ? 1 : role == .standby ? 0 : -1)
        if let timeline { self.timeline.record(timeline) }
        self.lagBytes.record(lagBytes ?? 0)
        self.lagSeconds.record(lagSeconds ?? 0)
    }
}
