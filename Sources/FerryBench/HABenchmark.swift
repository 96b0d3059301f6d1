import AsyncHTTPClient
import FerryCluster
import FerryCore
import FerryEtcd
import FerryPostgres
import FerryPostgresNode
package import FerrySandbox
import Foundation
package import Logging
import NIOCore
import NIOHTTP1
import PostgresNIO

#if canImport(Glibc)
    import Glibc
#endif

/// Ferry's HA beside Patroni, in one run, on the same etcd and PostgreSQL 15 binaries: two nodes on loopback, for
/// each of `runs` rounds a planned switchover, a crash of the primary node (`kill -9` of the agent and the
/// postmaster) until the standby takes writes, and the crashed node's return until it streams again; then the
/// replication lag under pgbench. Patroni runs with its defaults and tuned.
package struct HABenchmark: Sendable {
    package struct Options: Sendable {
        package var runs = 5
        /// The `ferry` executable (agents run as `ferry agent` processes).
        package var executable: String
        package var ferryTTL = 3
        package var patroni = "/usr/bin/patroni"
        package var skipPeers = false
        /// pgbench transactions per client for the lag measurement (4 clients).
        package var pgbenchTransactions = 3_000

        package init(executable: String) { self.executable = executable }
    }

    /// One tool's timings over the runs, in seconds.
    package struct Timings: Sendable {
        package var tool: String
        package var switchover: [Double] = []
        package var crashToWritable: [Double] = []
        package var rejoin: [Double] = []
        package var lagP95Bytes: Double?
        package var lagP95Seconds: Double?
    }

    package var options: Options
    package var logger: Logger

    package init(options: Options, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    /// A two-node cluster one tool manages, as the measurement loop needs it.
    protocol Harness {
        var nodes: [String] { get }
        func endpoint(_ node: String) -> PostgresEndpoint
        func leader() async -> String?
        /// Every node's agent (or Patroni) runs and reports.
        func agentsReady() async -> Bool
        func switchover(to node: String) async throws
        /// Kills the node's agent and postmaster with SIGKILL.
        func crash(_ node: String) async
        func restart(_ node: String) async throws
        func stop() async
    }

    package func run(root: String, etcd: EtcdInstance, progress: @escaping @Sendable (String) -> Void) async throws -> [Timings] {
        var results: [Timings] = []
        let ferry = try await FerryHarness.start(root: root + "/ferry", etcd: etcd, options: options, logger: logger)
        progress("ferry: 2 nodes, agents with ttl \(options.ferryTTL) s")
        do {
            results.append(try await measure(ferry, tool: "ferry (ttl \(options.ferryTTL) s)", progress: progress))
        } catch {
            await ferry.stop()
            throw error
        }
        await ferry.stop()
        if !options.skipPeers {
            for (name, ttl, loop, retry) in [
                ("patroni defaults (ttl 30, loop_wait 10)", 30, 10, 10), ("patroni tuned (ttl 10, loop_wait 1)", 10, 1, 3),
            ] {
                progress(name)
                let patroni = try await PatroniHarness.start(
                    root: root + "/patroni-\(ttl)", etcd: etcd, scope: "bench\(ttl)\(UInt16.random(in: 0..<UInt16.max))", ttl: ttl, loopWait: loop,
                    retryTimeout: retry, options: options, logger: logger)
                do {
                    results.append(try await measure(patroni, tool: name, progress: progress))
                } catch {
                    await patroni.stop()
                    throw error
                }
                await patroni.stop()
            }
        }
        return results
    }

    func measure(_ cluster: some Harness, tool: String, progress: @Sendable (String) -> Void) async throws -> Timings {
        var timings = Timings(tool: tool)
        try await waitUntil("a leader and a streaming standby", timeout: .seconds(120)) { await self.isHealthy(cluster) }
        let clock = ContinuousClock()
        for run in 1...options.runs {
            guard let leader = await cluster.leader(), let standby = cluster.nodes.first(where: { $0 != leader }) else {
                throw FerryError(.timeout, "\(tool): no leader")
            }
            // Switchover: from the request until the standby takes a write.
            var start = clock.now
            try await cluster.switchover(to: standby)
            try await waitUntil("\(standby) takes writes", timeout: .seconds(120)) { await self.write(cluster.endpoint(standby)) }
            timings.switchover.append((clock.now - start).seconds)
            try await waitUntil("both nodes healthy after the switchover", timeout: .seconds(180)) { await self.isHealthy(cluster) }

            // Crash of the primary node, until the standby takes a write.
            let primary = standby
            guard let survivor = cluster.nodes.first(where: { $0 != primary }) else { break }
            start = clock.now
            await cluster.crash(primary)
            try await waitUntil("\(survivor) takes writes after the crash", timeout: .seconds(180)) { await self.write(cluster.endpoint(survivor)) }
            timings.crashToWritable.append((clock.now - start).seconds)

            // The crashed node comes back: until it streams from the new primary.
            start = clock.now
            try await cluster.restart(primary)
            try await waitUntil("\(primary) streams again", timeout: .seconds(180)) {
                await self.streams(primary, from: cluster.endpoint(survivor))
            }
            timings.rejoin.append((clock.now - start).seconds)
            progress(
                String(
                    format: "  run %d: switchover %.2f s, crash → writable %.2f s, rejoin %.2f s", run, timings.switchover.last ?? 0,
                    timings.crashToWritable.last ?? 0, timings.rejoin.last ?? 0))
            try await waitUntil("both nodes healthy", timeout: .seconds(180)) { await self.isHealthy(cluster) }
        }
        if let leader = await cluster.leader() {
            let lag = try await lagUnderLoad(cluster.endpoint(leader))
            timings.lagP95Bytes = lag.bytes
            timings.lagP95Seconds = lag.seconds
            progress(String(format: "  replication lag under pgbench: p95 %.0f bytes, %.4f s", lag.bytes, lag.seconds))
        }
        return timings
    }

    func isHealthy(_ cluster: some Harness) async -> Bool {
        guard await cluster.agentsReady(), let leader = await cluster.leader(), await write(cluster.endpoint(leader)) else { return false }
        for node in cluster.nodes where node != leader {
            guard await streams(node, from: cluster.endpoint(leader)) else { return false }
        }
        return true
    }

    /// Whether `endpoint` takes a write now.
    func write(_ endpoint: PostgresEndpoint) async -> Bool {
        let session = PostgresSession(endpoint: endpoint, key: "bench", logger: logger)
        let ok =
            (try? await session.withConnection { connection -> Bool in
                try await connection.query("CREATE TABLE IF NOT EXISTS ferry_ha_bench (at timestamptz DEFAULT now())", logger: logger)
                try await connection.query("INSERT INTO ferry_ha_bench DEFAULT VALUES", logger: logger)
                return true
            }) == true
        await session.close()
        return ok
    }

    /// Whether the primary at `primary` sees `node` streaming (by application name, which both tools set to the
    /// node's name).
    func streams(_ node: String, from primary: PostgresEndpoint) async -> Bool {
        let session = PostgresSession(endpoint: primary, key: "bench", logger: logger)
        let streaming = try? await session.withConnection { connection -> Bool in
            let rows = try await connection.query(
                "SELECT count(*)::int8 FROM pg_stat_replication WHERE application_name = \(node) AND state = 'streaming'", logger: logger)
            for try await count in rows.decode(Int64.self) { return count > 0 }
            return false
        }
        await session.close()
        return streaming == true
    }

    func waitUntil(_ what: String, timeout: Duration, _ condition: () async -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if await condition() { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw FerryError(.timeout, "the benchmark waited in vain until \(what)")
    }

    /// pgbench (4 clients, a fixed number of transactions each) on the primary while the lag of every standby is
    /// sampled every 50 ms from `pg_stat_replication`; the 95th percentiles of bytes and seconds.
    func lagUnderLoad(_ primary: PostgresEndpoint) async throws -> (bytes: Double, seconds: Double) {
        let binaries = try PostgresBinaries.locate()
        let pgbench = binaries.directory + "/pgbench"
        let base = ["-h", primary.host, "-p", "\(primary.port)", "-U", primary.user, primary.database]
        var environment = ProcessInfo.processInfo.environment
        environment["PGPASSWORD"] = primary.password?.value ?? ""
        func pgbenchProcess(_ arguments: [String]) -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: pgbench)
            process.arguments = arguments + base
            process.environment = environment
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            return process
        }
        let initialize = pgbenchProcess(["-i", "-s", "10", "-q"])
        try initialize.run()
        while initialize.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        // A transaction count, not -T: pgbench times -T with SIGALRM, which a Swift process's threads may block.
        let load = pgbenchProcess(["-c", "4", "-n", "-t", "\(options.pgbenchTransactions)"])
        try load.run()
        var bytes: [Double] = []
        var seconds: [Double] = []
        let session = PostgresSession(endpoint: primary, key: "bench", logger: logger)
        while load.isRunning {
            _ = try? await session.withConnection { connection in
                let rows = try await connection.query(
                    """
                    SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8, coalesce(extract(epoch FROM replay_lag), 0)::float8
                    FROM pg_stat_replication WHERE state = 'streaming'
                    """, logger: logger)
                for try await (lagBytes, lagSeconds) in rows.decode((Double?, Double).self) {
                    bytes.append(lagBytes ?? 0)
                    seconds.append(lagSeconds)
                }
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        await session.close()
        func p95(_ values: [Double]) -> Double {
            let sorted = values.sorted()
            return sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.95))]
        }
        return (p95(bytes), p95(seconds))
    }
}

