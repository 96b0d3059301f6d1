import FerryCore
import FerryEtcd

/// Each etcd endpoint of a cluster: its version and health. Used by `ferry check` and by the daemon's readiness
/// when a `cluster:` section is present.
package struct EtcdCheck: Sendable {
    package let endpoints: [String]
    let client: EtcdClient

    package init(endpoints: [String]) {
        self.endpoints = endpoints
        self.client = EtcdClient(endpoints: endpoints)
    }

    package func run() async -> [EndpointCheck] {
        var checks: [EndpointCheck] = []
        for (index, endpoint) in endpoints.enumerated() {
            let name = "cluster.etcd[\(index)]"
            let address = EtcdClient.address(endpoint)
            let started = ContinuousClock.now
            do {
                let (version, healthy) = try await client.probe(endpoint)
                var check = EndpointCheck(
                    name: name, kind: "etcd", address: address, status: .ok, latency: ContinuousClock.now - started, detail: "etcd \(version)")
                if !healthy {
                    check.warnings.append("etcd answers but reports itself unhealthy (no quorum?): no failover can happen until it is healthy")
                }
                checks.append(check)
            } catch {
                checks.append(EndpointCheck(name: name, kind: "etcd", address: address, status: .unreachable, detail: error.message, fix: error.fix))
            }
        }
        return checks
    }
}
