import FerryCluster
import FerryCore
import FerrySandbox
import Foundation
import Logging
import Testing

/// Agents on a three-node local cluster with the sandbox's etcd: a crashed primary is replaced by the healthiest
/// standby, and the other standby follows the new one.
@Suite(
    "Automatic failover", .serialized, .timeLimit(.minutes(5)),
    .sandbox {
        $0.etcd = true
        $0.redis = false
        $0.postgres = false
    })
struct FailoverTests {
    static func rows(_ instance: PostgresInstance) async -> Int {
        Int((try? await instance.psql("SELECT count(*) FROM t")) ?? "") ?? -1
    }

    @Test func aCrashedPrimaryIsReplacedAndTheOtherStandbyFollows() async throws {
        let sandbox = try SandboxContext.require()
        let etcd = try #require(sandbox.etcd)
        let logger = Logger(label: "ferry.test.failover")
        let cluster = try await LocalCluster.create(
            directory: FerryProcess.packageRoot + "/.ferry/test/failover-\(UUID().uuidString.prefix(8))", replicas: 2, logger: logger)
        let name = "t\(UInt32.random(in: 0..<UInt32.max))"
        var agents: [String: Task<Void, any Error>] = [:]
        for node in cluster.nodes {
            var settings = AgentSettings(node: node.name, port: node.instance.port, postgres: node.instance.endpoint, etcd: [etcd.url])
            settings.cluster = name
            settings.ttl = 2
            settings.loopInterval = .milliseconds(200)
            let agent = ClusterAgent(settings: settings, controller: LocalNodeController(instance: node.instance, cluster: cluster), logger: logger)
            agents[node.name] = Task { try await agent.run() }
        }
        let client = EtcdClient(endpoints: [etcd.url])
        do {
            let primary = try #require(cluster.node("node1")).instance
            var leader: String?
            for _ in 0..<100 {
                leader = try await client.get("/ferry/\(name)/leader")?.value
                if leader != nil { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(leader == "node1", "the running primary takes the leader key")
            _ = try await primary.psql("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 500)")
            for standby in cluster.nodes.dropFirst() {
                for _ in 0..<100 where await Self.rows(standby.instance) != 500 { try await Task.sleep(for: .milliseconds(50)) }
            }

            // The primary's machine dies: postmaster and agent at once.
            let crashed = ContinuousClock.now
            await primary.kill()
            try await Task.sleep(for: .milliseconds(300))
            agents["node1"]?.cancel()
            var promoted: PostgresInstance?
            while promoted == nil, ContinuousClock.now - crashed < .seconds(30) {
                for node in cluster.nodes.dropFirst() where (try? await node.instance.psql("INSERT INTO t VALUES (1000)")) != nil {
                    promoted = node.instance
                }
                if promoted == nil { try await Task.sleep(for: .milliseconds(100)) }
            }
            let writable = ContinuousClock.now - crashed
            print("crash to writable: \(writable)")
            let newPrimary = try #require(promoted, "a standby became writable")
            #expect(await Self.rows(newPrimary) == 501, "every row replicated before the crash is there")
            let newLeader = try await client.get("/ferry/\(name)/leader")?.value
            #expect(newLeader != nil && newLeader != "node1")
            // The other standby follows the new primary (new timeline) and sees its writes.
            let other = try #require(cluster.nodes.dropFirst().first { $0.instance.port != newPrimary.port }).instance
            _ = try await newPrimary.psql("INSERT INTO t SELECT generate_series(2000, 2099)")
            var seen = 0
            for _ in 0..<300 {
                seen = await Self.rows(other)
                if seen == 601 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(seen == 601, "the other standby follows the new primary")
            let status = await ClusterInspector.inspect(
                cluster.nodes.map { ($0.name, $0.instance.endpoint) }, logger: logger)
            #expect(status.primaries.count == 1)
        } catch {
            for task in agents.values { task.cancel() }
            await cluster.destroy()
            throw error
        }
        for task in agents.values { task.cancel() }
        for task in agents.values { _ = await task.result }
        await cluster.destroy()
    }
}
