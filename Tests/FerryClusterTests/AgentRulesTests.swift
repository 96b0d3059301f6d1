import FerryEtcd
import Testing

@testable import FerryCluster

/// Every rule of docs/HA.md, one table row per case, without a server: the rules are pure.
@Suite struct AgentRulesTests {
    static func member(_ node: String, _ role: NodeRole, lsn: UInt64, streaming: Bool = false) -> MemberState {
        var member = MemberState(node: node, host: "127.0.0.1", port: 5432, role: role, lsn: lsn, timeline: 1)
        member.streaming = streaming
        return member
    }

    static func leader(_ node: String, lease: Int64 = 7) -> EtcdValue {
        EtcdValue(value: node, modRevision: 1, createRevision: 1, lease: lease)
    }

    /// A standby's step with no leader key, `me` among `members`.
    static func leaderless(
        _ me: String, members: [MemberState], sync: SyncState? = nil, lastPrimary: LastPrimary? = nil, switchover: OperationRequest? = nil,
        failover: OperationRequest? = nil, maximumLagBytes: Int64 = 16 << 20
    ) -> AgentRules.StandbyStep {
        let local = members.first { $0.node == me }!
        var cluster = AgentRules.ClusterView()
        cluster.members = members
        cluster.sync = sync
        cluster.lastPrimary = lastPrimary
        cluster.switchover = switchover
        cluster.failover = failover
        return AgentRules.StandbyStep(
            me: me, local: local, cluster: cluster, following: nil, notStreamingFor: nil, divergedAfter: .seconds(10), mustRejoin: false,
            maximumLagBytes: maximumLagBytes)
    }

    // MARK: Who may promote

    struct ElectionCase: Sendable, CustomTestStringConvertible {
        var name: String
        var me: String
        var members: [MemberState]
        var sync: SyncState? = nil
        var lastPrimary: LastPrimary? = nil
        var expected: AgentRules.StandbyDecision
        var testDescription: String { name }
    }