/// Ferry's two nodes: a local cluster with an agent process per node.
struct FerryHarness: HABenchmark.Harness {
    let cluster: LocalCluster
    let operations: ClusterOperations
    let options: HABenchmark.Options
    let agents: AgentPIDs

    final class AgentPIDs: @unchecked Sendable {
        // Used by the benchmark's single task only.
        var pids: [String: Int32] = [:]
    }

    var nodes: [String] { cluster.nodes.map(\.name) }

    static func start(root: String, etcd: EtcdInstance, options: HABenchmark.Options, logger: Logger) async throws -> FerryHarness {
        var cluster = try await LocalCluster.create(directory: root, replicas: 1, logger: logger)
        cluster.etcd = [etcd.url]
        cluster.scope = "bench\(UInt32.random(in: 0..<UInt32.max))"
        try cluster.save()
        let harness = FerryHarness(
            cluster: cluster,
            operations: ClusterOperations(
                etcd: EtcdClient(endpoints: [etcd.url]), scope: cluster.scope!, postgres: cluster.nodes[0].instance.endpoint, logger: logger),
            options: options, agents: AgentPIDs())
        for node in cluster.nodes { try await harness.restart(node.name) }
        return harness
    }

    func endpoint(_ node: String) -> PostgresEndpoint {
        var endpoint = cluster.node(node)!.instance.endpoint
        endpoint.connectTimeout = .seconds(1)
        return endpoint
    }

