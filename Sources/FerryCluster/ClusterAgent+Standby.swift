import CoreMetrics
import FerryBackup
import FerryCore
import FerryEtcd
import FerryPostgres
import Foundation
import Logging
import PostgresNIO

extension ClusterAgent {
    /// A standby follows the leader; without one, the standby the rules pick takes the lease and promotes (see
    /// ``AgentRules/standby(_:)``).
    func standbyTick(_ local: MemberState, _ state: inout State, session: PostgresSession) async throws {
        let lease = try await ensureLease(&state)
        state.fencedWithoutEtcd = false
        let cluster = try await clusterView()
        var published = local
        if let leader = state.following, let primary = cluster.members.first(where: { $0.node == leader }), primary.role == .primary {
            published.lagBytes = AgentRules.lagBytes(primaryLSN: primary.lsn, localLSN: local.lsn, replayLag: local.lagBytes)
        }
        try await publish(published, lease: lease)
        let step = AgentRules.StandbyStep(
            me: me, local: local, cluster: cluster, following: state.following, notStreamingFor: state.notStreamingSince.map { .now - $0 },
            divergedAfter: .seconds(max(10, settings.ttl * 3)), mustRejoin: state.mustRejoin, maximumLagBytes: settings.maximumLagBytes)
        switch AgentRules.standby(step) {
        case .rejoin(let copy):
            try await rejoinRunning(copy: copy, &state)
            _ = try await etcd.delete(keys.rejoin(me))
        case .finishPromotion:
            try await controller.promote()
        case .follow(let leader):
            guard let primary = cluster.leaderMember else { return }
            try await controller.follow(host: primary.host, port: primary.port, slot: me)
            state.following = leader
            state.notStreamingSince = nil
            logger.notice("following the leader", metadata: metadata.merging(["ferry.leader": "\(leader)"]) { $1 })
        case .streaming:
            state.notStreamingSince = nil
        case .awaitingStream:
            if state.notStreamingSince == nil { state.notStreamingSince = .now }
        case .rejoinDiverged(let copy):
            // It had WAL the new primary never got, or lost the WAL it needs: rewind, or copy, and follow again.
            logger.warning("this standby has not streamed from the leader for long; rejoining", metadata: metadata)
            state.notStreamingSince = nil
            try await rejoinRunning(copy: copy, &state)
            state.mustRejoin = true  // a second time, copy
        case .promote(let event, let from):
            try await promote(local, lease: lease, &state, session: session, event: event, from: from)
        case .wait(.tooFewSynchronous(let answering, let needed)):
            logger.error(
                "no leader, but too few synchronous standbys answer to know which has every acknowledged commit",
                metadata: metadata.merging(["ferry.answering": "\(answering)", "ferry.needed": "\(needed)"]) { $1 })
        case .wait(.tooFarBehind(let lagBytes)):
            logger.error(
                "no leader, but this standby is too far behind to promote itself",
                metadata: metadata.merging(["ferry.lag_bytes": "\(lagBytes)"]) { $1 })
        case .wait:
            return
        }
    }

    /// etcd's view for this step: the cluster's keys in two range reads (the history, which only grows, left out).
    func clusterView() async throws -> AgentRules.ClusterView {
        let history = keys.history
        let entries =
            try await etcd.list(from: keys.prefix, to: history)
            + etcd.list(from: EtcdClient.prefixEnd(history), to: EtcdClient.prefixEnd(keys.prefix))
        var view = AgentRules.ClusterView()
        func decode<T: Decodable>(_ type: T.Type, _ value: EtcdValue) -> T? { try? JSONDecoder.cluster.decode(T.self, from: Data(value.value.utf8)) }
        for (key, value) in entries {
            switch key {
            case keys.leader: view.leader = value
            case keys.switchover: view.switchover = decode(OperationRequest.self, value)
            case keys.failover: view.failover = decode(OperationRequest.self, value)
            case keys.rejoin(me): view.rejoin = decode(OperationRequest.self, value)
            case keys.sync: view.sync = decode(SyncState.self, value)
            case keys.lastPrimary: view.lastPrimary = decode(LastPrimary.self, value)
            default:
                if key.hasPrefix(keys.members), let member = decode(MemberState.self, value) { view.members.append(member) }
            }
        }
        if let leader = view.leader?.value { view.leaderMember = view.members.first { $0.node == leader } }
        return view
    }

    func promote(
        _ local: MemberState, lease: Int64, _ state: inout State, session: PostgresSession, event: HistoryEvent.Kind, from: String?
    ) async throws {
        guard try await etcd.create(keys.leader, value: me, lease: lease) else { return }
        logger.notice("promoting this standby", metadata: metadata.merging(["ferry.reason": "\(event)", "ferry.lsn": "\(local.lsn)"]) { $1 })
        var promoting = local
        promoting.state = .promoting
        try? await publish(promoting, lease: lease)
        try await controller.promote()
        state.role = .primary
        state.following = nil
        state.synchronousNames = nil
        // Before the first checkpoint of the new timeline can recycle them.
        await archiveOldTimeline(session)
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
        if event == .switchover { metrics.switchovers.increment() } else { metrics.failovers.increment() }
    }

