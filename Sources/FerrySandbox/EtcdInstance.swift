package import FerryCore
import FerryPostgresNode
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// One private single-member etcd (Debian's `etcd-server`) on free loopback ports, for the HA cluster's leader key.
package struct EtcdInstance: Sendable, Codable, Hashable {
    package var directory: String
    package var clientPort: Int
    package var peerPort: Int
    package var binary: String

    package var dataDirectory: String { directory + "/data" }
    package var logFile: String { directory + "/etcd.log" }
    package var pidFile: String { directory + "/etcd.pid" }
    /// The v3 JSON API and health endpoint.
    package var url: String { "http://127.0.0.1:\(clientPort)" }

    /// Creates the directory; does not start the server.
    package static func create(directory: String) throws(FerryError) -> EtcdInstance {
        let candidates = ["/usr/bin/etcd", "/usr/local/bin/etcd"]
        guard let binary = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw FerryError(.sandbox, "etcd not found in \(candidates.joined(separator: ", "))", fix: "install Debian's etcd-server (`make setup`)")
        }
        FileSystem.remove(directory)
        try FileSystem.makeDirectory(directory)
        let clientPort = try FreePort.find()
        var peerPort = try FreePort.find()
        while peerPort == clientPort { peerPort = try FreePort.find() }
        return EtcdInstance(directory: directory, clientPort: clientPort, peerPort: peerPort, binary: binary)
    }

    /// Starts etcd in its own session (it outlives this process, like the other sandbox servers) and waits until
    /// `/health` says it is healthy.
    package func start(timeout: Duration = .seconds(30)) async throws(FerryError) {
        if isRunning { return }
        let arguments = [
            binary, "--name", "ferry", "--data-dir", dataDirectory,
            "--listen-client-urls", url, "--advertise-client-urls", url,
            "--listen-peer-urls", "http://127.0.0.1:\(peerPort)", "--initial-advertise-peer-urls", "http://127.0.0.1:\(peerPort)",
            "--initial-cluster", "ferry=http://127.0.0.1:\(peerPort)", "--initial-cluster-state", "new",
            "--heartbeat-interval", "100", "--election-timeout", "1000",
        ].map(DetachedProcess.shellQuote).joined(separator: " ")
        let script =
            "setsid \(arguments) >> \(DetachedProcess.shellQuote(logFile)) 2>&1 < /dev/null & echo $! > \(DetachedProcess.shellQuote(pidFile))"
        let result = try await ProcessRunner.run("/bin/sh", ["-c", script])
        guard result.succeeded else {
            throw FerryError(.sandbox, "etcd did not start on \(url): \(result.standardError.trimmed)", fix: "read \(logFile)")
        }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if RawHTTPProbe.get(port: clientPort, path: "/health")?.contains("\"health\":\"true\"") == true { return }
            if pid.map({ !ProcessTable.isAlive($0) }) == true { break }
            try? await Task.sleep(for: .milliseconds(50))
        }
        throw FerryError(.sandbox, "etcd on \(url) did not become healthy within \(timeout):\n\(logTail)", fix: "read \(logFile)")
    }
}

extension EtcdInstance: PidFileServer {
    package static let processName = "etcd"
}

/// A blocking HTTP/1.0 GET on loopback, only to wait for readiness.
enum RawHTTPProbe {
    static func get(port: Int, path: String) -> String? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        let request = "GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"
        guard request.withCString({ send(fd, $0, strlen($0), 0) }) > 0 else { return nil }
        var response = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            response += buffer[0..<count]
        }
        return String(decoding: response, as: UTF8.self)
    }
}
