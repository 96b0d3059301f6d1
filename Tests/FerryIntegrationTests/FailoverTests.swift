import FerryBackup
import FerryCluster
import FerryCore
import FerryEtcd
import FerryPostgresNode
import FerrySandbox
import Foundation
import Logging
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

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

    /// The primary's server crashes while its agent runs: the agent starts it again in place (nothing lost, no
    /// failover). Then the whole machine dies: a standby takes over and the other follows it.
    @Test func aCrashedPrimaryIsReplacedAndTheOtherStandbyFollows() async throws {
        let sandbox = try SandboxContext.require()
        let etcd = try #require(sandbox.etcd)
        let logger = Logger(label: "ferry.test.failover")
        let cluster = try await LocalCluster.create(
            directory: FerryProcess.packageRoot + "/.ferry/test/failover-\(UUID().uuidString.prefix(8))", replicas: 2, logger: logger)
        let name = "t\(UInt32.random(in: 0..<UInt32.max))"
        var agents: [String: Task<Void, any Error>] = [:]
        let node1 = MachineController(LocalNodeController(instance: try #require(cluster.node("node1")).instance, cluster: cluster))
        for node in cluster.nodes {
            var settings = AgentSettings(node: node.name, port: node.instance.port, postgres: node.instance.endpoint, etcd: [etcd.url])
            settings.cluster = name
            settings.ttl = 2
            settings.loopInterval = .milliseconds(200)
            let controller: any NodeController = node.name == "node1" ? node1 : LocalNodeController(instance: node.instance, cluster: cluster)
            let agent = ClusterAgent(settings: settings, controller: controller, logger: logger)
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

            // The server alone crashes: its agent starts it again, still the leader, with every row.
            await primary.kill()
            var restarted = false
            for _ in 0..<100 {
                if (try? await primary.psql("INSERT INTO t VALUES (999)")) != nil {
                    restarted = true
                    break
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(restarted, "the agent started its primary again")
            #expect(try await client.get("/ferry/\(name)/leader")?.value == "node1")
            #expect(await Self.rows(primary) == 501)
            _ = try await primary.psql("DELETE FROM t WHERE id = 999")
            for standby in cluster.nodes.dropFirst() {
                for _ in 0..<100 where await Self.rows(standby.instance) != 500 { try await Task.sleep(for: .milliseconds(50)) }
            }

            // Now the primary's machine dies: postmaster and agent at once (nothing on it starts again).
            node1.dies()
            let crashed = ContinuousClock.now
            await primary.kill()
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

    /// The issue's crash: `kill -9` of the primary's agent process and postmaster while agents run as separate
    /// `ferry agent` processes; then a clean stop (SIGTERM) of the new primary's agent hands over without a
    /// moment with two primaries.
    @Test func agentProcessesFailOverOnKillNineAndHandOverOnSIGTERM() async throws {
        let sandbox = try SandboxContext.require()
        let etcd = try #require(sandbox.etcd)
        let directory = FerryProcess.packageRoot + "/.ferry/test/agents-\(UUID().uuidString.prefix(8))"
        let scratch = try FerryProcess.scratchDirectory()
        let scope = "p\(UInt32.random(in: 0..<UInt32.max))"
        let initialize = try await FerryProcess.run(
            ["cluster", "init", "--local", "--replicas", "2", "--dir", directory, "--etcd", etcd.url, "--scope", scope], in: scratch)
        #expect(initialize.status == 0, "\(initialize.stderr.suffix(2000))")
        let cluster = try #require(LocalCluster.load(directory: directory))
        var agents: [String: FerryProcess.Running] = [:]
        for node in cluster.nodes {
            agents[node.name] = try FerryProcess.start(["agent", "--dir", directory, "--node", node.name, "--ttl", "2"], in: scratch)
        }
        let client = EtcdClient(endpoints: [etcd.url])
        func leader() async -> String? { try? await client.get("/ferry/\(scope)/leader")?.value }
        do {
            for _ in 0..<100 where await leader() == nil { try await Task.sleep(for: .milliseconds(100)) }
            #expect(await leader() == "node1")
            let status = try await FerryProcess.run(["cluster", "status", "--dir", directory, "--json"], in: scratch)
            #expect(status.stdout.contains("\"agent\":\"leader\""), "\(status.stdout)")

            // kill -9 of the whole primary node.
            let primary = try #require(cluster.node("node1")).instance
            agents["node1"]?.signal(SIGKILL)
            await primary.kill()
            var promoted: PostgresInstance?
            let crashed = ContinuousClock.now
            while promoted == nil, ContinuousClock.now - crashed < .seconds(30) {
                for node in cluster.nodes.dropFirst()
                where (try? await node.instance.psql("CREATE TABLE IF NOT EXISTS after_crash (id int)")) != nil {
                    promoted = node.instance
                }
                if promoted == nil { try await Task.sleep(for: .milliseconds(100)) }
            }
            print("agent processes: crash to writable \(ContinuousClock.now - crashed)")
            let newPrimary = try #require(promoted)
            let newLeader = try #require(await leader())
            #expect(newLeader != "node1")

            // Writes on the new primary reach the last standby (it follows the new timeline through its slot).
            let last = try #require(cluster.nodes.first { $0.name != "node1" && $0.name != newLeader }).instance
            _ = try await newPrimary.psql("CREATE TABLE handover (id int); INSERT INTO handover SELECT generate_series(1, 100)")
            var replicated = false
            for _ in 0..<300 {
                if (try? await last.psql("SELECT count(*) FROM handover")) == "100" {
                    replicated = true
                    break
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(replicated, "the last standby follows the new primary")
            // SIGTERM of the new primary's agent: it shuts its server down first, then the last standby takes over.
            agents[newLeader]?.signal(SIGTERM)
            #expect(try await agents[newLeader]?.wait(timeout: .seconds(30)) == 0)
            #expect(
                !newPrimary.isRunning,
                "a primary does not outlive its agent: \(newLeader) \(newPrimary.directory)\n\(agents[newLeader]?.errors().suffix(3000) ?? "")")
            var writable = false
            for _ in 0..<300 {
                if (try? await last.psql("INSERT INTO handover VALUES (101)")) != nil {
                    writable = true
                    break
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            let lastName = try #require(cluster.nodes.first { $0.name != "node1" && $0.name != newLeader }).name
            #expect(writable, "the remaining standby took over: \(agents[lastName]?.errors().suffix(3000) ?? "")")
            #expect(await leader() == last.directory.split(separator: "/").last.map(String.init))
            #expect(try await last.psql("SELECT count(*) FROM handover") == "101", "nothing written before the handover is lost")
        } catch {
            for agent in agents.values { agent.signal(SIGKILL) }
            await cluster.destroy()
            throw error
        }
        for agent in agents.values { agent.signal(SIGKILL) }
        for agent in agents.values { _ = try? await agent.wait(timeout: .seconds(10)) }
        await cluster.destroy()
        try? FileManager.default.removeItem(atPath: scratch)
    }

    /// Continuous archiving through a failover: the primary dies with two complete segments it never archived (its
    /// archive_command failing), the promoted standby's agent archives them from its own pg_wal, and a backup taken
    /// before the failover restores to the new primary's latest write — no segment missing on either timeline.
    @Test func failoverDuringContinuousArchivingLosesNoSegment() async throws {
        let sandbox = try SandboxContext.require()
        let etcd = try #require(sandbox.etcd)
        let directory = FerryProcess.packageRoot + "/.ferry/test/archive-\(UUID().uuidString.prefix(8))"
        // Reachable by PostgreSQL's account, which runs archive_command.
        let repository = "/var/tmp/ferry-test-archive-\(UUID().uuidString.prefix(8))"
        let scratch = try FerryProcess.scratchDirectory()
        let scope = "a\(UInt32.random(in: 0..<UInt32.max))"
        let initialize = try await FerryProcess.run(
            [
                "cluster", "init", "--local", "--replicas", "2", "--dir", directory, "--etcd", etcd.url, "--scope", scope, "--archive-repository",
                repository,
            ], in: scratch)
        #expect(initialize.status == 0, "\(initialize.stderr.suffix(2000))")
        let cluster = try #require(LocalCluster.load(directory: directory))
        var agents: [String: FerryProcess.Running] = [:]
        for node in cluster.nodes {
            agents[node.name] = try FerryProcess.start(["agent", "--dir", directory, "--node", node.name, "--ttl", "2"], in: scratch)
        }
        let client = EtcdClient(endpoints: [etcd.url])
        func leader() async -> String? { try? await client.get("/ferry/\(scope)/leader")?.value }
        var restored: PostgresInstance?
        do {
            for _ in 0..<100 where await leader() == nil { try await Task.sleep(for: .milliseconds(100)) }
            #expect(await leader() == "node1")
            let primary = try #require(cluster.node("node1")).instance
            _ = try await primary.psql(
                "CREATE TABLE t (id int PRIMARY KEY, note text); INSERT INTO t SELECT g, 'before' FROM generate_series(1, 1000) g")
            let backup = try await FerryProcess.run(
                [
                    "backup", "full", "--json", "--host", "127.0.0.1", "--port", "\(primary.port)", "--user", primary.user, "--database",
                    primary.database,
                    "--data-directory", primary.dataDirectory, "--repository", repository,
                ], in: scratch, environment: ["PGPASSWORD": primary.password], timeout: .seconds(180))
            #expect(backup.status == 0, "\(backup.stderr)")
            let backupID = try #require(backup.stdout.split(separator: "\"").first { $0.count == 16 && $0.hasSuffix("F") }.map(String.init))

            // The primary stops archiving; two more segments complete and stream to the standbys.
            _ = try await primary.psql("ALTER SYSTEM SET archive_command = '/bin/false'")
            _ = try await primary.psql("SELECT pg_reload_conf()")
            try await Task.sleep(for: .milliseconds(500))
            var unarchived: [String] = []
            for round in 0..<2 {
                _ = try await primary.psql(
                    "INSERT INTO t SELECT g, 'unarchived' FROM generate_series(\(2000 + round * 1000), \(2999 + round * 1000)) g")
                unarchived.append(try await primary.psql("SELECT pg_walfile_name(pg_current_wal_lsn())"))
                _ = try await primary.psql("SELECT pg_switch_wal()")
            }
            let position = try await primary.psql("SELECT pg_current_wal_lsn()")
            for standby in cluster.nodes.dropFirst() {
                var caught = false
                for _ in 0..<300 {
                    if (try? await standby.instance.psql("SELECT pg_last_wal_replay_lsn() >= '\(position)'::pg_lsn")) == "t" {
                        caught = true
                        break
                    }
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(caught, "\(standby.name) received every segment")
            }
            let system = try PostgresControlFile.systemIdentifier(dataDirectory: primary.dataDirectory)
            let archive = WALArchive(repository: LocalRepository(root: repository))
            for name in unarchived { #expect(try !archive.contains(name: name, system: system), "\(name) waits on the dead primary") }
            // `ferry cluster status` names the failing archiver, and shows the backup.
            var statusOutput = ""
            for _ in 0..<100 {
                let status = try await FerryProcess.run(["cluster", "status", "--dir", directory, "--json"], in: scratch)
                statusOutput = status.stdout
                if statusOutput.contains(#""failing":true"#) {
                    #expect(status.status == 1, "a failing archiver is a warning")
                    break
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(statusOutput.contains("archive_command is failing"), "\(statusOutput)")
            #expect(statusOutput.contains(#""newest":"\#(backupID)""#) && statusOutput.contains(#""count":1"#), "\(statusOutput)")

            // The primary's machine dies.
            agents["node1"]?.signal(SIGKILL)
            await primary.kill()
            var promoted: PostgresInstance?
            let crashed = ContinuousClock.now
            while promoted == nil, ContinuousClock.now - crashed < .seconds(30) {
                for node in cluster.nodes.dropFirst() where (try? await node.instance.psql("INSERT INTO t VALUES (100000, 'after')")) != nil {
                    promoted = node.instance
                }
                if promoted == nil { try await Task.sleep(for: .milliseconds(100)) }
            }
            let newPrimary = try #require(promoted)
            // The new primary's agent archived the old timeline's segments from its own pg_wal.
            for name in unarchived {
                var found = false
                for _ in 0..<100 {
                    if try archive.contains(name: name, system: system) {
                        found = true
                        break
                    }
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(
                    found, "\(name) archived after the failover\n\(agents.values.map { String($0.errors().suffix(1500)) }.joined(separator: "\n"))")
            }
            _ = try await newPrimary.psql("INSERT INTO t SELECT g, 'after' FROM generate_series(100001, 101000) g")
            let last = try await newPrimary.psql("SELECT pg_walfile_name(pg_current_wal_lsn())")
            _ = try await newPrimary.psql("SELECT pg_switch_wal()")
            for _ in 0..<300 {
                if try await newPrimary.psql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") >= last { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            let expected = try await newPrimary.psql("SELECT count(*) || '/' || sum(id) FROM t")

            // The backup from before the failover, restored to the latest: both timelines, no segment missing.
            let port = try FreePort.find()
            let target = cluster.serverRoot + "/restored"
            let restore = try await FerryProcess.run(
                [
                    "restore", "--repository", repository, "--target", target, "--backup", backupID, "--port", "\(port)", "--archive-mode", "off",
                    "--ferry-binary", try Sandbox.reachableBinary(FerryProcess.binary, serverRoot: cluster.serverRoot), "--json",
                ], in: scratch, timeout: .seconds(300))
            var instance = primary
            instance.directory = cluster.serverRoot + "/restored-instance"
            instance.externalDataDirectory = target
            instance.port = port
            restored = instance
            #expect(restore.status == 0, "\(restore.stderr)")
            #expect(restore.stdout.contains(#""timeline":3"#), "recovery followed the new timeline and promoted: \(restore.stdout)")
            #expect(try await instance.psql("SELECT count(*) || '/' || sum(id) FROM t") == expected, "every row the new primary holds")
            await instance.stop()

            // The dead machine is replaced: node1 is seeded from the backup as a standby of the new primary (not
            // copied from it), catches up from the archive across the timeline change, then streams.
            try FileManager.default.removeItem(atPath: primary.dataDirectory)
            let seed = try await FerryProcess.run(
                [
                    "restore", "--repository", repository, "--as-standby", "node1", "--dir", directory, "--backup", backupID, "--ferry-binary",
                    try Sandbox.reachableBinary(FerryProcess.binary, serverRoot: cluster.serverRoot),
                ], in: scratch, timeout: .seconds(300))
            #expect(seed.status == 0, "\(seed.stderr)")
            #expect(seed.stdout.contains("standby of"), "\(seed.stdout)")
            agents["node1"] = try FerryProcess.start(["agent", "--dir", directory, "--node", "node1", "--ttl", "2"], in: scratch)
            _ = try await newPrimary.psql("INSERT INTO t VALUES (200000, 'streamed to the seeded node')")
            let streamed = try await newPrimary.psql("SELECT count(*) || '/' || sum(id) FROM t")
            var seeded = ""
            for _ in 0..<600 {
                seeded = (try? await primary.psql("SELECT count(*) || '/' || sum(id) FROM t")) ?? ""
                if seeded == streamed { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(seeded == streamed, "node1, seeded from the backup, follows the new primary\n\(agents["node1"]?.errors().suffix(3000) ?? "")")
            #expect(try await primary.psql("SELECT pg_is_in_recovery()") == "t")
        } catch {
            for agent in agents.values { agent.signal(SIGKILL) }
            if let restored { await restored.stop() }
            await cluster.destroy()
            try? FileManager.default.removeItem(atPath: repository)
            throw error
        }
        for agent in agents.values { agent.signal(SIGKILL) }
        if let restored { await restored.stop() }
        await cluster.destroy()
        try? FileManager.default.removeItem(atPath: repository)
    }
}

/// A node controller whose machine can die: afterwards nothing on it starts or stops.
final class MachineController: NodeController {
    let base: LocalNodeController
    private let dead = Mutex(false)

    init(_ base: LocalNodeController) { self.base = base }

    func dies() { dead.withLock { $0 = true } }
    var isDead: Bool { dead.withLock { $0 } }

    var dataDirectory: String { base.dataDirectory }
    var isRunning: Bool { base.isRunning }
    var startsAsStandby: Bool { base.startsAsStandby }
    func start() async throws {
        if isDead { throw FerryError(.unreachable, "the machine is gone") }
        try await base.start()
    }
    func promote() async throws { try await base.promote() }
    func follow(host: String, port: Int, slot: String) async throws { try await base.follow(host: host, port: port, slot: slot) }
    func configureStandby(host: String, port: Int, slot: String) throws { try base.configureStandby(host: host, port: port, slot: slot) }
    func rewind(host: String, port: Int) async throws -> String { try await base.rewind(host: host, port: port) }
    func copy(host: String, port: Int, slot: String) async throws { try await base.copy(host: host, port: port, slot: slot) }
    func controlData() async -> (checkpoint: UInt64, timeline: Int)? { await base.controlData() }
    func fence() async { if !isDead { await base.fence() } }
    func shutdown() async { if !isDead { await base.shutdown() } }
}
