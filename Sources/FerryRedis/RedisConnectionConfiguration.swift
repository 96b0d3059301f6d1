public import FerryCore
public import FerryRESP
public import NIOSSL

/// How one connection reaches and greets a Redis server.
public struct RedisConnectionConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// ACL user; `nil` authenticates as `default` when a password is given.
    public var user: String?
    public var password: Secret?
    /// Database index selected after connecting. Default 0.
    public var database: Int = 0
    /// Sent with `CLIENT SETNAME` so operators can see who is connected. Default `ferry`.
    public var clientName: String? = "ferry"
    /// TLS configuration; `nil` for plain TCP.
    public var tls: TLSConfiguration?
    /// Default 5 seconds.
    public var connectTimeout: Duration = .seconds(5)
    /// Deadline of a non-blocking command (or pipeline). Default 30 seconds.
    public var commandTimeout: Duration = .seconds(30)
    /// Added to a blocking command's own timeout to form its deadline. Default 2 seconds.
    public var blockingMargin: Duration = .seconds(2)
    /// Ask for RESP3 (`HELLO 3`), falling back to RESP2 on servers without `HELLO`. Default true.
    public var preferRESP3: Bool = true
    /// Limits on replies.
    public var decoderLimits: RESPFrameScanner.Limits = .init()
    /// After each write that awaits a reply, ask Linux to keep this CPU's timer tick running while it waits
    /// (two `epoll_ctl` DEL + ADD cycles on a private epoll set; see `IdleTickHint`). On virtual machines, where
    /// stopping and restarting the tick of an idle CPU costs exits to the hypervisor, that takes 10–20 µs off
    /// each round trip whose reply comes after the CPU went idle; it costs about 2 µs of system time per write.
    /// Linux only. Default true; `redis.idle_tick_hint` in `ferry.yaml`.
    public var idleTickHint: Bool = true

    public init(host: String, port: Int, user: String? = nil, password: Secret? = nil, database: Int = 0) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
    }

    /// From an endpoint in Ferry's configuration.
    public init(_ endpoint: RedisEndpoint) {
        self.init(host: endpoint.host, port: endpoint.port, user: endpoint.user, password: endpoint.password, database: endpoint.db)
        self.connectTimeout = endpoint.connectTimeout
        if endpoint.tls { self.tls = .makeClientConfiguration() }
        self.idleTickHint = endpoint.idleTickHint
    }

    /// `host:port`, for messages.
    public var address: String { "\(host):\(port)" }
}