    func leader() async -> String? { try? await operations.etcd.get(operations.keys.leader)?.value }

    /// Every agent reports, as a primary or a streaming standby.
    func agentsReady() async -> Bool {
        guard let members = try? await operations.members() else { return false }
        return members.count == cluster.nodes.count && members.allSatisfy { $0.role == .primary || ($0.role == .standby && $0.streaming) }
    }

    func switchover(to node: String) async throws { _ = try await operations.switchover(to: node) }

    func crash(_ node: String) async {
        if let pid = agents.pids[node] { ProcessTable.signal(pid, SIGKILL) }
        await cluster.node(node)!.instance.kill()
    }

    func restart(_ node: String) async throws {
        agents.pids[node] = try await DetachedProcess.start(
            [options.executable, "agent", "--dir", cluster.directory, "--node", node, "--ttl", "\(options.ferryTTL)"],
            log: cluster.directory + "/agent-\(node).log")
    }

    func stop() async {
        for pid in agents.pids.values { await ProcessTable.terminate(pid, grace: .seconds(20)) }
        await cluster.destroy()
    }
}

/// Patroni's two nodes (Debian's `patroni`), bootstrapped by Patroni itself on the same etcd (v3 API).
struct PatroniHarness: HABenchmark.Harness {
    let directory: String
    let ports: [String: (postgres: Int, rest: Int)]
    let options: HABenchmark.Options
    let pids: FerryHarness.AgentPIDs
    let logger: Logger
    static let password = "patroni-bench-\(UInt32.random(in: 0..<UInt32.max))"

    var nodes: [String] { ports.keys.sorted() }

