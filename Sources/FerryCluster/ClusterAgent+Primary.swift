import CoreMetrics
import FerryCore
import FerryEtcd
import FerryPostgres
import Foundation
import Logging
import PostgresNIO

extension ClusterAgent {
    /// A primary keeps its leadership by renewing its lease; if it cannot, or someone else leads, it fences. While
    /// it leads it keeps a slot for every member, sets synchronous replication, and serves a switchover.
    func primaryTick(_ local: MemberState, _ state: inout State, session: PostgresSession, watchdog: WatchdogHandle?) async throws {
        state.following = nil
        state.notStreamingSince = nil
        let lease: Int64
        do {
            lease = try await ensureLease(&state)
            try await publish(local, lease: lease)
            switch AgentRules.leadership(me, leader: try await etcd.get(keys.leader), lease: lease) {
            case .lead:
                break
            case .moveKeyToLease:
                _ = try await etcd.replace(keys.leader, expected: me, with: me, lease: lease)
            case .takeKey:
                guard try await etcd.create(keys.leader, value: me, lease: lease) else {
                    logger.error("another node took the leader key first; fencing this primary", metadata: metadata)
                    watchdog?.disarm()
                    await fence(&state, mustRejoin: true)
                    return
                }
                logger.notice("leading the cluster", metadata: metadata)
            case .fence(let leader):
                logger.error("another node leads; fencing this primary", metadata: metadata.merging(["ferry.leader": "\(leader)"]) { $1 })
                watchdog?.disarm()
                await fence(&state, mustRejoin: true)
                return
            }
            if let renewed = state.leaseRenewed { watchdog?.arm(for: renewed + AgentRules.fencingDeadline(ttl: settings.ttl) - .now) }
            try await etcd.put(keys.lastPrimary, value: etcd.encode(LastPrimary(node: me, lsn: local.lsn, timeline: local.timeline)))
        } catch {
            // etcd unreachable: fence before the lease can expire, unless told to keep serving.
            let sinceRenewal = ContinuousClock.now - (state.leaseRenewed ?? .now)
            if AgentRules.mustFenceWithoutEtcd(sinceRenewal: sinceRenewal, ttl: settings.ttl, keepServing: settings.keepServingWithoutEtcd) {
                logger.error(
                    "cannot renew leadership in etcd; fencing this primary before the lease expires",
                    metadata: metadata.merging(["ferry.error": "\(error)"]) { $1 })
                watchdog?.disarm()
                await fence(&state, mustRejoin: false)
                state.fencedWithoutEtcd = true
            }
            throw error
        }
        try await ensureSlots(session, lease: lease, &state)
        try await manageSynchronous(session, &state)
        if let request = try await etcd.get(keys.switchover),
            var switchover = try? JSONDecoder.cluster.decode(OperationRequest.self, from: Data(request.value.utf8)),
            switchover.state == .requested, switchover.from == nil || switchover.from == me
        {
            switchover.from = me
            try await serveSwitchover(switchover, lease: request.lease, local, &state, session: session, watchdog: watchdog)
        }
    }

    func fence(_ state: inout State, mustRejoin: Bool) async {
        await controller.fence()
        state.lease = nil
        state.role = nil
        state.synchronousNames = nil
        state.mustRejoin = state.mustRejoin || mustRejoin
    }

    /// Slots on this primary for every other member, so each can stream through its own (slots are not copied to
    /// standbys, so a promoted standby has none yet). Reserved at once: a rewound old primary starts from before
    /// the promotion. Checked again whenever the members change.
    func ensureSlots(_ session: PostgresSession, lease: Int64, _ state: inout State) async throws {
        let names = Set(try await etcd.list(prefix: keys.members).map { String($0.key.dropFirst(keys.members.count)) }).subtracting([me, ""])
        if let done = state.slotsFor, done.lease == lease, done.members.isSuperset(of: names) { return }
        try await session.withConnection { connection in
            for name in names.sorted() {
                try await connection.query(
                    """
                    SELECT pg_create_physical_replication_slot(\(name), true)
                    WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = \(name))
                    """, logger: logger)
            }
        }
        state.slotsFor = (lease, names)
    }

