import FerryEtcd

/// The HA rules of docs/HA.md as pure functions: what an agent sees in one step goes in, what it must do comes out.
/// ``ClusterAgent`` reads its PostgreSQL and etcd, asks these rules, and carries the answer out; the rules do no I/O,
/// so every one of them is covered by table-driven unit tests (`AgentRulesTests`) without a server.
enum AgentRules {
    /// A standby's lag in bytes behind `primaryLSN` (what the primary's agent published in etcd) plus its own
    /// replay lag, never negative and never trapping whatever the values (an odd or hostile etcd value once could
    /// overflow `Int64(UInt64)`).
    static func lagBytes(primaryLSN: UInt64, localLSN: UInt64, replayLag: Int64?) -> Int64 {
        let behind = Int64(clamping: primaryLSN >= localLSN ? primaryLSN - localLSN : 0)
        let (sum, overflow) = behind.addingReportingOverflow(max(0, replayLag ?? 0))
        return overflow ? .max : sum
    }

    // MARK: What goes in

    /// etcd's view of the cluster at one step; `nil` where etcd could not be read.
    struct ClusterView: Sendable, Equatable {
        /// The leader key's value and lease.
        var leader: EtcdValue?
        /// The leader's member record (its agent's last publication), when there is a leader.
        var leaderMember: MemberState?
        /// An operator's switchover and failover requests.
        var switchover: OperationRequest?
        var failover: OperationRequest?
        /// A rejoin request for this node.
        var rejoin: OperationRequest?
        var sync: SyncState?
        var lastPrimary: LastPrimary?
        var members: [MemberState] = []
    }

    /// A running standby's step.
    struct StandbyStep: Sendable, Equatable {
        var me: String
        var local: MemberState
        var cluster: ClusterView?
        /// The leader this standby is configured to stream from.
        var following: String?
        /// How long this standby has not streamed from the live leader it follows.
        var notStreamingFor: Duration?
        /// Not streaming from a live leader for longer than this means the data diverged (or lost WAL it needs).
        var divergedAfter: Duration
        /// The last rejoin did not help: copy instead of rewinding.
        var mustRejoin: Bool
        var maximumLagBytes: Int64
    }

    /// A step of a node whose PostgreSQL does not answer.
    struct StoppedStep: Sendable, Equatable {
        var me: String
        var cluster: ClusterView?
        /// The data directory's timeline (`pg_controldata`); nil without data.
        var timeline: Int?
        /// The data directory starts as a standby (`standby.signal`).
        var startsAsStandby: Bool
        var mustRejoin: Bool
        /// Starts that failed in a row.
        var failedStarts: Int
    }

    // MARK: What comes out

    /// Why an agent does nothing this step.
    enum WaitReason: Sendable, Equatable {
        /// etcd could not be read: nobody promotes (a standby cannot take a key it cannot reach).
        case etcdUnreachable
        /// The leader key names a node whose agent does not (yet) publish it as a running primary.
        case leaderNotPrimary
        /// No leader key, but this standby still streams from a live primary: promoting would make a second one.
        case stillStreaming
        /// A switchover or failover names another node.
        case operationForAnother(String)
        /// Another standby has more WAL (or the same and a lower name).
        case notTheBest(String?)
        /// In synchronous mode, this standby is not one of the synchronous standbys.
        case notSynchronous
        /// In synchronous mode, too few synchronous standbys answer to know which has every acknowledged commit.
        case tooFewSynchronous(answering: [String], needed: Int)
        /// Further behind the last primary's position than `maximum_lag`.
        case tooFarBehind(lagBytes: UInt64)
        /// A stopped node without data waits for a leader to copy.
        case noData
        /// A stopped old primary whose data is older than the last primary's: it waits for a leader to rejoin.
        case olderThanLastPrimary(String)
    }

