package import FerryCore
package import FerryEtcd
import FerryPostgres
import Foundation
package import Logging
import PostgresNIO

/// What a switchover, failover or rejoin did, for the command line and the control API.
package struct OperationResult: Codable, Sendable, Equatable {
    package var operation: String
    package var from: String?
    package var to: String?
    /// From the request to its end: the new primary takes writes (switchover, failover), the node streams
    /// (rejoin).
    package var seconds: Double
    package var message: String
}

/// Switchover, failover and rejoin, as the command line and the control API ask for them: each writes a request
/// in etcd that the agents serve, then waits for the outcome and times it.
package struct ClusterOperations: Sendable {
    package let etcd: EtcdClient
    package let keys: ClusterKeys
    /// Connection settings that reach the nodes' PostgreSQL (host and port come from the members' keys).
    package let postgres: PostgresEndpoint
    package let logger: Logger

    package init(etcd: EtcdClient, scope: String, postgres: PostgresEndpoint, logger: Logger) {
        self.etcd = etcd
        self.keys = ClusterKeys(scope: scope)
        self.postgres = postgres
        self.logger = logger
    }

    /// What every running agent last published about its node.
    package func members() async throws -> [MemberState] { try await etcd.members(keys) }

    /// A planned switchover to `target` (nil: the healthiest standby); returns once the new primary takes writes.
    /// The request's lease: the operation's timeout plus 5 s, in whole seconds from 1 to a day (callers check the
    /// timeout they are given; this never overflows whatever it is given).
    static func bounded(_ timeout: Duration) -> Duration { min(max(timeout, .seconds(1)), .seconds(86_400)) }

    static func leaseSeconds(for timeout: Duration) -> Int {
        let seconds = timeout.components.seconds
        return Int(min(max(seconds, 1), 86_400)) + 5
    }

    package func switchover(to target: String?, timeout: Duration = .seconds(30)) async throws -> OperationResult {
        let timeout = Self.bounded(timeout)
        guard let leader = try await etcd.get(keys.leader)?.value else {
            throw FerryError(
                .conflict, "no node leads the cluster: there is no primary to switch over from", fix: "use `ferry cluster failover --to NODE`")
        }
        var members = try await etcd.members(keys)
        if let target {
            guard var member = members.first(where: { $0.node == target }) else {
                throw FerryError(
                    .invalidInput, "no running agent for node \(target)", fix: "use one of: \(members.map(\.node).sorted().joined(separator: ", "))")
            }
            guard target != leader else { throw FerryError(.invalidInput, "\(target) is already the primary", fix: "name a standby") }
            // A standby that is starting or has just connected is given a few seconds to report that it streams.
            let patience = ContinuousClock.now + min(timeout, .seconds(10))
            while !(member.role == .standby && member.streaming), member.role != .primary, ContinuousClock.now < patience {
                try await Task.sleep(for: .milliseconds(200))
                members = try await etcd.members(keys)
                guard let latest = members.first(where: { $0.node == target }) else { break }
                member = latest
            }
            guard member.role == .standby, member.streaming else {
                throw FerryError(
                    .conflict, "\(target) is not a standby streaming from \(leader) (role \(member.role), streaming \(member.streaming))",
                    fix: "wait until it streams (`ferry cluster status`), or name another standby")
            }
        }
        let started = ContinuousClock.now
        let lease = try await etcd.grantLease(ttl: Self.leaseSeconds(for: timeout))
        guard try await etcd.create(keys.switchover, value: etcd.encode(OperationRequest(from: leader, to: target)), lease: lease) else {
            try? await etcd.revoke(lease: lease)
            throw FerryError(.conflict, "a switchover is already in progress", fix: "wait for it to finish (`ferry cluster status`)")
        }
        do {
            let newLeader = try await waitForWritableLeader(other: leader, expected: target, request: keys.switchover, deadline: started + timeout)
            try? await etcd.revoke(lease: lease)
            let seconds = (ContinuousClock.now - started).seconds
            return OperationResult(
                operation: "switchover", from: leader, to: newLeader, seconds: seconds,
                message: "\(newLeader) is the primary; \(leader) follows it")
        } catch {
            try? await etcd.revoke(lease: lease)
            throw error
        }
    }

    /// Promotes `target` when the primary is gone (a healthy primary is refused: that is a switchover).
    package func failover(to target: String, timeout: Duration = .seconds(30)) async throws -> OperationResult {
        let timeout = Self.bounded(timeout)
        let members = try await etcd.members(keys)
        guard let member = members.first(where: { $0.node == target }) else {
            throw FerryError(
                .invalidInput, "no running agent for node \(target)", fix: "use one of: \(members.map(\.node).sorted().joined(separator: ", "))")
        }
        guard member.role == .standby else {
            throw FerryError(.invalidInput, "\(target) is not a standby (role \(member.role))", fix: "name a running standby")
        }
        let leader = try await etcd.get(keys.leader)?.value
        if let leader, let primary = members.first(where: { $0.node == leader }), await isWritable(primary) {
            throw FerryError(
                .conflict, "\(leader) is a healthy primary: a failover would lose what it has not replicated",
                fix: "use `ferry cluster switchover --to \(target)`")
        }
        let started = ContinuousClock.now
        let lease = try await etcd.grantLease(ttl: Self.leaseSeconds(for: timeout))
        try await etcd.put(keys.failover, value: etcd.encode(OperationRequest(from: leader, to: target)), lease: lease)
        do {
            let newLeader = try await waitForWritableLeader(other: nil, expected: target, request: keys.failover, deadline: started + timeout)
            try? await etcd.revoke(lease: lease)
            return OperationResult(
                operation: "failover", from: leader, to: newLeader, seconds: (ContinuousClock.now - started).seconds,
                message: "\(newLeader) is the primary")
        } catch {
            try? await etcd.revoke(lease: lease)
            throw error
        }
    }

    /// Makes `node` rewind (or, with `copy`, copy the primary again) and follow the leader; returns once it streams.
    package func rejoin(_ node: String, copy: Bool = false, timeout: Duration = .seconds(120)) async throws -> OperationResult {
        let timeout = Self.bounded(timeout)
        let members = try await etcd.members(keys)
        guard members.contains(where: { $0.node == node }) else {
            throw FerryError(
                .conflict, "no running agent for node \(node): the agent performs the rejoin", fix: "start it: `ferry agent --node \(node)`")
        }
        guard let leader = try await etcd.get(keys.leader)?.value else {
            throw FerryError(
                .conflict, "no node leads the cluster: there is nothing to rejoin", fix: "fail over first: `ferry cluster failover --to NODE`")
        }
        guard leader != node else { throw FerryError(.invalidInput, "\(node) is the primary", fix: "name a standby or a stopped node") }
        let started = ContinuousClock.now
        let lease = try await etcd.grantLease(ttl: Self.leaseSeconds(for: timeout))
        var request = OperationRequest(from: node, to: leader)
        request.state = copy ? .copy : .rewind
        try await etcd.put(keys.rejoin(node), value: etcd.encode(request), lease: lease)
        let deadline = started + timeout
        while ContinuousClock.now < deadline {
            let pending = try await etcd.get(keys.rejoin(node)) != nil
            if !pending, let member = try await etcd.decode(MemberState.self, at: keys.member(node)), member.role == .standby, member.streaming {
                try? await etcd.revoke(lease: lease)
                return OperationResult(
                    operation: "rejoin", from: node, to: leader, seconds: (ContinuousClock.now - started).seconds,
                    message: "\(node) streams from \(leader)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        try? await etcd.revoke(lease: lease)
        throw FerryError(
            .timeout, "\(node) did not rejoin within \(DurationParser.format(timeout))",
            fix: "read the agent's log on \(node) (`ferry agent --node \(node)`)"
        )
    }

    /// Waits until a node other than `other` (or `expected`, when given) holds the leader key and takes writes.
    private func waitForWritableLeader(other: String?, expected: String?, request: String, deadline: ContinuousClock.Instant) async throws -> String {
        while ContinuousClock.now < deadline {
            if let pending = try await etcd.decode(OperationRequest.self, at: request), pending.state == .refused {
                throw FerryError(
                    .conflict, "the cluster refused the request: \(pending.error ?? "no reason given")", fix: "fix what it names and ask again")
            }
            if let leader = try await etcd.get(keys.leader)?.value, leader != other, expected == nil || leader == expected,
                let member = try await etcd.decode(MemberState.self, at: keys.member(leader)), await isWritable(member)
            {
                return leader
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw FerryError(.timeout, "no new primary took writes in time", fix: "look at `ferry cluster status` and the agents' logs")
    }

    /// Whether `member`'s PostgreSQL answers as a primary.
    func isWritable(_ member: MemberState) async -> Bool {
        var endpoint = postgres
        endpoint.host = member.host
        endpoint.port = member.port
        endpoint.connectTimeout = .seconds(1)
        let session = PostgresSession(endpoint: endpoint, key: "cluster.nodes.\(member.node)", logger: logger)
        let primary = try? await session.withConnection { connection -> Bool in
            let rows = try await connection.query("SELECT NOT pg_is_in_recovery()", logger: logger)
            for try await value in rows.decode(Bool.self) { return value }
            return false
        }
        await session.close()
        return primary == true
    }
}