    static let elections: [ElectionCase] = [
        ElectionCase(
            name: "most WAL wins", me: "node2", members: [member("node2", .standby, lsn: 200), member("node3", .standby, lsn: 100)],
            lastPrimary: LastPrimary(node: "node1", lsn: 210, timeline: 1), expected: .promote(.failover, from: "node1")),
        ElectionCase(
            name: "less WAL waits", me: "node3", members: [member("node2", .standby, lsn: 200), member("node3", .standby, lsn: 100)],
            expected: .wait(.notTheBest("node2"))),
        ElectionCase(
            name: "a tie goes to the lowest name", me: "node2", members: [member("node2", .standby, lsn: 100), member("node3", .standby, lsn: 100)],
            expected: .promote(.failover, from: nil)),
        ElectionCase(
            name: "a tie: the higher name waits", me: "node3", members: [member("node2", .standby, lsn: 100), member("node3", .standby, lsn: 100)],
            expected: .wait(.notTheBest("node2"))),
        ElectionCase(
            name: "the best but beyond maximum_lag waits", me: "node2", members: [member("node2", .standby, lsn: 100)],
            lastPrimary: LastPrimary(node: "node1", lsn: 100 + (16 << 20) + 1, timeline: 1), expected: .wait(.tooFarBehind(lagBytes: (16 << 20) + 1))),
        ElectionCase(
            name: "exactly maximum_lag behind may promote", me: "node2", members: [member("node2", .standby, lsn: 100)],
            lastPrimary: LastPrimary(node: "node1", lsn: 100 + (16 << 20), timeline: 1), expected: .promote(.failover, from: "node1")),
        ElectionCase(
            name: "stopped members do not count", me: "node3",
            members: [member("node2", .stopped, lsn: 900), member("node3", .standby, lsn: 100)], expected: .promote(.failover, from: nil)),
        ElectionCase(
            name: "synchronous: only a synchronous standby", me: "node3",
            members: [member("node2", .standby, lsn: 100), member("node3", .standby, lsn: 500)],
            sync: SyncState(leader: "node1", quorum: 1, members: ["node2"]), expected: .wait(.notSynchronous)),
        ElectionCase(
            name: "synchronous: the named one promotes when it hears enough", me: "node2",
            members: [member("node2", .standby, lsn: 100), member("node3", .standby, lsn: 500)],
            sync: SyncState(leader: "node1", quorum: 1, members: ["node2"]), expected: .promote(.failover, from: nil)),
        ElectionCase(
            name: "synchronous ANY 1 of 2: one answering is too few", me: "node2",
            members: [member("node2", .standby, lsn: 100), member("node3", .stopped, lsn: 0)],
            sync: SyncState(leader: "node1", quorum: 1, members: ["node2", "node3"]),
            expected: .wait(.tooFewSynchronous(answering: ["node2"], needed: 2))),
        ElectionCase(
            name: "synchronous ANY 1 of 2: both answer, most WAL wins", me: "node3",
            members: [member("node2", .standby, lsn: 100), member("node3", .standby, lsn: 300)],
            sync: SyncState(leader: "node1", quorum: 1, members: ["node2", "node3"]), expected: .promote(.failover, from: nil)),
        ElectionCase(
            name: "synchronous ANY 2 of 2: one answering is enough (it holds every commit)", me: "node2",
            members: [member("node2", .standby, lsn: 100), member("node3", .stopped, lsn: 0)],
            sync: SyncState(leader: "node1", quorum: 2, members: ["node2", "node3"]), expected: .promote(.failover, from: nil)),
        ElectionCase(
            name: "synchronous: maximum_lag does not apply (every acknowledged commit is there)", me: "node2",
            members: [member("node2", .standby, lsn: 100)], sync: SyncState(leader: "node1", quorum: 1, members: ["node2"]),
            lastPrimary: LastPrimary(node: "node1", lsn: 1 << 40, timeline: 1), expected: .promote(.failover, from: "node1")),
    ]

    @Test(arguments: elections) func election(_ election: ElectionCase) {
        let step = Self.leaderless(election.me, members: election.members, sync: election.sync, lastPrimary: election.lastPrimary)
        #expect(AgentRules.standby(step) == election.expected)
    }

    /// Values from etcd are range-checked before arithmetic: no LSN another agent publishes can trap this one.
    @Test func lagArithmeticNeverTraps() {
        #expect(AgentRules.lagBytes(primaryLSN: 1_000, localLSN: 400, replayLag: 100) == 700)
        #expect(AgentRules.lagBytes(primaryLSN: 400, localLSN: 1_000, replayLag: nil) == 0, "a standby ahead of a stale report")
        #expect(AgentRules.lagBytes(primaryLSN: .max, localLSN: 0, replayLag: 5) == .max)
        #expect(AgentRules.lagBytes(primaryLSN: .max, localLSN: .max - 1, replayLag: .max) == .max)
        #expect(AgentRules.lagBytes(primaryLSN: 10, localLSN: 0, replayLag: -50) == 10, "a negative replay lag counts as none")
    }

    @Test func aStandbyThatStillStreamsNeverPromotes() {
        for sync in [nil, SyncState(leader: "node1", quorum: 1, members: ["node2"])] {
            let step = Self.leaderless("node2", members: [Self.member("node2", .standby, lsn: 500, streaming: true)], sync: sync)
            #expect(AgentRules.standby(step) == .wait(.stillStreaming))
        }
        // Not even when a failover names it: its primary is alive.
        let named = Self.leaderless(
            "node2", members: [Self.member("node2", .standby, lsn: 500, streaming: true)], failover: OperationRequest(from: "node1", to: "node2"))
        #expect(AgentRules.standby(named) == .wait(.stillStreaming))
    }