    enum StandbyDecision: Sendable, Equatable {
        /// An operator asked this node to rejoin: rewind (or copy) and follow again.
        case rejoin(copy: Bool)
        /// This standby holds the leader key but did not finish promoting (an error, a restart): finish it.
        case finishPromotion
        /// Point this standby at the leader.
        case follow(String)
        /// Following the leader and streaming.
        case streaming
        /// Following the leader but not streaming (yet): the divergence clock runs.
        case awaitingStream
        /// Not streaming from a live leader for too long: rewind (or copy the second time) and follow.
        case rejoinDiverged(copy: Bool)
        /// Take the leader key and promote.
        case promote(HistoryEvent.Kind, from: String?)
        case wait(WaitReason)
    }

    enum StoppedDecision: Sendable, Equatable {
        /// This node still leads: start its PostgreSQL in place (a failover could lose what the standbys lack); if it
        /// does not start, the agent releases the key.
        case restartInPlace
        /// Rewind (or copy) from the leader, then start as its standby.
        case rejoinAndStart(leader: String, copy: Bool)
        /// Start as the leader's standby (configured to follow it first).
        case followAndStart(leader: String)
        /// No leader: a standby starts and takes part in the election.
        case start
        /// No leader and no newer primary since: take the leader key and start this old primary again.
        case leadAndStart
        case wait(WaitReason)
    }

    /// A primary's step with etcd answering.
    enum LeadershipDecision: Sendable, Equatable {
        /// The key is this node's under its current lease.
        case lead
        /// The key is this node's under an older lease: attach it to the current one.
        case moveKeyToLease
        /// No key: take it (if another takes it first, fence).
        case takeKey
        /// Another node leads: stop this primary now and rejoin later.
        case fence(leader: String)
    }

    // MARK: The rules

    /// A running standby: an operator's rejoin first; with a leader, follow it (and rejoin when it cannot stream from
    /// it for long); without one, promote only when the rules elect this node.
    static func standby(_ step: StandbyStep) -> StandbyDecision {
        guard let cluster = step.cluster else { return .wait(.etcdUnreachable) }
        if let request = cluster.rejoin { return .rejoin(copy: request.state == .copy) }
        if let leader = cluster.leader?.value {
            if leader == step.me { return .finishPromotion }
            guard let primary = cluster.leaderMember, primary.role == .primary else { return .wait(.leaderNotPrimary) }
            if step.following != leader { return .follow(leader) }
            if step.local.streaming { return .streaming }
            if let since = step.notStreamingFor, since > step.divergedAfter { return .rejoinDiverged(copy: step.mustRejoin) }
            return .awaitingStream
        }
        if step.local.streaming { return .wait(.stillStreaming) }
        if let switchover = cluster.switchover, switchover.state == .demoting {
            return switchover.to == step.me ? .promote(.switchover, from: switchover.from) : .wait(.operationForAnother(switchover.to ?? "?"))
        }
        if let failover = cluster.failover, let target = failover.to {
            return target == step.me ? .promote(.manualFailover, from: nil) : .wait(.operationForAnother(target))
        }
        if let reason = electionRefusal(step.me, local: step.local, cluster: cluster, maximumLagBytes: step.maximumLagBytes) {
            return .wait(reason)
        }
        return .promote(.failover, from: cluster.lastPrimary?.node)
    }

    /// Why `me` is not elected, or nil when it is: in synchronous mode it must be a synchronous standby and hear from
    /// enough of them to know it has every acknowledged commit, and have the most WAL among those; otherwise the
    /// most WAL of the standbys (ties: the lowest name), within `maximumLagBytes` of the last primary.
    static func electionRefusal(_ me: String, local: MemberState, cluster: ClusterView, maximumLagBytes: Int64) -> WaitReason? {
        let standbys = cluster.members.filter { $0.role == .standby }
        if let sync = cluster.sync, !sync.members.isEmpty {
            guard sync.members.contains(me) else { return .notSynchronous }
            let live = standbys.filter { sync.members.contains($0.node) }
            let needed = sync.members.count - sync.quorum + 1
            guard live.count >= needed else { return .tooFewSynchronous(answering: live.map(\.node).sorted(), needed: needed) }
            let best = mostWAL(live)
            return best == me ? nil : .notTheBest(best)
        }
        let best = mostWAL(standbys)
        guard best == me else { return .notTheBest(best) }
        if let last = cluster.lastPrimary, last.lsn > local.lsn, last.lsn - local.lsn > UInt64(max(0, maximumLagBytes)) {
            return .tooFarBehind(lagBytes: last.lsn - local.lsn)
        }
        return nil
    }

