/// How to reach a Redis server.
package struct RedisEndpoint: Sendable, Equatable {
    package var host: String = "127.0.0.1"
    package var port: Int = 6379
    /// ACL user; none means the `default` user.
    package var user: String?
    package var password: Secret?
    /// Database index. Default 0.
    package var db: Int = 0
    /// Connect with TLS. Default off.
    package var tls: Bool = false
    /// Default 5 seconds.
    package var connectTimeout: Duration = .seconds(5)
    /// Keep the CPU's timer tick running while a connection waits for a reply (Linux; see
    /// `RedisConnectionConfiguration.idleTickHint`). Default on.
    package var idleTickHint: Bool = true

    package init() {}

    package init(host: String, port: Int, user: String? = nil, password: Secret? = nil, db: Int = 0) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.db = db
    }
}
