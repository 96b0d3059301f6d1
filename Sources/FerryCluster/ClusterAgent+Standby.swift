import CoreMetrics
import FerryCore
import FerryPostgres
import Foundation
import Logging
import PostgresNIO

extension ClusterAgent {
    /// A standby follows the leader; without one, the standby the rules pick takes the lease and promotes: the one a
    /// switchover or failover names, else (in synchronous mode only among the synchronous standbys) the one with
    /// the most WAL.
    func standbyTick(_ local: MemberState, _ state: inout State, session: PostgresSession) async throws {
        let lease = try await ensureLease(&state)
        state.fencedWithoutEtcd = false
        var published = local
        if let leader = state.following, let primary = try? await member(leader), primary.role == "primary" {
            published.lagBytes = max(0, Int64(primary.lsn) - Int64(local.lsn) + (local.lagBytes ?? 0))
        }
        try await publish(published, lease: lease)
        if let request = try await etcd.decode(OperationRequest.self, at: keys.rejoin(me)) {
            try await rejoinRunning(copy: request.state == "copy", &state)
            _ = try await etcd.delete(keys.rejoin(me))
            return
        }
        if let leader = try await etcd.get(keys.leader) {
            if leader.value == me {
                // This standby took the key but its promotion did not finish (an error, a restart): finish it.
                try await controller.promote()
                return
            }
            guard let primary = try await member(leader.value), primary.role == "primary" else { return }
            if state.following != leader.value {
                try await controller.follow(host: primary.host, port: primary.port, slot: me)
                state.following = leader.value
                state.notStreamingSince = nil
                logger.notice("following the leader", metadata: metadata.merging(["ferry.leader": "\(leader.value)"]) { $1 })
                return
            }
            // A standby that cannot stream from a live leader for long has diverged (it had WAL the new primary
            // never got) or lost the WAL it needs: rewind, or copy, and follow again.
            if local.streaming {
                state.notStreamingSince = nil
            } else if let since = state.notStreamingSince {
                if ContinuousClock.now - since > .seconds(max(10, settings.ttl * 3)) {
                    logger.warning("this standby has not streamed from the leader for long; rejoining", metadata: metadata)
                    state.notStreamingSince = nil
                    try await rejoinRunning(copy: state.mustRejoin, &state)
                    state.mustRejoin = true  // a second time, copy
                }
            } else {
                state.notStreamingSince = .now
            }
            return
        }
        // No leader key, but this standby still streams from a live primary (its agent may be starting, or gone
        // while its server runs): promoting now would make a second primary. Wait until the stream breaks.
        if local.streaming { return }
        let members = try await etcd.members(keys)
        if let switchover = try await etcd.decode(OperationRequest.self, at: keys.switchover), switchover.state == "demoting" {
            if switchover.to == me { try await promote(local, lease: lease, &state, session: session, event: "switchover", from: switchover.from) }
            return
        }
        if let failover = try await etcd.decode(OperationRequest.self, at: keys.failover), let target = failover.to {
            if target == me { try await promote(local, lease: lease, &state, session: session, event: "manual_failover", from: nil) }
            return
        }
        guard try await isElected(local, members: members) else { return }
        try await promote(
            local, lease: lease, &state, session: session, event: "failover",
            from: try await etcd.decode(LastPrimary.self, at: keys.lastPrimary)?.node)
    }

