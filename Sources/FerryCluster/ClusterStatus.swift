import FerryBackup
package import FerryCore
package import FerryEtcd
import FerryPostgres
import Foundation
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

/// The primary's WAL archiver, from `pg_stat_archiver` (present when `archive_mode` is not off).
package struct ArchiveStatus: Sendable, Codable, Equatable {
    package var mode: String
    package var archivedCount: Int64
    package var lastArchivedWAL: String?
    package var lastArchivedAgeSeconds: Double?
    package var failedCount: Int64
    package var lastFailedWAL: String?
    /// A failure newer than the last success.
    package var failing: Bool
}

/// The cluster's backup repository as `ferry cluster status` shows it.
package struct BackupOverview: Sendable, Codable, Equatable {
    package var repository: String
    /// Usable backups (with a manifest), and how many of them are full.
    package var count: Int = 0
    package var fullCount: Int = 0
    package var newest: String?
    package var newestKind: String?
    package var newestAgeSeconds: Double?
    package var newestFull: String?
    /// Compressed bytes the usable backups store.
    package var storedBytes: Int64 = 0
    /// Backups without a manifest: a run going on now, or what a failed or killed run left (the next backup removes
    /// those).
    package var unfinished: [String] = []
    /// Whether a backup holds the repository's lock now (nil: not known, e.g. for S3).
    package var running: Bool?
    /// Why the repository could not be read.
    package var error: String?
}

/// The whole cluster, with warnings.
package struct ClusterStatus: Sendable, Codable, Equatable {
    package var nodes: [NodeStatus]
    package var warnings: [String]
    package var archive: ArchiveStatus?
    package var backups: BackupOverview?

    package var primaries: [NodeStatus] { nodes.filter { $0.role == "primary" } }
}

/// Reads every node's replication state over SQL.
package enum ClusterInspector {
    /// A slot holding back more than this much WAL is a warning (a standby gone for long fills the primary's disk).
    package static let retainedWarning: Int64 = 1 << 30

    /// With `etcd` and `scope`, each node's agent is reported too: `leader`, `running` (its member key is alive),
    /// or `missing`.
    ///
    /// With `backups`, the repository's newest backups are reported too, and warned about when there is none, when the
    /// newest is more than twice `every` old, or when a failed run left an unfinished one.
    package static func inspect(
        _ nodes: [(name: String, endpoint: PostgresEndpoint)], etcd: EtcdClient? = nil, scope: String? = nil,
        backups: (repository: String, every: Duration?)? = nil, logger: Logger
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
        // What the primary knows about each standby: replication state, lag, slot; and its archiver.
        var archive: ArchiveStatus?
        for primary in statuses where primary.role == "primary" {
            guard let endpoint = nodes.first(where: { $0.name == primary.name })?.endpoint else { continue }
            let replication = await replicationView(endpoint, logger: logger)
            if archive == nil { archive = replication.archive }
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
        if let archive, archive.failing {
            warnings.append(
                "the primary's archive_command is failing (\(archive.failedCount) failures, last on \(archive.lastFailedWAL ?? "?")): WAL piles up in pg_wal and point-in-time restore stops at the gap; check the command in the server's log"
            )
        }
        var overview: BackupOverview?
        if let backups {
            let found = await Self.overview(repository: backups.repository)
            warnings += Self.backupWarnings(found, every: backups.every)
            overview = found
        }
        return ClusterStatus(nodes: statuses, warnings: warnings + agentWarnings, archive: archive, backups: overview)
    }

    /// The repository's usable and unfinished backups; whether one runs now is known for a local repository only
    /// (its lock is tried and let go at once).
    package static func overview(repository location: String) async -> BackupOverview {
        let result = try? await BaseBackup.blocking { () throws(FerryError) -> BackupOverview in
            var overview = BackupOverview(repository: location)
            do {
                let repository = try BackupRepositories.open(location)
                let store = BackupStore(repository: repository)
                let manifests = try store.manifests()
                overview.count = manifests.count
                overview.fullCount = manifests.count { $0.kind == .full }
                overview.storedBytes = manifests.reduce(0) { $0 + $1.storedBytes }
                if let newest = manifests.last {
                    overview.newest = newest.id
                    overview.newestKind = newest.kind.rawValue
                    overview.newestAgeSeconds = max(0, Date().timeIntervalSince(newest.stopped))
                }
                overview.newestFull = manifests.last { $0.kind == .full }?.id
                overview.unfinished = try store.incomplete()
                if !location.hasPrefix("s3://") {
                    if let lock = try? repository.lock(for: "cluster status") {
                        lock.release()
                        overview.running = false
                    } else {
                        overview.running = true
                    }
                }
            } catch {
                overview.error = (error as? FerryError)?.message ?? "\(error)"
            }
            return overview
        }
        return result ?? BackupOverview(repository: location, error: "the repository could not be read")
    }

    /// What needs attention in the repository: none, overdue, unfinished, unreadable.
    package static func backupWarnings(_ overview: BackupOverview, every: Duration?) -> [String] {
        if let error = overview.error { return ["the backup repository \(overview.repository) cannot be read: \(error)"] }
        var warnings: [String] = []
        if overview.count == 0 {
            warnings.append("no backup in \(overview.repository) yet: take one with `ferry backup full`")
        } else if let every, let age = overview.newestAgeSeconds, age > 2 * Double(every.components.seconds) {
            warnings.append(
                "the newest backup (\(overview.newest ?? "?")) is \(Int(age)) s old, more than twice the schedule's \(DurationParser.format(every)): is `ferry run` taking them? its log says why not"
            )
        }
        if overview.running == false, !overview.unfinished.isEmpty {
            warnings.append(
                "a backup run did not finish (\(overview.unfinished.joined(separator: ", "))): it is not usable; the next backup removes it, and the log of the run says why it failed"
            )
        }
        return warnings
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
        var archive: ArchiveStatus?
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
                let archiver = try await connection.query(
                    """
                    SELECT current_setting('archive_mode'), archived_count, last_archived_wal,
                      extract(epoch FROM now() - last_archived_time)::float8, failed_count, last_failed_wal,
                      coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false)
                    FROM pg_stat_archiver
                    """, logger: logger)
                for try await (mode, archived, lastWAL, age, failed, failedWAL, failing) in archiver.decode(
                    (String, Int64, String?, Double?, Int64, String?, Bool).self)
                where mode != "off" {
                    view.archive = ArchiveStatus(
                        mode: mode, archivedCount: archived, lastArchivedWAL: lastWAL, lastArchivedAgeSeconds: age,
                        failedCount: failed, lastFailedWAL: failedWAL, failing: failing)
                }
            }
        }
        return view
    }
}
