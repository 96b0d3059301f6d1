import FerryCore
import NIOCore
import NIOPosix

/// Whether something accepts TCP connections at `host:port`: all Ferry can check for servers whose connector is
/// not built yet.
enum TCPCheck {
    static func run(name: String, kind: String, host: String, port: Int, timeout: Duration) async -> EndpointCheck {
        let address = "\(host):\(port)"
        let clock = ContinuousClock()
        let start = clock.now
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.nanoseconds(Int64(timeout.seconds * 1e9)))
                .connect(host: host, port: port).get()
            let latency = clock.now - start
            try? await channel.close()
            return EndpointCheck(
                name: name, kind: kind, address: address, status: .ok, latency: latency,
                detail: "TCP reachable; login is not checked yet (the SQL Server connector is not part of this build)"
            )
        } catch {
            return EndpointCheck(
                name: name, kind: kind, address: address, status: .unreachable,
                detail: "cannot connect: \(error)", fix: "check that the server runs and \(name).host/\(name).port are right"
            )
        }
    }
}