    /// Synchronous replication: every standby streaming from this primary is named, and a commit waits for
    /// `synchronousCount` of them. The `sync` key in etcd names a standby before the server waits on it and after it
    /// stops waiting on it, so it always covers every standby that may hold an acknowledged commit.
    func manageSynchronous(_ session: PostgresSession, _ state: inout State) async throws {
        guard settings.synchronousCount > 0 else {
            if state.synchronousNames != "" {
                try await setSynchronousNames("", session)
                try await etcd.delete(keys.sync)
                state.synchronousNames = ""
            }
            return
        }
        let streaming = try await session.withConnection { connection -> [String] in
            let rows = try await connection.query(
                "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming' ORDER BY 1", logger: logger)
            var names: [String] = []
            for try await name in rows.decode(String.self) { names.append(name) }
            return names
        }
        let known = Set(try await etcd.list(prefix: keys.members).map { String($0.key.dropFirst(keys.members.count)) })
        var members = streaming.filter { known.contains($0) && $0 != me }
        var names: String
        if members.isEmpty {
            guard settings.synchronousStrict else {
                // Nobody to wait for: commit asynchronously until a standby streams again.
                if state.synchronousNames != "" {
                    try await setSynchronousNames("", session)
                    try await etcd.put(keys.sync, value: etcd.encode(SyncState(leader: me, quorum: 0, members: [])))
                    state.synchronousNames = ""
                    logger.warning("synchronous replication: no standby streams; committing asynchronously meanwhile", metadata: metadata)
                }
                return
            }
            // Strict: commits wait until any standby streams again.
            members = known.subtracting([me]).sorted()
            names = "ANY \(settings.synchronousCount) (*)"
        } else {
            names = "ANY \(min(settings.synchronousCount, members.count)) (" + members.map(SQLIdentifier.quote).joined(separator: ", ") + ")"
        }
        guard names != state.synchronousNames else { return }
        let quorum = min(settings.synchronousCount, members.count)
        let previous = try await etcd.decode(SyncState.self, at: keys.sync)
        let covering = Array(Set(members).union(previous?.leader == me ? previous?.members ?? [] : [])).sorted()
        try await etcd.put(keys.sync, value: etcd.encode(SyncState(leader: me, quorum: min(quorum, covering.count), members: covering)))
        try await setSynchronousNames(names, session)
        try await etcd.put(keys.sync, value: etcd.encode(SyncState(leader: me, quorum: quorum, members: members)))
        state.synchronousNames = names
        logger.notice("synchronous replication set", metadata: metadata.merging(["ferry.synchronous_standby_names": "\(names)"]) { $1 })
    }

    func setSynchronousNames(_ names: String, _ session: PostgresSession) async throws {
        try await session.withConnection { connection in
            // ALTER SYSTEM takes no parameters; the value is a quoted literal of names Ferry checked.
            try await connection.query(
                PostgresQuery(unsafeSQL: "ALTER SYSTEM SET synchronous_standby_names = \(SQLIdentifier.literal(names))"), logger: logger)
            try await connection.query("SELECT pg_reload_conf()", logger: logger)
        }
    }

    /// A planned switchover: stop this primary cleanly (every WAL record reaches the connected standbys), make sure
    /// the chosen standby received all of it, release the leader key to it, and come back as its standby. Nothing
    /// is written after the stop begins, and the standby promotes only after the stop ended: there is never a
    /// moment with two writable primaries.
    func serveSwitchover(
        _ request: OperationRequest, lease requestLease: Int64, _ local: MemberState, _ state: inout State, session: PostgresSession,
        watchdog: WatchdogHandle?
    ) async throws {
        var request = request
        func refuse(_ reason: String) async throws {
            request.state = .refused
            request.error = reason
            try await etcd.put(keys.switchover, value: etcd.encode(request), lease: requestLease > 0 ? requestLease : nil)
            logger.error("switchover refused", metadata: metadata.merging(["ferry.reason": "\(reason)"]) { $1 })
        }
        let members = try await etcd.members(keys)
        let sync = settings.synchronousCount > 0 ? try await etcd.decode(SyncState.self, at: keys.sync) : nil
        let candidate: MemberState
        switch AgentRules.switchoverCandidate(request, me: me, members: members, sync: sync, synchronous: settings.synchronousCount > 0) {
        case .success(let chosen): candidate = chosen
        case .failure(let refusal): return try await refuse(refusal.reason)
        }
        request.to = candidate.node
        request.state = .demoting
        try await etcd.put(keys.switchover, value: etcd.encode(request), lease: requestLease > 0 ? requestLease : nil)
        logger.notice("switchover: stopping this primary", metadata: metadata.merging(["ferry.to": "\(candidate.node)"]) { $1 })
        var demoting = local
        demoting.state = .demoting
        if let lease = state.lease { try? await publish(demoting, lease: lease) }
        watchdog?.disarm()
        await controller.shutdown()
        guard let control = await controller.controlData(), await received(beyond: control.checkpoint, by: candidate, timeout: .seconds(5)) else {
            // The standby does not have every record: stay the primary (the leader key is still ours).
            try await controller.start()
            return try await refuse("\(candidate.node) did not receive this primary's last WAL in time; \(me) stays the primary")
        }
        _ = try await etcd.delete(keys.leader, ifValue: me)
        try controller.configureStandby(host: candidate.host, port: candidate.port, slot: me)
        state.following = candidate.node
        state.role = .standby
        state.slotsFor = nil
        state.synchronousNames = nil
        metrics.switchovers.increment()
        await record(HistoryEvent(event: .switchover, from: me, to: candidate.node, timeline: control.timeline, lsn: control.checkpoint))
        try await controller.start()
        logger.notice("switchover: this node now follows the new primary", metadata: metadata.merging(["ferry.leader": "\(candidate.node)"]) { $1 })
    }

    /// Whether `member` received WAL past `position` (the stopped primary's shutdown checkpoint) within `timeout`.
    func received(beyond position: UInt64, by member: MemberState, timeout: Duration) async -> Bool {
        let remote = session(to: member)
        let deadline = ContinuousClock.now + timeout
        var done = false
        while !done, ContinuousClock.now < deadline {
            let lsn = try? await remote.withConnection { connection -> Int64? in
                let rows = try await connection.query("SELECT (pg_last_wal_receive_lsn() - '0/0'::pg_lsn)::int8", logger: logger)
                for try await value in rows.decode(Int64?.self) { return value }
                return nil
            }
            if let lsn = lsn ?? nil, lsn > 0, UInt64(lsn) > position {
                done = true
            } else {
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        await remote.close()
        return done
    }
}
