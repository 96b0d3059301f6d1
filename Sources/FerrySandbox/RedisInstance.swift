package import FerryCore
import FerryPostgresNode
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// One private Redis server: loopback port, password, AOF with `appendfsync everysec`, `noeviction`.
package struct RedisInstance: Sendable, Codable, Hashable {
    package var directory: String
    package var port: Int
    /// `nil` for a server without `requirepass`.
    package var password: String?
    package var serverPath: String
    /// Extra `redis.conf` lines.
    package var extraConfiguration: [String]

    package var configFile: String { directory + "/redis.conf" }
    package var logFile: String { directory + "/redis.log" }
    package var pidFile: String { directory + "/redis.pid" }

    package var endpoint: RedisEndpoint {
        RedisEndpoint(host: "127.0.0.1", port: port, password: password.map(Secret.init))
    }

    package var url: String { "redis://\(password == nil ? "" : ":***@")127.0.0.1:\(port)/0" }

    /// Creates the directory and configuration; does not start the server.
    package static func create(
        directory: String,
        port: Int? = nil,
        password: Bool = true,
        extraConfiguration: [String] = []
    ) throws(FerryError) -> RedisInstance {
        let instance = RedisInstance(
            directory: directory,
            port: port != nil ? port! : try FreePort.find(),
            password: password ? PostgresTemplate.randomPassword() : nil,
            serverPath: try RedisBinaries.locateServer(),
            extraConfiguration: extraConfiguration
        )
        FileSystem.remove(directory)
        try FileSystem.makeDirectory(directory)
        try instance.writeConfiguration()
        return instance
    }

    func writeConfiguration() throws(FerryError) {
        var lines = [
            "# written by Ferry's sandbox",
            "bind 127.0.0.1",
            "port \(port)",
            "dir \(directory)",
            "daemonize yes",
            "pidfile \(pidFile)",
            "logfile \(logFile)",
            "appendonly yes",
            "appendfsync everysec",
            "maxmemory-policy noeviction",
            "save \"\"",
            "enable-debug-command local",
            "databases 16",
        ]
        if let password { lines.append("requirepass \(password)") }
        lines += extraConfiguration
        try FileSystem.write(lines.joined(separator: "\n") + "\n", to: configFile, mode: 0o600)
    }

    /// Starts the server and waits until it answers PING (AOF loaded).
    package func start(timeout: Duration = .seconds(30)) async throws(FerryError) {
        if isRunning { return }
        FileSystem.remove(pidFile)
        let result = try await ProcessRunner.run(serverPath, [configFile])
        guard result.succeeded else {
            throw FerryError(.sandbox, "redis-server did not start on 127.0.0.1:\(port): \(result.standardError.trimmed)", fix: "read \(logFile)")
        }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if RawRedisProbe.ping(port: port, password: password) { return }
            try? await Task.sleep(for: .milliseconds(20))
        }
        throw FerryError(.sandbox, "redis-server on 127.0.0.1:\(port) did not become ready within \(timeout):\n\(logTail)", fix: "read \(logFile)")
    }
}

extension RedisInstance: PidFileServer {
    package static let processName = "redis-server"
}

/// A tiny blocking probe used only to wait for readiness, independent of Ferry's client.
enum RawRedisProbe {
    static func ping(port: Int, password: String?) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
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
        guard connected == 0 else { return false }
        var request = ""
        if let password { request += "*2\r\n$4\r\nAUTH\r\n$\(password.utf8.count)\r\n\(password)\r\n" }
        request += "*1\r\n$4\r\nPING\r\n"
        let sent = request.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        guard sent > 0 else { return false }
        var reply = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 256)
        while !String(decoding: reply, as: UTF8.self).contains("PONG") {
            let count = recv(fd, &chunk, chunk.count, 0)
            guard count > 0 else { return false }
            reply += chunk[0..<count]
            if String(decoding: reply, as: UTF8.self).contains("-LOADING") { return false }
            if reply.count > 4096 { return false }
        }
        return true
    }
}