    /// Whether this standby should lead: in synchronous mode it must be a synchronous standby and hear from enough
    /// of them to know it has every acknowledged commit; otherwise it must have the most WAL of the standbys and
    /// be within `maximumLagBytes` of the last primary.
    func isElected(_ local: MemberState, members: [MemberState]) async throws -> Bool {
        let standbys = members.filter { $0.role == "standby" }
        if let sync = try await etcd.decode(SyncState.self, at: keys.sync), !sync.members.isEmpty {
            guard sync.members.contains(me) else { return false }
            let live = standbys.filter { sync.members.contains($0.node) }
            let needed = sync.members.count - sync.quorum + 1
            guard live.count >= needed else {
                logger.error(
                    "no leader, but too few synchronous standbys answer to know which has every acknowledged commit",
                    metadata: metadata.merging(["ferry.answering": "\(live.map(\.node))", "ferry.needed": "\(needed)"]) { $1 })
                return false
            }
            return live.max(by: { ($0.lsn, $1.node) < ($1.lsn, $0.node) })?.node == me
        }
        guard standbys.max(by: { ($0.lsn, $1.node) < ($1.lsn, $0.node) })?.node == me else { return false }
        if let last = try await etcd.decode(LastPrimary.self, at: keys.lastPrimary), last.lsn > local.lsn,
            last.lsn - local.lsn > UInt64(settings.maximumLagBytes)
        {
            logger.error(
                "no leader, but this standby is too far behind to promote itself",
                metadata: metadata.merging(["ferry.lag_bytes": "\(last.lsn - local.lsn)"]) { $1 })
            return false
        }
        return true
    }

    func promote(_ local: MemberState, lease: Int64, _ state: inout State, session: PostgresSession, event: String, from: String?) async throws {
        guard try await etcd.create(keys.leader, value: me, lease: lease) else { return }
        logger.notice("promoting this standby", metadata: metadata.merging(["ferry.reason": "\(event)", "ferry.lsn": "\(local.lsn)"]) { $1 })
        var promoting = local
        promoting.state = "promoting"
        try? await publish(promoting, lease: lease)
        try await controller.promote()
        state.role = "primary"
        state.following = nil
        state.synchronousNames = nil
        // pg_rewind reads the new timeline from the control file, which a promotion updates only at its next
        // checkpoint: an old primary coming back could otherwise not be rewound.
        _ = try? await session.withConnection { connection in try await connection.query("CHECKPOINT", logger: logger) }
        // The others follow at once: their slots must exist before they connect; synchronous replication is set
        // before the first commits are acknowledged.
        try? await ensureSlots(session, lease: lease, &state)
        try? await manageSynchronous(session, &state)
        for key in [keys.switchover, keys.failover] { _ = try? await etcd.delete(key) }
        if let current = await localState(session) {
            try? await etcd.put(keys.lastPrimary, value: etcd.encode(LastPrimary(node: me, lsn: current.lsn, timeline: current.timeline)))
            await record(HistoryEvent(event: event, from: from, to: me, timeline: current.timeline, lsn: current.lsn))
        }
        if event == "switchover" { metrics.switchovers.increment() } else { metrics.failovers.increment() }
    }

    /// Stops the running standby and rejoins it (rewind, or copy) to the current leader.
    func rejoinRunning(copy: Bool, _ state: inout State) async throws {
        guard let leader = try await etcd.get(keys.leader), leader.value != me, let primary = try await member(leader.value),
            primary.role == "primary"
        else { return }
        await controller.shutdown()
        try await rejoin(primary, copy: copy, &state)
        try await controller.start()
    }

    /// Brings the stopped server in line with `primary` and configures it to follow: `pg_rewind`, or a fresh copy
    /// when asked to or when the rewind fails.
    func rejoin(_ primary: MemberState, copy: Bool, _ state: inout State) async throws {
        if let lease = state.lease {
            var rejoining = MemberState(node: me, host: settings.host, port: settings.port, role: "stopped", lsn: 0, timeline: 0)
            rejoining.state = "rejoining"
            try? await publish(rejoining, lease: lease)
        }
        let clock = ContinuousClock()
        let started = clock.now
        var how = "pg_rewind"
        if copy {
            how = "pg_basebackup"
            try await controller.copy(host: primary.host, port: primary.port, slot: me)
        } else {
            do {
                // The rewind takes the primary's timeline from its control file: a checkpoint makes it current.
                let remote = session(to: primary)
                _ = try? await remote.withConnection { connection in try await connection.query("CHECKPOINT", logger: logger) }
                await remote.close()
                let said = try await controller.rewind(host: primary.host, port: primary.port)
                if said.contains("no rewind required") { how = "nothing to rewind" }
            } catch {
                logger.warning("pg_rewind failed; copying the primary instead", metadata: metadata.merging(["ferry.error": "\(error)"]) { $1 })
                how = "pg_basebackup"
                try await controller.copy(host: primary.host, port: primary.port, slot: me)
            }
        }
        try controller.configureStandby(host: primary.host, port: primary.port, slot: me)
        state.following = primary.node
        state.mustRejoin = false
        state.notStreamingSince = nil
        metrics.rejoins.increment()
        let took = clock.now - started
        logger.notice(
            "rejoined the cluster",
            metadata: metadata.merging(["ferry.leader": "\(primary.node)", "ferry.how": "\(how)", "ferry.took": "\(took)"]) { $1 })
        await record(HistoryEvent(event: "rejoin", from: me, to: primary.node, detail: "\(how) in \(took)"))
    }