    /// Stops the running standby and rejoins it (rewind, or copy) to the current leader.
    func rejoinRunning(copy: Bool, _ state: inout State) async throws {
        guard let leader = try await etcd.get(keys.leader), leader.value != me, let primary = try await member(leader.value),
            primary.role == .primary
        else { return }
        await controller.shutdown()
        try await rejoin(primary, copy: copy, &state)
        try await controller.start()
    }

    /// Brings the stopped server in line with `primary` and configures it to follow: `pg_rewind`, or a fresh copy
    /// when asked to or when the rewind fails.
    func rejoin(_ primary: MemberState, copy: Bool, _ state: inout State) async throws {
        if let lease = state.lease {
            var rejoining = MemberState(node: me, host: settings.host, port: settings.port, role: .stopped, lsn: 0, timeline: 0)
            rejoining.state = .rejoining
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
        await record(HistoryEvent(event: .rejoin, from: me, to: primary.node, detail: "\(how) in \(took)"))
    }

    /// PostgreSQL is down: what to start, and how, is ``AgentRules/stopped(_:)``'s answer.
    func stoppedTick(_ state: inout State) async throws {
        let lease = try await ensureLease(&state)
        state.fencedWithoutEtcd = false
        let control = await controller.controlData()
        var stopped = MemberState(
            node: me, host: settings.host, port: settings.port, role: .stopped, lsn: control?.checkpoint ?? 0, timeline: control?.timeline ?? 0)
        stopped.state = .starting
        try await publish(stopped, lease: lease)
        let cluster = try await clusterView()
        let step = AgentRules.StoppedStep(
            me: me, cluster: cluster, timeline: control?.timeline, startsAsStandby: controller.startsAsStandby, mustRejoin: state.mustRejoin,
            failedStarts: state.failedStarts)
        switch AgentRules.stopped(step) {
        case .restartInPlace:
            // The server stopped under a running agent that still leads (a crash, an OOM kill): starting it again in
            // place loses nothing, where a failover could lose what the standbys had not received yet. Only when it
            // does not start does a standby take over.
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
        case .rejoinAndStart(_, let copy):
            guard let primary = cluster.leaderMember else { return }
            try await rejoin(primary, copy: copy, &state)
            if cluster.rejoin != nil { _ = try await etcd.delete(keys.rejoin(me)) }
            try await startCountingFailures(&state)
        case .followAndStart(let leader):
            guard let primary = cluster.leaderMember else { return }
            try controller.configureStandby(host: primary.host, port: primary.port, slot: me)
            state.following = leader
            try await startCountingFailures(&state)
        case .start:
            try await controller.start()
        case .leadAndStart:
            guard try await etcd.create(keys.leader, value: me, lease: lease) else { return }
            logger.notice("no leader: starting this node's primary again", metadata: metadata)
            state.mustRejoin = false
            try await controller.start()
        case .wait(.olderThanLastPrimary(let last)):
            logger.warning(
                "this node's data is older than the last primary's; waiting for a leader to rejoin",
                metadata: metadata.merging(["ferry.last_primary": "\(last)", "ferry.timeline": "\(control?.timeline ?? 0)"]) { $1 })
        case .wait:
            return
        }
    }

    /// Starts the server as a standby; starts that fail in a row make the next rejoin copy instead of rewinding.
    private func startCountingFailures(_ state: inout State) async throws {
        do {
            try await controller.start()
            state.failedStarts = 0
        } catch {
            state.failedStarts += 1
            throw error
        }
    }
}

extension ClusterAgent {
    /// Archives the old timeline's complete segments this node received but the old primary may not have archived
    /// (it died with segments waiting); a failure is logged and the archive checked by `ferry backup verify`.
    func archiveOldTimeline(_ session: PostgresSession) async {
        guard let repository = settings.archiveRepository else { return }
        do {
            var timeline = 0
            try await session.withConnection { connection in
                let rows = try await connection.query("SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)", logger: logger)
                for try await text in rows.decode(String.self) { timeline = Int(text, radix: 16) ?? 0 }
            }
            let archive = WALArchive(repository: try BackupRepositories.open(repository))
            let dataDirectory = controller.dataDirectory
            let found = timeline
            let outcome = try await BaseBackup.blocking { () throws(FerryError) in
                try WALCatchUp.run(dataDirectory: dataDirectory, timeline: found, archive: archive)
            }
            logger.notice(
                "archived the old timeline's segments the old primary had not",
                metadata: metadata.merging(
                    [
                        "ferry.pushed": "\(outcome.pushed.count)", "ferry.already_archived": "\(outcome.alreadyArchived)",
                        "ferry.timeline": "\(timeline)",
                    ]
                ) { $1 })
        } catch {
            logger.error(
                "could not archive the old timeline's segments after the promotion",
                metadata: metadata.merging(["ferry.error": "\(error)"]) { $1 })
        }
    }
}