    @Test func etcdUnreachableMeansNobodyPromotes() {
        var step = Self.leaderless("node2", members: [Self.member("node2", .standby, lsn: 500)])
        step.cluster = nil
        #expect(AgentRules.standby(step) == .wait(.etcdUnreachable))
        let stopped = AgentRules.StoppedStep(me: "node1", cluster: nil, timeline: 3, startsAsStandby: false, mustRejoin: false, failedStarts: 0)
        #expect(AgentRules.stopped(stopped) == .wait(.etcdUnreachable))
    }

    // MARK: Switchover and failover only to the named node

    struct OperationCase: Sendable, CustomTestStringConvertible {
        var name: String
        var me: String
        var switchover: OperationRequest? = nil
        var failover: OperationRequest? = nil
        var expected: AgentRules.StandbyDecision
        var testDescription: String { name }
    }

    static func demoting(from: String, to: String) -> OperationRequest {
        var request = OperationRequest(from: from, to: to)
        request.state = .demoting
        return request
    }

    static let operations: [OperationCase] = [
        OperationCase(
            name: "switchover: the named standby promotes", me: "node3", switchover: demoting(from: "node1", to: "node3"),
            expected: .promote(.switchover, from: "node1")),
        OperationCase(
            name: "switchover: the best standby waits for the named one", me: "node2", switchover: demoting(from: "node1", to: "node3"),
            expected: .wait(.operationForAnother("node3"))),
        OperationCase(
            name: "switchover not yet demoting: the election rules", me: "node2", switchover: OperationRequest(from: "node1", to: "node3"),
            expected: .promote(.failover, from: nil)),
        OperationCase(
            name: "failover: the named standby promotes", me: "node3", failover: OperationRequest(from: "node1", to: "node3"),
            expected: .promote(.manualFailover, from: nil)),
        OperationCase(
            name: "failover: the others wait", me: "node2", failover: OperationRequest(from: "node1", to: "node3"),
            expected: .wait(.operationForAnother("node3"))),
    ]

    @Test(arguments: operations) func operation(_ operation: OperationCase) {
        // node2 has the most WAL: only the request decides.
        let members = [Self.member("node2", .standby, lsn: 900), Self.member("node3", .standby, lsn: 100)]
        let step = Self.leaderless(operation.me, members: members, switchover: operation.switchover, failover: operation.failover)
        #expect(AgentRules.standby(step) == operation.expected)
    }

