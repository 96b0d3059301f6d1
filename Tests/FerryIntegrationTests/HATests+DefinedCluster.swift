import FerryBackup
import FerryCore
import FerryPostgresNode
import FerrySandbox
import Foundation
import Logging
import Testing

@testable import FerryCluster

#if canImport(Glibc)
    import Glibc
#endif

/// A cluster defined node by node in ferry.yaml, as on three hosts: one running PostgreSQL with data (node1) and two
/// empty data directories, node3's configuration apart from its data (Debian's layout). `ferry cluster init --config` prepares the primary, the agents copy it into the empty
/// nodes, and the commands work from the same file.
extension HATests {
    @Test func aClusterDefinedInFerryYamlIsPreparedFilledAndSwitchedOver() async throws {
        let sandbox = try SandboxContext.require()
        let etcd = try #require(sandbox.etcd)
        let logger = Logger(label: "ferry.test.defined")
        let root = FerryProcess.packageRoot + "/.ferry/test/defined-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let servers = try Sandbox.reachableServerRoot(for: root)
        let scratch = try FerryProcess.scratchDirectory()
        let primary = try await PostgresInstance.create(
            directory: servers + "/node1", settings: ["hot_standby": "on"], cache: Sandbox.cacheDirectory(serverRoot: servers, root: root),
            logger: logger)
        try await primary.start()
        _ = try await primary.psql("CREATE TABLE defined_t (id int PRIMARY KEY); INSERT INTO defined_t SELECT generate_series(1, 1000)")
        let ports = [primary.port, try FreePort.find(), try FreePort.find()]
        let scope = "def\(UInt32.random(in: 0..<UInt32.max))"
        let httpPort = try FreePort.find()
        // Every node archives into one repository (from `backup:`), through a ferry PostgreSQL's account can run.
        let repository = servers + "/repository"
        try FileManager.default.createDirectory(atPath: repository, withIntermediateDirectories: true)
        try Sandbox.makeServerDirectory(repository)
        let ferryBinary = try Sandbox.reachableBinary(FerryProcess.binary, serverRoot: servers)
        let yaml = """
            http: {port: \(httpPort)}
            cluster:
              node: node1
              ttl: 2
              scope: \(scope)
              etcd: [\(etcd.url)]
              state_directory: \(servers)/state
              ferry_binary: \(ferryBinary)
              replication: {user: ferry_standby, password: "${REPLICATION_PASSWORD}"}
              superuser: {user: \(primary.user), password: "${SUPERUSER_PASSWORD}"}
              nodes:
                - {name: node1, host: 127.0.0.1, port: \(ports[0]), data_directory: \(primary.dataDirectory)}
                - {name: node2, host: 127.0.0.1, port: \(ports[1]), data_directory: \(servers)/node2/data}
                - {name: node3, host: 127.0.0.1, port: \(ports[2]), data_directory: \(servers)/node3/data, config_directory: \(servers)/node3-etc}
            backup:
              repository: \(repository)
              data_directory: \(primary.dataDirectory)
              postgres: {host: 127.0.0.1, port: \(ports[0]), user: \(primary.user), password: "${SUPERUSER_PASSWORD}", database: postgres}
            """
        // node3 keeps its configuration apart from its (still empty) data, as Debian's pg_createcluster does.
        let etc = servers + "/node3-etc"
        try FileManager.default.createDirectory(atPath: etc, withIntermediateDirectories: true)
        try """
        data_directory = '\(servers)/node3/data'
        hba_file = '\(etc)/pg_hba.conf'
        ident_file = '\(etc)/pg_ident.conf'
        port = \(ports[2])
        listen_addresses = '127.0.0.1'
        unix_socket_directories = ''
        max_connections = 200
        wal_level = replica
        hot_standby = on
        wal_log_hints = on
        logging_collector = off

        """.write(toFile: etc + "/postgresql.conf", atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(atPath: primary.dataDirectory + "/pg_hba.conf", toPath: etc + "/pg_hba.conf")
        try "".write(toFile: etc + "/pg_ident.conf", atomically: true, encoding: .utf8)
        try Sandbox.makeServerDirectory(etc)
        try yaml.write(toFile: scratch + "/ferry.yaml", atomically: true, encoding: .utf8)
        let environment = ["REPLICATION_PASSWORD": "standby-secret-\(scope)", "SUPERUSER_PASSWORD": primary.password]
        var agents: [String: FerryProcess.Running] = [:]
        let nodes = ["node1", "node2", "node3"].map { name in
            var instance = primary
            instance.directory = servers + "/state/" + name
            instance.port = ports[Int(name.dropFirst(4))! - 1]
            instance.externalDataDirectory = name == "node1" ? primary.dataDirectory : servers + "/\(name)/data"
            if name == "node3" { instance.configDirectory = servers + "/node3-etc" }
            return (name, instance)
        }
        func cleanUp() async {
            for agent in agents.values { agent.signal(SIGKILL) }
            for agent in agents.values { _ = try? await agent.wait(timeout: .seconds(10)) }
            for (_, instance) in nodes { await instance.stopImmediately() }
            await primary.stopImmediately()
            try? FileManager.default.removeItem(atPath: servers)
            try? FileManager.default.removeItem(atPath: root)
            try? FileManager.default.removeItem(atPath: scratch)
        }
        func waitFor(_ what: String, timeout: Duration = .seconds(90), _ condition: () async throws -> Bool) async throws {
            let logs = { agents.sorted { $0.key < $1.key }.map { "--- \($0.key)\n" + $0.value.errors().suffix(3000) }.joined(separator: "\n") }
            try await eventually(what, timeout: timeout, every: .milliseconds(200), diagnostics: logs(), condition)
        }
        do {
            // The primary is prepared: role, slots, settings. Running it again changes nothing.
            let first = try await FerryProcess.run(["cluster", "init", "--json"], in: scratch, environment: environment)
            #expect(first.status == 0, "\(first.stderr)")
            print("cluster init from ferry.yaml: \(first.stdout)")
            #expect(first.stdout.contains("\"primary\":\"node1\""), "\(first.stdout)")
            #expect(first.stdout.contains("created role ferry_standby"), "\(first.stdout)")
            #expect(first.stdout.contains("created slot node2") && first.stdout.contains("created slot node3"), "\(first.stdout)")
            #expect(!first.stdout.contains(environment["REPLICATION_PASSWORD"]!), "the password is never printed")
            #expect(
                first.stdout.contains("ALTER SYSTEM SET archive_command = '\(ferryBinary) wal push %p --repository \(repository)'"), "\(first.stdout)"
            )
            let restartNeeded = first.stdout.components(separatedBy: #""restart_needed":["#).last?.prefix { $0 != "]" } ?? ""
            #expect(restartNeeded.contains("archive_mode"), "\(first.stdout)")
            // archive_mode takes a restart, as the command said.
            await primary.stop()
            try await primary.start()
            let again = try await FerryProcess.run(["cluster", "init", "--json"], in: scratch, environment: environment)
            #expect(again.status == 0 && !again.stdout.contains("created") && !again.stdout.contains("ALTER SYSTEM"), "\(again.stdout)")
            #expect(try await primary.psql("SELECT count(*) FROM pg_replication_slots") == "2")
            // A backup from the same file (without one, `ferry cluster status` warns).
            let backup = try await FerryProcess.run(["backup", "full", "--json"], in: scratch, environment: environment, timeout: .seconds(180))
            #expect(backup.status == 0, "\(backup.stderr)")

            // node1's agent runs inside `ferry run` (cluster.node), the others as `ferry agent`.
            agents["node1"] = try FerryProcess.start(["run"], in: scratch, environment: environment)
            for name in ["node2", "node3"] {
                agents[name] = try FerryProcess.start(
                    ["agent", "--node", name, "--ttl", "2", "--loop-interval", "200ms"], in: scratch, environment: environment)
            }
            // The empty nodes are copies of node1 and stream from it.
            try await waitFor("node2 and node3 stream from node1") {
                let status = try await FerryProcess.run(["cluster", "status", "--json"], in: scratch, environment: environment)
                return status.status == 0 && status.stdout.components(separatedBy: "\"state\":\"streaming\"").count == 3
            }
            for (name, instance) in nodes where name != "node1" {
                #expect(try await instance.psql("SELECT count(*) FROM defined_t") == "1000", "\(name) holds node1's rows")
            }
            // `ferry cluster status` shows the backup and the archiver.
            let status = try await FerryProcess.run(["cluster", "status", "--json"], in: scratch, environment: environment)
            #expect(status.status == 0, "\(status.stdout)")
            #expect(status.stdout.contains(#""count":1"#) && status.stdout.contains(#""newest_kind":"full""#), "\(status.stdout)")
            #expect(status.stdout.contains(#""archive":{"#) && status.stdout.contains(#""failing":false"#), "\(status.stdout)")
            // `ferry check` tries the cluster's etcd and every node.
            let check = try await FerryProcess.run(["check", "--json"], in: scratch, environment: environment)
            #expect(check.status == 0, "\(check.stdout)\n\(check.stderr)")
            #expect(check.stdout.contains("\"name\":\"cluster.etcd[0]\",\"kind\":\"etcd\""), "\(check.stdout)")
            #expect(check.stdout.components(separatedBy: "\"kind\":\"postgresql\"").count == 4, "\(check.stdout)")
            // A planned switchover from the same file; the old primary follows and new writes reach every node.
            let switchover = try await FerryProcess.run(
                ["cluster", "switchover", "--to", "node3", "--json"], in: scratch, environment: environment)
            #expect(switchover.status == 0, "\(switchover.stderr)")
            print("switchover in a defined cluster: \(switchover.stdout)")
            let node3 = nodes[2].1
            try await waitFor("node3 takes writes") { try await node3.psql("SELECT NOT pg_is_in_recovery()") == "t" }
            // The new primary archives: its timeline's history file reaches the repository.
            let system = try PostgresControlFile.systemIdentifier(dataDirectory: primary.dataDirectory)
            let archive = WALArchive(repository: LocalRepository(root: repository))
            try await waitFor("node3 archives timeline 2's history") { try archive.contains(name: "00000002.history", system: system) }
            _ = try await node3.psql("INSERT INTO defined_t SELECT generate_series(1001, 1500)")
            try await waitFor("node1 and node2 follow node3 with every row") {
                for (name, instance) in nodes where name != "node3" {
                    guard try await instance.psql("SELECT count(*) FROM defined_t") == "1500" else { return false }
                }
                return true
            }
            // node3's host dies (agent and postmaster): a standby takes over; node3's agent, started again, rewinds
            // it (pg_rewind reading node3's own postgresql.conf) and it follows.
            agents["node3"]?.signal(SIGKILL)
            await node3.kill()
            try await waitFor("node1 or node2 takes writes") {
                for (name, instance) in nodes where name != "node3" {
                    if try await instance.psql("SELECT NOT pg_is_in_recovery()") == "t" { return true }
                }
                return false
            }
            agents["node3"] = try FerryProcess.start(
                ["agent", "--node", "node3", "--ttl", "2", "--loop-interval", "200ms"], in: scratch, environment: environment)
            try await waitFor("node3 rejoins and streams") {
                let status = try await FerryProcess.run(["cluster", "status", "--json"], in: scratch, environment: environment)
                return status.status == 0 && status.stdout.components(separatedBy: "\"state\":\"streaming\"").count == 3
            }
            #expect(try await node3.psql("SHOW port") == "\(ports[2])")
            #expect(try await node3.psql("SHOW config_file") == etc + "/postgresql.conf", "node3 runs from its own configuration")
            let rejoined = agents["node3"]?.errors() ?? ""
            #expect(rejoined.contains("rejoined the cluster") && !rejoined.contains("pg_basebackup"), "rewound, not copied again: \(rejoined)")
            #expect(try await node3.psql("SELECT count(*) FROM defined_t") == "1500")
        } catch {
            await cleanUp()
            throw error
        }
        await cleanUp()
    }
}

/// How `ferry cluster init` compares the server's settings (value and unit from pg_settings) with what it needs.
@Suite struct ClusterBootstrapSettingsTests {
    @Test func theArchiveCommandQuotesWhatTheShellWouldSplit() {
        #expect(
            ClusterBootstrap.archiveCommand(repository: "/backups/wal", binary: "/usr/local/bin/ferry")
                == "/usr/local/bin/ferry wal push %p --repository /backups/wal")
        #expect(
            ClusterBootstrap.archiveCommand(repository: "s3://bucket/prefix", binary: "/opt/ferry")
                == "/opt/ferry wal push %p --repository s3://bucket/prefix")
        #expect(ClusterBootstrap.shellWord("/my backups/it's") == #"'/my backups/it'\''s'"#)
        #expect(ClusterBootstrap.shellWord("/a;rm -rf /") == "'/a;rm -rf /'")
        #expect(ClusterBootstrap.shellWord("/a$(x)") == "'/a$(x)'")
    }

    @Test func backupsThatNeedAttentionAreWarnedAbout() {
        var overview = BackupOverview(repository: "/backups")
        #expect(ClusterInspector.backupWarnings(overview, every: nil).first?.contains("no backup in /backups yet") == true)
        overview.count = 2
        overview.newest = "20261207T100000I"
        overview.newestAgeSeconds = 3 * 86_400
        overview.running = false
        #expect(ClusterInspector.backupWarnings(overview, every: nil).isEmpty, "no schedule: no age limit")
        #expect(ClusterInspector.backupWarnings(overview, every: .seconds(86_400)).first?.contains("more than twice the schedule's 1d") == true)
        overview.newestAgeSeconds = 3600
        #expect(ClusterInspector.backupWarnings(overview, every: .seconds(86_400)).isEmpty)
        overview.unfinished = ["20261207T110000F"]
        #expect(ClusterInspector.backupWarnings(overview, every: nil).first?.contains("did not finish (20261207T110000F)") == true)
        overview.running = true
        #expect(ClusterInspector.backupWarnings(overview, every: nil).isEmpty, "a backup running now is not a failure")
        overview.error = "permission denied"
        #expect(ClusterInspector.backupWarnings(overview, every: nil) == ["the backup repository /backups cannot be read: permission denied"])
    }

    @Test func settingsAreComparedInTheServersUnits() {
        #expect(ClusterBootstrap.matches("on", unit: nil, "on"))
        #expect(!ClusterBootstrap.matches("off", unit: nil, "on"))
        #expect(ClusterBootstrap.matches("logical", unit: nil, "replica"), "logical includes what replica gives")
        #expect(!ClusterBootstrap.matches("minimal", unit: nil, "replica"))
        #expect(ClusterBootstrap.matches("256", unit: "MB", "256MB"))
        #expect(ClusterBootstrap.matches("4096", unit: "MB", "4GB"))
        #expect(!ClusterBootstrap.matches("-1", unit: "MB", "4GB"))
        #expect(ClusterBootstrap.matches("10000", unit: "ms", "10s"))
        #expect(ClusterBootstrap.matches("1", unit: "s", "1s"))
        #expect(ClusterBootstrap.matches("32768", unit: "8kB", "256MB"))
        #expect(!ClusterBootstrap.matches("60000", unit: "ms", "10s"))
    }
}
