public import FerryCore
import FerryPostgres
import Foundation
public import Logging
import PostgresNIO
public import ServiceLifecycle

/// What an agent can do to the PostgreSQL beside it. The local cluster drives its servers with `pg_ctl`; a
/// deployment drives the node's own server the same way.
public protocol NodeController: Sendable {
    /// Promotes a standby (waits until it takes writes).
    func promote() async throws
    /// Points a standby at `leader` (host, port) through its slot `slot`, reloading the configuration.
    func follow(host: String, port: Int, slot: String) async throws
    /// Stops the server at once: a primary that lost its leadership must take no more writes.
    func fence() async
    /// Stops the server cleanly (the agent is stopping and the node must not stay a writable primary without it).
    func shutdown() async
}

/// Settings of one agent.
public struct AgentSettings: Sendable {
    /// The etcd prefix is `/ferry/<cluster>/`.
    public var cluster = "ferry"
    public var node: String
    /// How others reach this node's PostgreSQL (published in etcd for followers).
    public var host = "127.0.0.1"
    public var port: Int
    /// The agent's own connection to its PostgreSQL (superuser).
    public var postgres: PostgresEndpoint
    public var etcd: [String]
    /// The leader key's lease. The crash-to-writable time is about ttl + one loop.
    public var ttl = 3
    public var loopInterval: Duration = .milliseconds(300)
    /// A standby further behind the last known primary position than this does not promote itself.
    public var maximumLagBytes: Int64 = 16 << 20
    /// What a primary does when it cannot renew its leadership (etcd unreachable): `fence` (default: stop taking
    /// writes before the lease can expire, so no second primary can ever be writable beside it) or `keep`.
    public var keepServingWithoutEtcd = false

    public init(node: String, port: Int, postgres: PostgresEndpoint, etcd: [String]) {
        self.node = node
        self.port = port
        self.postgres = postgres
        self.etcd = etcd
    }
}

/// What an agent publishes about its node (`/ferry/<cluster>/members/<node>`).
public struct MemberState: Codable, Sendable, Equatable {
    public var node: String
    public var host: String
    public var port: Int
    public var role: String
    public var lsn: UInt64
    public var timeline: Int
    /// A standby whose WAL receiver streams from a primary right now (that primary is alive).
    public var streaming: Bool = false
}

/// One node's agent: keeps its state in etcd, holds or follows the leader key, promotes the healthiest standby when
/// the leader is gone, and fences a primary that lost its lease.
public final class ClusterAgent: Service, Sendable {
    let settings: AgentSettings
    let controller: any NodeController
    let etcd: EtcdClient
    let logger: Logger

    public init(settings: AgentSettings, controller: any NodeController, logger: Logger) {
        self.settings = settings
        self.controller = controller
        self.etcd = EtcdClient(endpoints: settings.etcd, timeout: .milliseconds(800))
        self.logger = logger
    }

    var prefix: String { "/ferry/\(settings.cluster)" }
    var leaderKey: String { prefix + "/leader" }
    var memberKey: String { prefix + "/members/" + settings.node }

    struct State {
        var lease: Int64?
        var leaseRenewed: ContinuousClock.Instant?
        var following: String?
        var fenced = false
        /// The lease under which this primary last made sure every member has its slot.
        var slotsFor: Int64?
        /// The local server's role at the last step.
        var role: String?
    }

