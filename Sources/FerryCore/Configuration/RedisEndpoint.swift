/// How to reach a Redis server.
public struct RedisEndpoint: Sendable, Equatable {
    public var host: String = "127.0.0.1"
    public var port: Int = 6379
    /// ACL user; none means the `default` user.
    public var user: String?
    public var password: Secret?
    /// Database index. Default 0.
    public var db: Int = 0
    /// Connect with TLS. Default off.
    public var tls: Bool = false
    /// Default 5 seconds.
    public var connectTimeout: Duration = .seconds(5)
    /// Keep the CPU's timer tick running while a connection waits for a reply (Linux; see
    /// `RedisConnectionConfiguration.idleTickHint`). Default on.
    public var idleTickHint: Bool = true

    public init() {}

    public init(host: String, port: Int, user: String? = nil, password: Secret? = nil, db: Int = 0) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.db = db
    }
}
