import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A minimal HTTP/1.0 GET over a loopback socket, so tests need no HTTP client dependency.
enum HTTPProbe {
    struct Response {
        var status: Int
        var body: String
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func get(port: Int, path: String, headers: [String: String] = [:]) async throws -> Response {
        try await request("GET", port: port, path: path, headers: headers)
    }

    static func request(_ method: String, port: Int, path: String, headers: [String: String] = [:], body: String = "") async throws -> Response {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket failed") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw Failure(description: "connection refused on \(port)") }
        var request = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: \(body.utf8.count)\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        request += "\r\n" + body
        _ = request.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        var data = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(fd, &chunk, chunk.count, 0)
            if count <= 0 { break }
            data += chunk[0..<count]
        }
        let text = String(decoding: data, as: UTF8.self)
        guard let statusLine = text.split(separator: "\r\n").first, let code = statusLine.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
        else {
            throw Failure(description: "no HTTP response")
        }
        let body = text.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
        return Response(status: code, body: body)
    }

    /// Polls until `path` answers with `status`.
    static func waitFor(port: Int, path: String, headers: [String: String] = [:], status: Int, timeout: Duration) async throws -> Response {
        var last: Response?
        do {
            try await eventually("GET \(path) to answer \(status)", timeout: timeout) {
                last = try await get(port: port, path: path, headers: headers)
                return last?.status == status
            }
        } catch let timedOut as TimedOut {
            throw Failure(description: "\(timedOut); last: \(last.map { "\($0.status) \($0.body)" } ?? "nothing")")
        }
        guard let last else { throw Failure(description: "GET \(path): no response") }
        return last
    }
}
