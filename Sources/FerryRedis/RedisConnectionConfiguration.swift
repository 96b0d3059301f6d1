package import FerryCore
package import FerryRESP
package import NIOSSL

/// How one connection reaches and greets a Redis server.
package struct RedisConnectionConfiguration: Sendable {
    package var host: String
    package var port: Int
    /// ACL user; `nil` authenticates as `default` when a password is given.
    package var user: String?
    package var password: Secret?
    /// Database index selected after connecting. Default 0.
    package var database: Int = 0
    /// Sent with `CLIENT SETNAME` so operators can see who is connected. Default `ferry`.
    package var clientName: String? = "ferry"
    /// TLS configuration; `nil` for plain TCP.
    package var tls: TLSConfiguration?
    /// Default 5 seconds.
    package var connectTimeout: Duration = .seconds(5)
    /// Deadline of a non-blocking command (or pipeline). Default 30 seconds.
    package var commandTimeout: Duration = .seconds(30)
    /// Added to a blocking command's own timeout to form its deadline. Default 2 seconds.
    package var blockingMargin: Duration = .seconds(2)
    /// Ask for RESP3 (`HELLO 3`), falling back to RESP2 on servers without `HELLO`. Default true.
    package var preferRESP3: Bool = true
    /// Limits on replies.
    package var decoderLimits: RESPFrameScanner.Limits = .init()
    /// After each write that awaits a reply, ask Linux to keep this CPU's timer tick running while it waits
    /// (two `epoll_ctl` DEL + ADD cycles on a private epoll set; see `IdleTickHint`). On virtual machines, where
    /// stopping and restarting the tick of an idle CPU costs exits to the hypervisor, that takes 10–20 µs off
    /// each round trip whose reply comes after the CPU went idle; it costs about 2 µs of system time per write.
    /// Linux only. Default true; `redis.idle_tick_hint` in `ferry.yaml`.
    package var idleTickHint: Bool = true

    package init(host: String, port: Int, user: String? = nil, password: Secret? = nil, database: Int = 0) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
    }

    /// From an endpoint in Ferry's configuration.
    package init(_ endpoint: RedisEndpoint) {
        self.init(host: endpoint.host, port: endpoint.port, user: endpoint.user, password: endpoint.password, database: endpoint.db)
        self.connectTimeout = endpoint.connectTimeout
        if endpoint.tls { self.tls = .makeClientConfiguration() }
        self.idleTickHint = endpoint.idleTickHint
    }

    /// `host:port`, for messages.
    package var address: String { "\(host):\(port)" }
}
