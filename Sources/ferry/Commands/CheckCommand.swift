import ArgumentParser
import FerryCheck
import FerryCluster
import FerryCore
import Foundation
import Logging

/// `ferry check`: tries every configured server and says what is wrong with each.
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Try every configured server: reachable, logged in, database present, permissions enough.",
        discussion: """
            For each endpoint prints ok with the round-trip latency, or one of: unreachable (host:port), authentication_failed, database_missing, permission_missing, mirror_writable (a protected mirror that roles other than Ferry's can write) — with what to do about it. With a `cluster:` section it also tries every etcd endpoint (version and health) and every node's PostgreSQL with the cluster's superuser. Exits 1 when any endpoint fails, 2 when the configuration itself is invalid.
            """
    )

    @OptionGroup var options: GlobalOptions

    @Flag(name: .long, help: "Print the results as JSON.")
    var json = false

    func run() async throws {
        let loaded = try options.load()
        let configuration = loaded.configuration
        guard !configuration.endpoints.isEmpty || configuration.cluster != nil else {
            throw FerryError(
                .configuration,
                "nothing to check: no postgres, redis or sqlserver is configured" + (loaded.file.map { " in \($0)" } ?? " (no ferry.yaml found)"),
                fix: "add them to ferry.yaml (see examples/ferry.yaml), set PG_HOST/REDIS_HOST, or run `ferry sandbox up`"
            )
        }
        let checker = EndpointChecker(logger: Logger(label: "ferry.check"))
        var checks = await checker.check(configuration)
        if let cluster = configuration.cluster { checks += try await Self.checkCluster(cluster, file: loaded.file, checker: checker) }
        if json {
            Terminal.print(Self.json(checks))
        } else {
            Terminal.print(Self.table(checks))
        }
        if !checks.allSatisfy(\.isOK) { throw ExitCode(1) }
    }

    /// The cluster's etcd endpoints and nodes.
    static func checkCluster(_ cluster: ClusterConfiguration, file: String?, checker: EndpointChecker) async throws -> [EndpointCheck] {
        let topology: ClusterTopology
        do {
            topology = try ClusterTopology(configuration: cluster, file: file)
        } catch {
            return [
                EndpointCheck(name: "cluster", kind: "cluster", address: cluster.directory, status: .error, detail: error.message, fix: error.fix)
            ]
        }
        var checks = await EtcdCheck(endpoints: topology.etcd).run()
        await withTaskGroup(of: (Int, EndpointCheck).self) { group in
            for (index, node) in topology.nodes.enumerated() {
                group.addTask { (index, await checker.check(name: "cluster.nodes.\(node.name)", endpoint: .postgres(node.endpoint))) }
            }
            var nodes = [EndpointCheck?](repeating: nil, count: topology.nodes.count)
            for await (index, check) in group { nodes[index] = check }
            checks += nodes.compactMap { $0 }
        }
        return checks
    }

    static func table(_ checks: [EndpointCheck]) -> String {
        var table = TextTable(["ENDPOINT", "KIND", "ADDRESS", "STATUS", "LATENCY", "DETAIL"])
        var notes: [String] = []
        for check in checks {
            let status = Terminal.paint(check.status.rawValue, check.isOK ? .green : .red)
            let latency = check.latency.map { "\($0.milliseconds) ms" } ?? "-"
            table.add([check.name, check.kind, check.address, status, latency, check.detail])
            if let fix = check.fix { notes.append("\(check.name): \(Terminal.paint("fix:", .yellow)) \(fix)") }
            for warning in check.warnings { notes.append("\(check.name): \(Terminal.paint("warning:", .yellow)) \(warning)") }
        }
        return table.render() + (notes.isEmpty ? "" : "\n\n" + notes.joined(separator: "\n"))
    }

    static func json(_ checks: [EndpointCheck]) -> String {
        var out = "{\"ok\":\(checks.allSatisfy(\.isOK)),\"endpoints\":["
        for (index, check) in checks.enumerated() {
            if index > 0 { out += "," }
            out += "{\"name\":\(JSONText.string(check.name)),\"kind\":\(JSONText.string(check.kind)),"
            out += "\"address\":\(JSONText.string(check.address)),\"status\":\(JSONText.string(check.status.rawValue)),"
            out += "\"latency_ms\":\(check.latency.map { "\($0.milliseconds)" } ?? "null"),"
            out += "\"detail\":\(JSONText.string(check.detail)),\"fix\":\(check.fix.map(JSONText.string) ?? "null"),"
            out += "\"warnings\":[\(check.warnings.map(JSONText.string).joined(separator: ","))]}"
        }
        return out + "]}"
    }
}