    @Test func switchoverCandidates() {
        let members = [
            Self.member("node1", .primary, lsn: 1000), Self.member("node2", .standby, lsn: 900, streaming: true),
            Self.member("node3", .standby, lsn: 950, streaming: true), Self.member("node4", .standby, lsn: 990),
        ]
        func candidate(_ to: String?, sync: SyncState? = nil) -> String {
            switch AgentRules.switchoverCandidate(
                OperationRequest(from: "node1", to: to), me: "node1", members: members, sync: sync, synchronous: sync != nil)
            {
            case .success(let member): return member.node
            case .failure(let refusal): return "refused: \(refusal.reason)"
            }
        }
        #expect(candidate("node2") == "node2")
        #expect(candidate(nil) == "node3", "the streaming standby with the most WAL")
        #expect(candidate("node4") == "refused: node4 is not a standby streaming from node1")
        #expect(candidate("node1") == "refused: node1 is not a standby streaming from node1")
        #expect(
            candidate("node3", sync: SyncState(leader: "node1", quorum: 1, members: ["node2"]))
                == "refused: node3 is not a synchronous standby (node2)")
        #expect(candidate("node2", sync: SyncState(leader: "node1", quorum: 1, members: ["node2"])) == "node2")
        let alone = [Self.member("node1", .primary, lsn: 1)]
        switch AgentRules.switchoverCandidate(OperationRequest(), me: "node1", members: alone, sync: nil, synchronous: false) {
        case .success: Issue.record("no standby, no switchover")
        case .failure(let refusal): #expect(refusal.reason == "no standby streams from node1")
        }
    }

    // MARK: Never two writable primaries

    struct FencingCase: Sendable, CustomTestStringConvertible {
        var sinceRenewal: Duration
        var ttl: Int
        var keepServing: Bool
        var fence: Bool
        var testDescription: String { "\(sinceRenewal) since renewal, ttl \(ttl)s, keep serving \(keepServing)" }
    }

    static let fencing: [FencingCase] = [
        FencingCase(sinceRenewal: .milliseconds(1_400), ttl: 3, keepServing: false, fence: false),
        FencingCase(sinceRenewal: .milliseconds(1_500), ttl: 3, keepServing: false, fence: false),
        FencingCase(sinceRenewal: .milliseconds(1_501), ttl: 3, keepServing: false, fence: true),
        FencingCase(sinceRenewal: .seconds(3), ttl: 3, keepServing: false, fence: true),
        FencingCase(sinceRenewal: .seconds(60), ttl: 3, keepServing: true, fence: false),
        FencingCase(sinceRenewal: .milliseconds(600), ttl: 1, keepServing: false, fence: true),
    ]

    /// A primary that cannot renew fences at ttl/2, before the lease (ttl) can run out and a standby take the key.
    @Test(arguments: fencing) func fencingBeforeTheLeaseExpires(_ fencing: FencingCase) {
        #expect(
            AgentRules.mustFenceWithoutEtcd(sinceRenewal: fencing.sinceRenewal, ttl: fencing.ttl, keepServing: fencing.keepServing) == fencing.fence)
        #expect(AgentRules.fencingDeadline(ttl: fencing.ttl) < .seconds(fencing.ttl))
    }

    @Test func leadership() {
        #expect(AgentRules.leadership("node1", leader: nil, lease: 7) == .takeKey)
        #expect(AgentRules.leadership("node1", leader: Self.leader("node1", lease: 7), lease: 7) == .lead)
        #expect(AgentRules.leadership("node1", leader: Self.leader("node1", lease: 5), lease: 7) == .moveKeyToLease)
        #expect(AgentRules.leadership("node1", leader: Self.leader("node2"), lease: 7) == .fence(leader: "node2"))
    }

    // MARK: A standby with a leader

    @Test func aStandbyFollowsTheLeaderAndRejoinsWhenItCannotStream() {
        var cluster = AgentRules.ClusterView()
        cluster.leader = Self.leader("node1")
        cluster.leaderMember = Self.member("node1", .primary, lsn: 1000)
        var step = AgentRules.StandbyStep(
            me: "node2", local: Self.member("node2", .standby, lsn: 900), cluster: cluster, following: nil, notStreamingFor: nil,
            divergedAfter: .seconds(10), mustRejoin: false, maximumLagBytes: 16 << 20)
        #expect(AgentRules.standby(step) == .follow("node1"))
        step.following = "node1"
        #expect(AgentRules.standby(step) == .awaitingStream)
        step.notStreamingFor = .seconds(10)
        #expect(AgentRules.standby(step) == .awaitingStream)
        step.notStreamingFor = .seconds(11)
        #expect(AgentRules.standby(step) == .rejoinDiverged(copy: false))
        step.mustRejoin = true
        #expect(AgentRules.standby(step) == .rejoinDiverged(copy: true), "the second time, copy")
        step.local.streaming = true
        #expect(AgentRules.standby(step) == .streaming)
        // A leader key whose member is not (yet) a primary: wait.
        step.cluster?.leaderMember = Self.member("node1", .stopped, lsn: 0)
        #expect(AgentRules.standby(step) == .wait(.leaderNotPrimary))
        // Holding the key itself: a promotion that did not finish is finished.
        step.cluster?.leader = Self.leader("node2")
        #expect(AgentRules.standby(step) == .finishPromotion)
        // An operator's rejoin comes first.
        var copy = OperationRequest()
        copy.state = .copy
        step.cluster?.rejoin = copy
        #expect(AgentRules.standby(step) == .rejoin(copy: true))
    }

    // MARK: Coming back

    struct StoppedCase: Sendable, CustomTestStringConvertible {
        var name: String
        var leader: String?
        var leaderRole: NodeRole = .primary
        var timeline: Int? = 3
        var startsAsStandby = false
        var mustRejoin = false
        var failedStarts = 0
        var rejoin: OperationState? = nil
        var lastPrimary: LastPrimary? = nil
        var expected: AgentRules.StoppedDecision
        var testDescription: String { name }
    }

    static let comebacks: [StoppedCase] = [
        StoppedCase(name: "still the leader: start again in place", leader: "node1", expected: .restartInPlace),
        StoppedCase(name: "an old primary rewinds and follows", leader: "node2", expected: .rejoinAndStart(leader: "node2", copy: false)),
        StoppedCase(
            name: "a standby follows without a rewind", leader: "node2", startsAsStandby: true, expected: .followAndStart(leader: "node2")),
        StoppedCase(
            name: "a fenced standby rewinds", leader: "node2", startsAsStandby: true, mustRejoin: true,
            expected: .rejoinAndStart(leader: "node2", copy: false)),
        StoppedCase(
            name: "after one failed start: rewind", leader: "node2", startsAsStandby: true, failedStarts: 1,
            expected: .rejoinAndStart(leader: "node2", copy: false)),
        StoppedCase(
            name: "after two failed starts: copy", leader: "node2", startsAsStandby: true, failedStarts: 2,
            expected: .rejoinAndStart(leader: "node2", copy: true)),
        StoppedCase(name: "no data: copy at once", leader: "node2", timeline: nil, expected: .rejoinAndStart(leader: "node2", copy: true)),
        StoppedCase(
            name: "an operator asks for a copy", leader: "node2", startsAsStandby: true, rejoin: .copy,
            expected: .rejoinAndStart(leader: "node2", copy: true)),
        StoppedCase(name: "the leader is not running yet: wait", leader: "node2", leaderRole: .stopped, expected: .wait(.leaderNotPrimary)),
        StoppedCase(name: "no leader: a standby starts and joins the election", startsAsStandby: true, expected: .start),
        StoppedCase(
            name: "no leader, no newer primary: lead again", lastPrimary: LastPrimary(node: "node1", lsn: 5, timeline: 3), expected: .leadAndStart),
        StoppedCase(
            name: "no leader, an older last primary elsewhere: lead again", lastPrimary: LastPrimary(node: "node2", lsn: 5, timeline: 2),
            expected: .leadAndStart),
        StoppedCase(
            name: "no leader, a newer primary led since: wait", lastPrimary: LastPrimary(node: "node2", lsn: 5, timeline: 3),
            expected: .wait(.olderThanLastPrimary("node2"))),
        StoppedCase(name: "no leader and no data: wait", timeline: nil, expected: .wait(.noData)),
    ]

    @Test(arguments: comebacks) func comingBack(_ comeback: StoppedCase) {
        var cluster = AgentRules.ClusterView()
        if let leader = comeback.leader {
            cluster.leader = Self.leader(leader)
            cluster.leaderMember = Self.member(leader, comeback.leaderRole, lsn: 100)
        }
        cluster.lastPrimary = comeback.lastPrimary
        if let state = comeback.rejoin {
            var request = OperationRequest()
            request.state = state
            cluster.rejoin = request
        }
        let step = AgentRules.StoppedStep(
            me: "node1", cluster: cluster, timeline: comeback.timeline, startsAsStandby: comeback.startsAsStandby, mustRejoin: comeback.mustRejoin,
            failedStarts: comeback.failedStarts)
        #expect(AgentRules.stopped(step) == comeback.expected)
    }
}
