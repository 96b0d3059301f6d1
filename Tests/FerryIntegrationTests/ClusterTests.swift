import FerryCluster
import FerryCore
import FerryEtcd
import Foundation
import Logging
import Testing

@testable import FerryPostgresNode
@testable import FerrySandbox

/// A local cluster: three PostgreSQL servers as separate processes on loopback, replicating through slots.
@Suite("Local PostgreSQL cluster", .timeLimit(.minutes(5)))
struct ClusterTests {
    static func directory() -> String {
        FerryProcess.packageRoot + "/.ferry/test/cluster-\(UUID().uuidString.prefix(8))"
    }

    @Test func initBuildsAPrimaryWithStreamingStandbysThatSeeItsWrites() async throws {
        let logger = Logger(label: "ferry.test.cluster")
        let cluster = try await LocalCluster.create(directory: Self.directory(), replicas: 2, logger: logger)
        do {
            let primary = try #require(cluster.node("node1")).instance
            _ = try await primary.psql(
                "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 1000) g")
            for name in ["node2", "node3"] {
                let standby = try #require(cluster.node(name)).instance
                var seen = ""
                for _ in 0..<100 {
                    seen = (try? await standby.psql("SELECT count(*) FROM t")) ?? ""
                    if seen == "1000" { break }
                    try await Task.sleep(for: .milliseconds(50))
                }
                #expect(seen == "1000", "\(name) replays the primary's writes")
                // A standby takes no writes.
                await #expect(throws: FerryError.self) { _ = try await standby.psql("INSERT INTO t VALUES (5000, 'x')") }
            }
            var status = await ClusterInspector.inspect(cluster.nodes.map { ($0.name, $0.instance.endpoint) }, logger: logger)
            for _ in 0..<50 where status.nodes.contains(where: { $0.role == "standby" && $0.lagBytes != 0 }) {
                try await Task.sleep(for: .milliseconds(100))
                status = await ClusterInspector.inspect(cluster.nodes.map { ($0.name, $0.instance.endpoint) }, logger: logger)
            }
            #expect(status.nodes.map(\.role) == ["primary", "standby", "standby"])
            #expect(status.nodes.allSatisfy { $0.timeline == 1 })
            #expect(status.nodes.filter { $0.role == "standby" }.allSatisfy { $0.state == "streaming" && $0.slotActive == true && $0.lagBytes == 0 })
            #expect(status.warnings.isEmpty, "\(status.warnings)")

            // A standby that stops: reported down, its slot inactive and holding WAL, with warnings naming it.
            let node3 = try #require(cluster.node("node3")).instance
            await node3.stop()
            _ = try await primary.psql("INSERT INTO t SELECT g, 'more' FROM generate_series(1001, 2000) g")
            status = await ClusterInspector.inspect(cluster.nodes.map { ($0.name, $0.instance.endpoint) }, logger: logger)
            #expect(status.nodes.last?.role == "down")
            #expect(status.warnings.contains { $0.hasPrefix("node3 (127.0.0.1:\(node3.port)) does not answer") }, "\(status.warnings)")
        } catch {
            await cluster.destroy()
            throw error
        }
        await cluster.destroy()
        #expect(!FileManager.default.fileExists(atPath: cluster.directory))
    }

    @Test func theCommandsBuildShowAndRemoveACluster() async throws {
        let directory = Self.directory()
        let scratch = try FerryProcess.scratchDirectory()
        let initialize = try await FerryProcess.run(["cluster", "init", "--local", "--replicas", "1", "--dir", directory, "--json"], in: scratch)
        #expect(initialize.status == 0, "\(initialize.stderr.suffix(2000))")
        #expect(initialize.stdout.contains("\"role\":\"primary\""), "\(initialize.stdout)")
        let status = try await FerryProcess.run(["cluster", "status", "--dir", directory], in: scratch)
        #expect(status.stdout.contains("node2"), "\(status.stdout)")
        let down = try await FerryProcess.run(["cluster", "down", "--dir", directory], in: scratch)
        #expect(down.status == 0, "\(down.stderr)")
        let missing = try await FerryProcess.run(["cluster", "status", "--dir", directory], in: scratch)
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("no cluster in"), "\(missing.stderr)")
        #expect(!missing.stderr.contains("Fatal error"))
        try? FileManager.default.removeItem(atPath: scratch)
    }
}

@Suite(
    "etcd in the sandbox", .serialized, .timeLimit(.minutes(2)),
    .sandbox {
        $0.etcd = true
        $0.redis = false
    })
struct SandboxEtcdTests {
    @Test func etcdRunsAnswersAndStopsWithTheSandbox() async throws {
        let sandbox = try SandboxContext.require()
        let etcd = try #require(sandbox.etcd)
        #expect(etcd.isRunning)
        let health = RawHTTPProbe.get(port: etcd.clientPort, path: "/health")
        #expect(health?.contains("\"health\":\"true\"") == true, "\(health ?? "no answer")")
        // A crash and a restart keep its data directory usable.
        await etcd.kill()
        #expect(!etcd.isRunning)
        try await etcd.start()
        #expect(etcd.isRunning)
    }

    @Test func theEtcdClientRacesForAKeyUnderALease() async throws {
        let sandbox = try SandboxContext.require()
        let etcd = try #require(sandbox.etcd)
        // The semantics are tested here, not the latency: on a loaded machine (the backup tests' disk writes beside it)
        // etcd's first writes after its restart above took longer than the client's default 2 s once.
        let client = EtcdClient(endpoints: [etcd.url], timeout: .seconds(10))
        // Just started, etcd may take a moment (more on a loaded machine) to elect itself and report healthy.
        try await eventually("etcd to report itself healthy") { await client.isHealthy() }
        let key = "/ferry/test-\(UUID().uuidString.prefix(8))/leader"
        let lease = try await client.grantLease(ttl: 5)
        #expect(try await client.create(key, value: "node1", lease: lease), "the first creator wins")
        #expect(try await client.create(key, value: "node2", lease: nil) == false, "a second creator loses")
        let held = try #require(try await client.get(key))
        #expect(held.value == "node1")
        #expect(held.lease == lease)
        #expect(try await client.keepAlive(lease: lease) == 5)
        // Only the holder may hand over or step down.
        #expect(try await client.replace(key, expected: "node2", with: "node3", lease: nil) == false)
        #expect(try await client.replace(key, expected: "node1", with: "node2", lease: lease))
        #expect(try await client.get(key)?.value == "node2")
        #expect(try await client.delete(key, ifValue: "node1") == false)
        // The lease ends: the key goes with it, and a later renewal says so.
        try await client.revoke(lease: lease)
        #expect(try await client.get(key) == nil)
        #expect(try await client.keepAlive(lease: lease) == 0)
        try await client.put(key + "/a", value: "1")
        try await client.put(key + "/b", value: "2")
        #expect(try await client.list(prefix: key + "/").map(\.key) == [key + "/a", key + "/b"])
    }

    @Test func anUnreachableEtcdIsNamedInTheError() async throws {
        let port = try FreePort.find()
        let client = EtcdClient(endpoints: ["http://127.0.0.1:\(port)"], timeout: .seconds(1))
        await #expect(throws: FerryError.self) { _ = try await client.get("/x") }
        do {
            _ = try await client.get("/x")
        } catch let error as FerryError {
            #expect(error.code == .unreachable)
            #expect(error.description.contains("127.0.0.1:\(port)"), "\(error)")
        }
        #expect(await client.isHealthy() == false)
    }
}
