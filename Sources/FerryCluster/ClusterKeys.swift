import FerryEtcd
package import Foundation

/// The keys of one cluster in etcd, under `/ferry/<scope>/`, and what they hold.
///
/// - `leader`: the leading node's name, attached to its agent's lease (it disappears when the agent stops renewing).
/// - `members/<node>`: each agent's ``MemberState``, under its lease.
/// - `last_primary`: the last leader's ``LastPrimary`` (no lease: it outlives the leader, for the election).
/// - `sync`: the leader's ``SyncState`` in synchronous mode (no lease).
/// - `switchover`, `failover`: an operator's ``OperationRequest`` (a short lease: an unserved request lapses).
/// - `rejoin/<node>`: an operator's request that `node` rejoin (rewind or copy, then follow).
/// - `history/<time>`: one ``HistoryEvent`` per failover, switchover and rejoin.
package struct ClusterKeys: Sendable {
    package let scope: String

    package init(scope: String) { self.scope = scope }

    package var prefix: String { "/ferry/\(scope)/" }
    package var leader: String { prefix + "leader" }
    package var members: String { prefix + "members/" }
    package func member(_ node: String) -> String { members + node }
    package var lastPrimary: String { prefix + "last_primary" }
    package var sync: String { prefix + "sync" }
    package var switchover: String { prefix + "switchover" }
    package var failover: String { prefix + "failover" }
    package var rejoins: String { prefix + "rejoin/" }
    package func rejoin(_ node: String) -> String { rejoins + node }
    package var history: String { prefix + "history/" }
}

/// A node's role as its agent sees it.
package enum NodeRole: String, Codable, Sendable {
    case primary, standby
    /// PostgreSQL does not answer; the agent runs.
    case stopped
}

/// What an agent is doing with its node.
package enum MemberActivity: String, Codable, Sendable {
    case running, starting, rejoining, demoting, promoting
}

/// What an agent publishes about its node (`members/<node>`).
package struct MemberState: Codable, Sendable, Equatable {
    package var node: String
    package var host: String
    package var port: Int
    package var role: NodeRole
    /// Primary: where its WAL ends. Standby: the furthest of what it received and replayed.
    package var lsn: UInt64
    package var timeline: Int
    /// A standby whose WAL receiver streams from a primary right now (that primary is alive).
    package var streaming: Bool = false
    /// Standby: bytes received but not replayed yet, and seconds since the last replayed transaction while behind.
    package var lagBytes: Int64?
    package var lagSeconds: Double?
    /// What the agent is doing.
    package var state: MemberActivity = .running

    package init(node: String, host: String, port: Int, role: NodeRole, lsn: UInt64, timeline: Int) {
        self.node = node
        self.host = host
        self.port = port
        self.role = role
        self.lsn = lsn
        self.timeline = timeline
    }
}

/// The last leader and its position, kept after it is gone.
package struct LastPrimary: Codable, Sendable, Equatable {
    package var node: String
    package var lsn: UInt64
    package var timeline: Int
}

/// Synchronous replication as the leader set it: a commit waits for `quorum` of `members`
/// (`synchronous_standby_names = 'ANY quorum (members)'`). Written before a member is added and after one is
/// removed, so it always names every standby that may hold an acknowledged commit.
package struct SyncState: Codable, Sendable, Equatable {
    package var leader: String
    package var quorum: Int
    package var members: [String]
}

/// Where an operator's request stands.
package enum OperationState: String, Codable, Sendable {
    /// Asked for, not served yet.
    case requested
    /// A switchover whose leader stopped its primary for `to` (only `to` may promote now).
    case demoting
    /// An agent refused it; `error` says why.
    case refused
    /// A rejoin request: rewind (`rewind`) or copy (`copy`) the node.
    case rewind, copy
}

/// A switchover, failover or rejoin an operator asked for.
package struct OperationRequest: Codable, Sendable, Equatable {
    /// Switchover: the leader to move away from.
    package var from: String?
    /// The node to promote; nil: the healthiest standby.
    package var to: String?
    /// A leader serving a switchover sets `demoting` and fills in `to`.
    package var state: OperationState = .requested
    /// Why the request was not served, set by the agent that refused it.
    package var error: String?
    package var requestedAt: Date = Date()

    package init(from: String? = nil, to: String? = nil) {
        self.from = from
        self.to = to
    }
}

/// One event of the cluster's history.
package struct HistoryEvent: Codable, Sendable, Equatable {
    package enum Kind: String, Codable, Sendable {
        /// Automatic: the leader was gone and the rules elected this node.
        case failover
        case manualFailover = "manual_failover"
        case switchover, rejoin
    }

    package var event: Kind
    package var from: String?
    package var to: String?
    package var timeline: Int?
    package var lsn: UInt64?
    package var detail: String?
    package var at: Date = Date()
}

extension JSONDecoder {
    static let cluster: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()
}

extension JSONEncoder {
    static let cluster: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()
}

extension EtcdClient {
    func decode<T: Decodable>(_ type: T.Type, at key: String) async throws -> T? {
        guard let value = try await get(key) else { return nil }
        return try? JSONDecoder.cluster.decode(T.self, from: Data(value.value.utf8))
    }

    func encode<T: Encodable>(_ value: T) -> String {
        (try? JSONEncoder.cluster.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    func members(_ keys: ClusterKeys) async throws -> [MemberState] {
        try await list(prefix: keys.members).compactMap { try? JSONDecoder.cluster.decode(MemberState.self, from: Data($0.value.value.utf8)) }
    }
}