    /// PostgreSQL is down. With a leader elsewhere, rewind when the data may have diverged and start as its
    /// standby. Holding the leader key, start it again in place (or let the key go if it does not start). Without a
    /// leader, a standby
    /// starts (and takes part in the election); an old primary leads again only if no newer primary led since.
    func stoppedTick(_ state: inout State) async throws {
        let lease = try await ensureLease(&state)
        state.fencedWithoutEtcd = false
        let control = await controller.controlData()
        var stopped = MemberState(
            node: me, host: settings.host, port: settings.port, role: "stopped", lsn: control?.checkpoint ?? 0, timeline: control?.timeline ?? 0)
        stopped.state = "starting"
        try await publish(stopped, lease: lease)
        let rejoinRequest = try await etcd.decode(OperationRequest.self, at: keys.rejoin(me))
        if let leader = try await etcd.get(keys.leader) {
            if leader.value == me {
                // The server stopped under a running agent that still leads (a crash, an OOM kill): starting it again
                // in place loses nothing, where a failover could lose what the standbys had not received yet. Only
                // when it does not start does a standby take over.
                do {
                    logger.warning("this primary stopped while leading; starting it again", metadata: metadata)
                    try await controller.start()
                } catch {
                    logger.error(
                        "this primary does not start; releasing the leader key to a standby",
                        metadata: metadata.merging(["ferry.error": "\(error)"]) { $1 })
                    _ = try await etcd.delete(keys.leader, ifValue: me)
                    state.mustRejoin = true
                }
                return
            }
            guard let primary = try await member(leader.value), primary.role == "primary" else { return }
            if state.mustRejoin || !controller.startsAsStandby || rejoinRequest != nil || state.failedStarts > 0 {
                // After a start that failed, copy: the data cannot follow this primary as it is. An empty data
                // directory (a new node of a defined cluster) is copied at once.
                try await rejoin(primary, copy: rejoinRequest?.state == "copy" || state.failedStarts > 1 || control == nil, &state)
                if rejoinRequest != nil { _ = try await etcd.delete(keys.rejoin(me)) }
            } else {
                try controller.configureStandby(host: primary.host, port: primary.port, slot: me)
                state.following = primary.node
            }
            do {
                try await controller.start()
                state.failedStarts = 0
            } catch {
                state.failedStarts += 1
                throw error
            }
            return
        }
        if controller.startsAsStandby, !state.mustRejoin {
            try await controller.start()
            return
        }
        guard let control else { return }
        if let last = try await etcd.decode(LastPrimary.self, at: keys.lastPrimary), last.node != me, last.timeline >= control.timeline {
            logger.warning(
                "this node's data is older than the last primary's; waiting for a leader to rejoin",
                metadata: metadata.merging(["ferry.last_primary": "\(last.node)", "ferry.timeline": "\(control.timeline)"]) { $1 })
            return
        }
        guard try await etcd.create(keys.leader, value: me, lease: lease) else { return }
        logger.notice("no leader: starting this node's primary again", metadata: metadata)
        state.mustRejoin = false
        try await controller.start()
    }
}