    /// The member with the most WAL; ties go to the lowest name.
    static func mostWAL(_ members: [MemberState]) -> String? {
        members.max { ($0.lsn, $1.node) < ($1.lsn, $0.node) }?.node
    }

    /// A node whose PostgreSQL is down. With a leader elsewhere, rewind when the data may have diverged and start as
    /// its standby; holding the key, start again in place. Without a leader, a standby starts (and takes part in the
    /// election); an old primary leads again only if no newer primary led since.
    static func stopped(_ step: StoppedStep) -> StoppedDecision {
        guard let cluster = step.cluster else { return .wait(.etcdUnreachable) }
        if let leader = cluster.leader?.value {
            if leader == step.me { return .restartInPlace }
            guard let primary = cluster.leaderMember, primary.role == .primary else { return .wait(.leaderNotPrimary) }
            if step.mustRejoin || !step.startsAsStandby || cluster.rejoin != nil || step.failedStarts > 0 {
                // After a start that failed, copy: the data cannot follow this primary as it is. An empty data
                // directory (a new node of a defined cluster) is copied at once.
                let copy = cluster.rejoin?.state == .copy || step.failedStarts > 1 || step.timeline == nil
                return .rejoinAndStart(leader: leader, copy: copy)
            }
            return .followAndStart(leader: leader)
        }
        if step.startsAsStandby, !step.mustRejoin { return .start }
        guard let timeline = step.timeline else { return .wait(.noData) }
        if let last = cluster.lastPrimary, last.node != step.me, last.timeline >= timeline {
            return .wait(.olderThanLastPrimary(last.node))
        }
        return .leadAndStart
    }

    /// A primary with etcd answering: it leads while the key is its own.
    static func leadership(_ me: String, leader: EtcdValue?, lease: Int64) -> LeadershipDecision {
        guard let leader else { return .takeKey }
        guard leader.value == me else { return .fence(leader: leader.value) }
        return leader.lease == lease ? .lead : .moveKeyToLease
    }

    /// A primary that cannot reach etcd stops taking writes once half the lease passed since its last renewal, well
    /// before the lease can run out and a standby can take the key — unless told to keep serving (unsafe).
    static func mustFenceWithoutEtcd(sinceRenewal: Duration, ttl: Int, keepServing: Bool) -> Bool {
        !keepServing && sinceRenewal > fencingDeadline(ttl: ttl)
    }

    /// Half the lease: how long after a renewal a primary may go on without renewing again (and the watchdog's
    /// deadline).
    static func fencingDeadline(ttl: Int) -> Duration { .milliseconds(ttl * 1000 / 2) }

    /// The standby a switchover hands over to: the one it names, else the one with the most WAL, among the standbys
    /// streaming from this primary; in synchronous mode only a synchronous standby. Returns the refusal otherwise.
    static func switchoverCandidate(
        _ request: OperationRequest, me: String, members: [MemberState], sync: SyncState?, synchronous: Bool
    ) -> Result<MemberState, SwitchoverRefusal> {
        let standbys = members.filter { $0.node != me && $0.role == .standby && $0.streaming }
        let candidate: MemberState
        if let to = request.to {
            guard let chosen = standbys.first(where: { $0.node == to }) else { return .failure(.init("\(to) is not a standby streaming from \(me)")) }
            candidate = chosen
        } else {
            guard let name = mostWAL(standbys), let best = standbys.first(where: { $0.node == name }) else {
                return .failure(.init("no standby streams from \(me)"))
            }
            candidate = best
        }
        if synchronous, let sync, !sync.members.isEmpty, !sync.members.contains(candidate.node) {
            return .failure(.init("\(candidate.node) is not a synchronous standby (\(sync.members.joined(separator: ", ")))"))
        }
        return .success(candidate)
    }

    struct SwitchoverRefusal: Error, Equatable {
        var reason: String
        init(_ reason: String) { self.reason = reason }
    }
}