    static func start(
        root: String, etcd: EtcdInstance, scope: String, ttl: Int, loopWait: Int, retryTimeout: Int, options: HABenchmark.Options, logger: Logger
    ) async throws -> PatroniHarness {
        guard FileManager.default.isExecutableFile(atPath: options.patroni) else {
            throw FerryError(.invalidInput, "\(options.patroni) not found", fix: "install Debian's patroni (`make setup`), or pass --skip-peers")
        }
        let directory = try Sandbox.reachableServerRoot(for: FileManager.default.currentDirectoryPath + "/" + root)
        try? FileManager.default.removeItem(atPath: directory)
        var ports: [String: (Int, Int)] = [:]
        for name in ["p1", "p2"] { ports[name] = (try FreePort.find(), try FreePort.find()) }
        let binaries = try PostgresBinaries.locate()
        let harness = PatroniHarness(directory: directory, ports: ports, options: options, pids: FerryHarness.AgentPIDs(), logger: logger)
        for name in ["p1", "p2"] {
            try Sandbox.makeServerDirectory(directory + "/" + name)
            let (postgres, rest) = ports[name]!
            let config = """
                scope: \(scope)
                name: \(name)
                restapi: {listen: "127.0.0.1:\(rest)", connect_address: "127.0.0.1:\(rest)"}
                etcd3: {host: "127.0.0.1:\(etcd.clientPort)"}
                bootstrap:
                  dcs:
                    ttl: \(ttl)
                    loop_wait: \(loopWait)
                    retry_timeout: \(retryTimeout)
                    maximum_lag_on_failover: 16777216
                    postgresql:
                      use_pg_rewind: true
                      use_slots: true
                      parameters: {wal_log_hints: "on", hot_standby: "on", wal_keep_size: "256MB"}
                  initdb: [{encoding: UTF8}, data-checksums]
                postgresql:
                  listen: "127.0.0.1:\(postgres)"
                  connect_address: "127.0.0.1:\(postgres)"
                  data_dir: \(directory)/\(name)/data
                  bin_dir: \(binaries.directory)
                  pgpass: \(directory)/\(name)/pgpass
                  authentication:
                    replication: {username: replicator, password: "\(password)"}
                    superuser: {username: postgres, password: "\(password)"}
                    rewind: {username: postgres, password: "\(password)"}
                  parameters: {unix_socket_directories: "\(directory)/\(name)"}
                """
            try config.write(toFile: directory + "/\(name).yml", atomically: true, encoding: .utf8)
        }
        try await harness.restart("p1")
        try await harness.waitForLeader()
        try await harness.restart("p2")
        return harness
    }

    func waitForLeader() async throws {
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline {
            if await leader() != nil { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw FerryError(.timeout, "Patroni elected no leader in 120 s", fix: "read \(directory)/p1.log")
    }

    func endpoint(_ node: String) -> PostgresEndpoint {
        var endpoint = PostgresEndpoint(
            host: "127.0.0.1", port: ports[node]!.postgres, database: "postgres", user: "postgres", password: Secret(Self.password))
        endpoint.tls = .disable
        endpoint.connectTimeout = .seconds(1)
        return endpoint
    }

    /// The node whose REST API says it is the leader (`GET /leader` answers 200 only there).
    func leader() async -> String? {
        for node in nodes {
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(ports[node]!.rest)/leader")
            request.method = .GET
            if let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(1)), response.status == .ok { return node }
        }
        return nil
    }

    /// Both REST APIs answer `GET /health` with 200 (PostgreSQL runs).
    func agentsReady() async -> Bool {
        for node in nodes {
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(ports[node]!.rest)/health")
            request.method = .GET
            guard let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(1)), response.status == .ok else { return false }
        }
        return true
    }

    func switchover(to node: String) async throws {
        guard let leader = await leader() else { throw FerryError(.conflict, "Patroni has no leader") }
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(ports[leader]!.rest)/switchover")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: "{\"leader\":\"\(leader)\",\"candidate\":\"\(node)\"}"))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(120))
        let body = try await response.body.collect(upTo: 1 << 16)
        guard response.status == .ok else {
            throw FerryError(.server, "Patroni refused the switchover: HTTP \(response.status.code) \(String(buffer: body))")
        }
    }

    func crash(_ node: String) async {
        if let pid = pids.pids[node] { ProcessTable.signal(pid, SIGKILL) }
        if let text = try? String(contentsOfFile: directory + "/\(node)/data/postmaster.pid", encoding: .utf8),
            let pid = text.split(separator: "\n").first.flatMap({ Int32($0) })
        {
            ProcessTable.signal(pid, SIGKILL)
            _ = await ProcessTable.waitForExit(pid, timeout: .seconds(10))
        }
        // Orphaned backends exit when they notice the postmaster is gone.
        let deadline = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < deadline, !ProcessTable.pids(workingDirectory: directory + "/\(node)/data").isEmpty {
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    func restart(_ node: String) async throws {
        pids.pids[node] = try await DetachedProcess.start(
            [options.patroni, directory + "/\(node).yml"], log: directory + "/\(node).log", asPostgresUser: true)
    }

    func stop() async {
        for pid in pids.pids.values { await ProcessTable.terminate(pid, grace: .seconds(30)) }
        for node in nodes {
            if let text = try? String(contentsOfFile: directory + "/\(node)/data/postmaster.pid", encoding: .utf8),
                let pid = text.split(separator: "\n").first.flatMap({ Int32($0) })
            {
                await ProcessTable.terminate(pid, grace: .seconds(10))
            }
        }
        try? FileManager.default.removeItem(atPath: directory)
    }
}
