import FerryCluster
import FerryCore
import FerryEtcd
import FerryPostgres
import FerryPostgresNode
import FerrySandbox
import Foundation
import Logging
import PostgresNIO
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A three-node local cluster built with `ferry cluster init`, an agent process per node (`ferry agent`, watchdog
/// included) on the suite's etcd, and helpers to look at it.
final class HAWorld: Sendable {
    let directory: String
    let scratch: String
    let scope: String
    let cluster: LocalCluster
    let etcd: EtcdInstance
    let client: EtcdClient
    let keys: ClusterKeys
    let logger = Logger(label: "ferry.test.ha")
    let agents = Mutex<[String: FerryProcess.Running]>([:])
    let ttl: Int

    init(
        directory: String, scratch: String, scope: String, cluster: LocalCluster, etcd: EtcdInstance, client: EtcdClient, keys: ClusterKeys, ttl: Int
    ) {
        self.directory = directory
        self.scratch = scratch
        self.scope = scope
        self.cluster = cluster
        self.etcd = etcd
        self.client = client
        self.keys = keys
        self.ttl = ttl
    }

    static func make(replicas: Int = 2, synchronous: Int = 0, ttl: Int = 2) async throws -> HAWorld {
        let sandbox = try SandboxContext.require()
        let etcd = try #require(sandbox.etcd)
        let directory = FerryProcess.packageRoot + "/.ferry/test/ha-\(UUID().uuidString.prefix(8))"
        let scratch = try FerryProcess.scratchDirectory()
        let scope = "ha\(UInt32.random(in: 0..<UInt32.max))"
        var arguments = ["cluster", "init", "--local", "--replicas", "\(replicas)", "--dir", directory, "--etcd", etcd.url, "--scope", scope]
        if synchronous > 0 { arguments += ["--synchronous", "\(synchronous)"] }
        let initialize = try await FerryProcess.run(arguments, in: scratch)
        #expect(initialize.status == 0, "\(initialize.stderr.suffix(2000))")
        let cluster = try #require(LocalCluster.load(directory: directory))
        let world = HAWorld(
            directory: directory, scratch: scratch, scope: scope, cluster: cluster, etcd: etcd, client: EtcdClient(endpoints: [etcd.url]),
            keys: ClusterKeys(scope: scope), ttl: ttl)
        for node in cluster.nodes { try world.startAgent(node.name) }
        try await world.waitFor("node1 leads and every standby streams") {
            guard await world.leader() == "node1" else { return false }
            return try await world.client.list(prefix: world.keys.members).count == cluster.nodes.count
        }
        try await world.waitFor("every standby streams") { await world.streamingStandbys().count == replicas }
        return world
    }

    /// Runs `body` on a new world and always destroys it afterwards; when `body` throws, `onFailure` runs first
    /// (to undo what the test did to the world, e.g. a stopped etcd or a frozen agent).
    static func with(
        replicas: Int = 2, synchronous: Int = 0, ttl: Int = 2, onFailure: (HAWorld) async -> Void = { _ in },
        _ body: (HAWorld) async throws -> Void
    ) async throws {
        let world = try await make(replicas: replicas, synchronous: synchronous, ttl: ttl)
        do {
            try await body(world)
        } catch {
            await onFailure(world)
            await world.destroy()
            throw error
        }
        await world.destroy()
    }

    func startAgent(_ node: String) throws {
        let process = try FerryProcess.start(
            ["agent", "--dir", directory, "--node", node, "--ttl", "\(ttl)", "--loop-interval", "200ms"], in: scratch)
        agents.withLock { $0[node] = process }
    }

    func agent(_ node: String) -> FerryProcess.Running? { agents.withLock { $0[node] } }

    func instance(_ node: String) -> PostgresInstance { cluster.node(node)!.instance }

    func leader() async -> String? { try? await client.get(keys.leader)?.value }

    /// Nodes whose PostgreSQL answers as a primary right now.
    func primaries() async -> [String] {
        var names: [String] = []
        for node in cluster.nodes where (try? await node.instance.psql("SELECT NOT pg_is_in_recovery()")) == "t" {
            names.append(node.name)
        }
        return names
    }

    /// Standbys the leader sees streaming.
    func streamingStandbys() async -> [String] {
        let status = await ClusterInspector.inspect(cluster.nodes.map { ($0.name, $0.instance.endpoint) }, logger: logger)
        return status.nodes.filter { $0.role == "standby" && $0.state == "streaming" }.map(\.name)
    }

    /// ``eventually(_:timeout:every:diagnostics:_:)`` with every agent's and server's log on a time-out.
    func waitFor(_ what: @autoclosure () -> String, timeout: Duration = .seconds(60), _ condition: () async throws -> Bool) async throws {
        try await eventually(what(), timeout: timeout, diagnostics: agentLogs(), condition)
    }

    /// The last lines of every agent's log and of every node's server log, for a failure message.
    func agentLogs() -> String {
        let agentTails = agents.withLock { agents in
            agents.sorted { $0.key < $1.key }.map {
                "--- agent \($0.key)\n" + $0.value.errors().split(separator: "\n").suffix(25).joined(separator: "\n")
            }
        }
        let serverTails = cluster.nodes.map {
            "--- postgres \($0.name)\n"
                + ((try? String(contentsOfFile: $0.instance.logFile, encoding: .utf8)) ?? "").split(separator: "\n").suffix(15).joined(
                    separator: "\n")
        }
        return (agentTails + serverTails).joined(separator: "\n")
    }

    func destroy() async {
        for agent in agents.withLock({ Array($0.values) }) { agent.signal(SIGKILL) }
        for agent in agents.withLock({ Array($0.values) }) { _ = try? await agent.wait(timeout: .seconds(10)) }
        await cluster.destroy()
        try? FileManager.default.removeItem(atPath: scratch)
    }
}

/// Writes numbered rows into `ha_t` on whichever node takes writes, as fast as it can, and records every insert
/// PostgreSQL acknowledged.
final class HAWriter: Sendable {
    let acknowledged = Mutex<[Int]>([])
    let failures = Atomic(0)
    /// The last failed insert and the node the writer tries now, for a failure message.
    let lastError = Mutex<String?>(nil)
    let writingTo = Atomic(0)
    private let stopped = Atomic(false)
    let names: [String]
    let endpoints: [PostgresEndpoint]
    let logger: Logger

    init(_ world: HAWorld) {
        names = world.cluster.nodes.map(\.name)
        endpoints = world.cluster.nodes.map {
            var endpoint = $0.instance.endpoint
            endpoint.connectTimeout = .seconds(1)
            return endpoint
        }
        logger = world.logger
    }

    func stop() { stopped.store(true, ordering: .relaxed) }

    func run() async {
        var next = 1
        var target = 0
        var sessions = endpoints.map { PostgresSession(endpoint: $0, key: "postgres", logger: logger) }
        while !stopped.load(ordering: .relaxed) && !Task.isCancelled {
            do {
                try await sessions[target].withConnection { connection in
                    try await connection.query("INSERT INTO ha_t (id) VALUES (\(next))", logger: logger)
                }
                acknowledged.withLock { $0.append(next) }
                next += 1
            } catch {
                // A failed insert is in doubt, not undone: a primary killed after its commit reached a standby but
                // before the acknowledgement reached us leaves the row on the new primary. The next try uses a new id.
                next += 1
                failures.add(1, ordering: .relaxed)
                lastError.withLock { $0 = "\(names[target]): \(String(reflecting: error).prefix(300))" }
                await sessions[target].close()
                sessions[target] = PostgresSession(endpoint: endpoints[target], key: "postgres", logger: logger)
                target = (target + 1) % endpoints.count
                writingTo.store(target, ordering: .relaxed)
                try? await Task.sleep(for: .milliseconds(10))
            }
        }
        for session in sessions { await session.close() }
    }

    var count: Int { acknowledged.withLock { $0.count } }

    var status: String {
        "writing to \(names[writingTo.load(ordering: .relaxed)]); last failed insert: \(lastError.withLock { $0 } ?? "none")"
    }

    /// Waits until `more` further inserts were acknowledged.
    func waitForProgress(_ more: Int, timeout: Duration = .seconds(30)) async -> Bool {
        let goal = count + more
        return (try? await eventually("\(more) more inserts", timeout: timeout, every: .milliseconds(20)) { count >= goal }) != nil
    }
}
