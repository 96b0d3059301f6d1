package import FerryCore
package import FerryEtcd
import FerryPostgres
package import Logging
import PostgresNIO

/// One node as `ferry cluster status` shows it.
package struct NodeStatus: Sendable, Codable, Equatable {
    package var name: String
    package var address: String
    /// `primary`, `standby`, or `down` when the node does not answer.
    package var role: String
    package var timeline: Int?
    /// Primary: where its WAL ends. Standby: what it has received and replayed.
    package var currentLSN: String?
    package var receivedLSN: String?
    package var replayedLSN: String?
    /// Standby, as the primary sees it: bytes not yet replayed, seconds of replay lag, replication state and sync state.
    package var lagBytes: Int64?
    package var lagSeconds: Double?
    package var state: String?
    package var syncState: String?
    /// The standby's slot on the primary: whether a walsender uses it, and how much WAL it holds back.
    package var slotActive: Bool?
    package var slotRetainedBytes: Int64?
    /// Ferry's agent on the node (`none` until agents run).
    package var agent: String
    package var error: String?
}

/// The whole cluster, with warnings.
package struct ClusterStatus: Sendable, Codable, Equatable {
    package var nodes: [NodeStatus]
    package var warnings: [String]

    package var primaries: [NodeStatus] { nodes.filter { $0.role == "primary" } }
}

/// Reads every node's replication state over SQL.
package enum ClusterInspector {
    /// A slot holding back more than this much WAL is a warning (a standby gone for long fills the primary's disk).
    package static let retainedWarning: Int64 = 1 << 30

    /// With `etcd` and `scope`, each node's agent is reported too: `leader`, `running` (its member key is alive),
    /// or `missing`.
    package static func inspect(
        _ nodes: [(name: String, endpoint: PostgresEndpoint)], etcd: EtcdClient? = nil, scope: String? = nil, logger: Logger
    ) async -> ClusterStatus {
        var statuses: [NodeStatus] = []
        for (name, endpoint) in nodes {
            statuses.append(await inspectNode(name, endpoint: endpoint, logger: logger))
        }
        var agentWarnings: [String] = []
        if let etcd, let scope {
            do {
                let members = Set(
                    try await etcd.list(prefix: "/ferry/\(scope)/members/").compactMap { $0.key.split(separator: "/").last.map(String.init) })
                let leader = try await etcd.get("/ferry/\(scope)/leader")?.value
                for index in statuses.indices {
                    let name = statuses[index].name
                    statuses[index].agent = leader == name ? "leader" : members.contains(name) ? "running" : "missing"
                    if statuses[index].agent == "missing" { agentWarnings.append("the agent of \(name) is not running (no member key in etcd)") }
                }
                if leader == nil { agentWarnings.append("no node holds the leader key") }
            } catch {
                for index in statuses.indices { statuses[index].agent = "unknown" }
                agentWarnings.append("etcd does not answer: \(error)")
            }
        }
        // What the primary knows about each standby: replication state, lag, slot.
        for primary in statuses where primary.role == "primary" {
            guard let endpoint = nodes.first(where: { $0.name == primary.name })?.endpoint else { continue }
            let replication = await replicationView(endpoint, logger: logger)
            for index in statuses.indices where statuses[index].role == "standby" {
                let name = statuses[index].name
                if let row = replication.senders[name] {
                    statuses[index].state = row.state
                    statuses[index].syncState = row.syncState
                    statuses[index].lagBytes = row.lagBytes
                    statuses[index].lagSeconds = row.lagSeconds
                }
                if let slot = replication.slots[name] {
                    statuses[index].slotActive = slot.active
                    statuses[index].slotRetainedBytes = slot.retained
                }
            }
        }
        var warnings: [String] = []
        let primaries = statuses.filter { $0.role == "primary" }
        if primaries.isEmpty { warnings.append("no primary answers: the cluster takes no writes") }
        if primaries.count > 1 {
            warnings.append(
                "\(primaries.count) nodes are primaries (\(primaries.map(\.name).joined(separator: ", "))): split brain, writes may diverge")
        }
        for node in statuses {
            if node.role == "down" { warnings.append("\(node.name) (\(node.address)) does not answer: \(node.error ?? "unreachable")") }
            if node.role == "standby", node.state != "streaming" {
                warnings.append("\(node.name) is not streaming from the primary (state: \(node.state ?? "not connected"))")
            }
            if let retained = node.slotRetainedBytes, retained > retainedWarning {
                warnings.append(
                    "slot \(node.name) holds back \(retained / (1 << 20)) MB of WAL on the primary; bring \(node.name) back or drop its slot")
            }
        }
        return ClusterStatus(nodes: statuses, warnings: warnings + agentWarnings)
    }

    static func inspectNode(_ name: String, endpoint: PostgresEndpoint, logger: Logger) async -> NodeStatus {
        var status = NodeStatus(name: name, address: "\(endpoint.host):\(endpoint.port)", role: "down", agent: "none")
        var quick = endpoint
        quick.connectTimeout = .seconds(2)
        do {
            try await PostgresSession.using(quick, key: "nodes.\(name)", logger: logger) { session in
                try await session.withConnection { connection in
                    let rows = try await connection.query(
                        """
                        SELECT pg_is_in_recovery(),
                          CASE WHEN pg_is_in_recovery() THEN (SELECT received_tli FROM pg_stat_wal_receiver)
                            ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END,
                          CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END,
                          pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text
                        """, logger: logger)
                    for try await (recovery, timeline, current, received, replayed) in rows.decode((Bool, Int32?, String?, String?, String?).self) {
                        status.role = recovery ? "standby" : "primary"
                        status.timeline = timeline.map(Int.init)
                        status.currentLSN = current
                        status.receivedLSN = received
                        status.replayedLSN = replayed
                    }
                }
            }
        } catch {
            status.error = PostgresDiagnosis.reason(error)
        }
        return status
    }

    struct ReplicationView {
        var senders: [String: (state: String, syncState: String, lagBytes: Int64?, lagSeconds: Double?)] = [:]
        var slots: [String: (active: Bool, retained: Int64?)] = [:]
    }

    static func replicationView(_ endpoint: PostgresEndpoint, logger: Logger) async -> ReplicationView {
        var view = ReplicationView()
        _ = try? await PostgresSession.using(endpoint, key: "postgres", logger: logger) { session in
            try await session.withConnection { connection in
                let senders = try await connection.query(
                    """
                    SELECT application_name, state, sync_state, pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::int8,
                      extract(epoch FROM replay_lag)::float8
                    FROM pg_stat_replication
                    """, logger: logger)
                for try await (name, state, sync, bytes, seconds) in senders.decode((String, String, String, Int64?, Double?).self) {
                    view.senders[name] = (state, sync, bytes, seconds ?? 0)
                }
                let slots = try await connection.query(
                    """
                    SELECT slot_name::text, active, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::int8
                    FROM pg_replication_slots WHERE slot_type = 'physical'
                    """, logger: logger)
                for try await (name, active, retained) in slots.decode((String, Bool, Int64?).self) {
                    view.slots[name] = (active, retained)
                }
            }
        }
        return view
    }
}