    public func run() async throws {
        var state = State()
        let session = PostgresSession(endpoint: settings.postgres, key: "cluster.nodes.\(settings.node)", logger: logger)
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await tick(&state, session: session)
            } catch {
                logger.warning("agent step failed", metadata: ["ferry.node": "\(settings.node)", "ferry.error": "\(error)"])
            }
            try? await Task.sleep(for: settings.loopInterval)
        }
        // A primary must not outlive its agent as a writable server: stop it cleanly first (its WAL reaches the
        // standbys), then hand leadership over at once instead of after the lease.
        let role = await localState(session)?.role ?? state.role
        if role == "primary" {
            logger.notice("agent stopping: shutting down this primary before releasing the leader key", metadata: ["ferry.node": "\(settings.node)"])
            // A fast shutdown sends all WAL to the standbys connected at that moment: give a standby that is
            // reconnecting a few seconds, so the next leader has every write.
            await waitForStreamingStandby(session, timeout: .seconds(10))
            await controller.shutdown()
        }
        if let lease = state.lease { try? await etcd.revoke(lease: lease) }
        await session.close()
    }

    /// The local server's role and position, or nil when it does not answer.
    func localState(_ session: PostgresSession) async -> MemberState? {
        try? await session.withConnection { connection -> MemberState? in
            let rows = try await connection.query(
                """
                SELECT pg_is_in_recovery(),
                  (CASE WHEN pg_is_in_recovery() THEN greatest(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())
                   ELSE pg_current_wal_lsn() END - '0/0'::pg_lsn)::int8,
                  coalesce((SELECT received_tli FROM pg_stat_wal_receiver), (SELECT timeline_id FROM pg_control_checkpoint())),
                  coalesce((SELECT status = 'streaming' FROM pg_stat_wal_receiver), false)
                """, logger: logger)
            for try await (recovery, lsn, timeline, streaming) in rows.decode((Bool, Int64?, Int32?, Bool).self) {
                return MemberState(
                    node: settings.node, host: settings.host, port: settings.port, role: recovery ? "standby" : "primary",
                    lsn: UInt64(max(0, lsn ?? 0)), timeline: Int(timeline ?? 0), streaming: recovery && streaming)
            }
            return nil
        }
    }

    func tick(_ state: inout State, session: PostgresSession) async throws {
        guard let local = await localState(session) else {
            // The server is down: nothing to lead; leadership (if ours) lapses with the lease.
            state.lease = nil
            state.role = nil
            return
        }
        state.role = local.role
        if local.role == "primary" {
            try await leadOrFence(local, &state)
            if !state.fenced, state.slotsFor != state.lease {
                try await ensureSlots(session)
                state.slotsFor = state.lease
            }
        } else {
            try await followOrElect(local, &state, session: session)
        }
    }

    private func publish(_ member: MemberState, lease: Int64) async throws {
        let json = String(decoding: try JSONEncoder().encode(member), as: UTF8.self)
        try await etcd.put(memberKey, value: json, lease: lease)
    }

    private func ensureLease(_ state: inout State) async throws -> Int64 {
        if let lease = state.lease, try await etcd.keepAlive(lease: lease) > 0 {
            state.leaseRenewed = .now
            return lease
        }
        let lease = try await etcd.grantLease(ttl: settings.ttl)
        state.lease = lease
        state.leaseRenewed = .now
        return lease
    }

    /// A primary keeps its leadership by renewing its lease; if it cannot, or someone else leads, it fences.
    private func leadOrFence(_ local: MemberState, _ state: inout State) async throws {
        do {
            let lease = try await ensureLease(&state)
            try await publish(local, lease: lease)
            if let leader = try await etcd.get(leaderKey) {
                if leader.value == settings.node {
                    if leader.lease != lease { _ = try await etcd.replace(leaderKey, expected: settings.node, with: settings.node, lease: lease) }
                    try await etcd.put(prefix + "/last_primary_lsn", value: String(local.lsn))
                    return
                }
                logger.error(
                    "another node leads; fencing this primary",
                    metadata: ["ferry.node": "\(settings.node)", "ferry.leader": "\(leader.value)"])
                await fence(&state)
                return
            }
            if try await etcd.create(leaderKey, value: settings.node, lease: lease) {
                logger.notice("leading the cluster", metadata: ["ferry.node": "\(settings.node)"])
            }
        } catch {
            // etcd unreachable: fence before the lease can expire, unless told to keep serving.
            let renewed = state.leaseRenewed ?? .now
            if !settings.keepServingWithoutEtcd, ContinuousClock.now - renewed > .milliseconds(settings.ttl * 1000 / 2) {
                logger.error(
                    "cannot renew leadership in etcd; fencing this primary before the lease expires",
                    metadata: ["ferry.node": "\(settings.node)", "ferry.error": "\(error)"])
                await fence(&state)
            }
            throw error
        }
    }

    private func fence(_ state: inout State) async {
        await controller.fence()
        state.fenced = true
        state.lease = nil
    }

    /// A standby follows the leader; without one, the healthiest standby takes the lease and promotes.
    private func followOrElect(_ local: MemberState, _ state: inout State, session: PostgresSession) async throws {
        let lease = try await ensureLease(&state)
        try await publish(local, lease: lease)
        if let leader = try await etcd.get(leaderKey) {
            guard leader.value != settings.node else { return }  // promoting
            if state.following != leader.value, let member = try await member(leader.value) {
                try await controller.follow(host: member.host, port: member.port, slot: settings.node)
                state.following = leader.value
                logger.notice("following the leader", metadata: ["ferry.node": "\(settings.node)", "ferry.leader": "\(leader.value)"])
            }
            return
        }
        // No leader key, but this standby still streams from a live primary (its agent may be starting, or gone
        // while its server runs): promoting now would make a second primary. Wait until the stream breaks.
        if local.streaming { return }
        // No leader: the standby with the most WAL (then the lowest name) stands; the others wait.
        let members = try await etcd.list(prefix: prefix + "/members/").compactMap {
            try? JSONDecoder().decode(MemberState.self, from: Data($0.value.value.utf8))
        }
        let standbys = members.filter { $0.role == "standby" }
        guard let best = standbys.max(by: { ($0.lsn, $1.node) < ($1.lsn, $0.node) }), best.node == settings.node else { return }
        if let last = try await lastPrimaryPosition(), last > local.lsn, last - local.lsn > UInt64(settings.maximumLagBytes) {
            logger.error(
                "no leader, but this standby is too far behind to promote itself",
                metadata: ["ferry.node": "\(settings.node)", "ferry.lag_bytes": "\(last - local.lsn)"])
            return
        }
        guard try await etcd.create(leaderKey, value: settings.node, lease: lease) else { return }
        logger.notice("no leader: promoting this standby", metadata: ["ferry.node": "\(settings.node)", "ferry.lsn": "\(local.lsn)"])
        try await controller.promote()
        state.role = "primary"
        // The others follow at once: their slots must exist before they connect.
        try? await ensureSlots(session)
        state.slotsFor = lease
        try await etcd.put(prefix + "/last_primary_lsn", value: String(local.lsn))
        state.following = nil
    }

    private func waitForStreamingStandby(_ session: PostgresSession, timeout: Duration) async {
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

    /// Slots on this primary for every other member, so each can stream through its own (slots are not copied to
    /// standbys, so a promoted standby has none yet).
    private func ensureSlots(_ session: PostgresSession) async throws {
        let members = try await etcd.list(prefix: prefix + "/members/").map { String($0.key.split(separator: "/").last ?? "") }
        try await session.withConnection { connection in
            for name in members where name != settings.node && !name.isEmpty {
                try await connection.query(
                    """
                    SELECT pg_create_physical_replication_slot(\(name))
                    WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = \(name))
                    """, logger: logger)
            }
        }
    }

    private func member(_ node: String) async throws -> MemberState? {
        guard let value = try await etcd.get(prefix + "/members/" + node) else { return nil }
        return try? JSONDecoder().decode(MemberState.self, from: Data(value.value.utf8))
    }

    /// The last position a primary published (kept without a lease, so it survives the primary).
    private func lastPrimaryPosition() async throws -> UInt64? {
        try await etcd.get(prefix + "/last_primary_lsn").flatMap { UInt64($0.value) }
    }
}
