/// How to reach a PostgreSQL database.
public struct PostgresEndpoint: Sendable, Equatable {
    /// TLS use, as in libpq's `sslmode` (the subset Ferry supports).
    public enum TLSMode: String, Sendable, CaseIterable {
        case disable
        case prefer
        case require
    }

    public var host: String = "127.0.0.1"
    public var port: Int = 5432
    public var database: String = "postgres"
    public var user: String = "postgres"
    public var password: Secret?
    /// Schema for the tables Ferry creates. Default `public`; `PG_SCHEMA` overrides.
    public var schema: String = "public"
    /// Default `prefer`: TLS when the server offers it.
    public var tls: TLSMode = .prefer
    /// Default 10 seconds.
    public var connectTimeout: Duration = .seconds(10)

    public init() {}

    public init(host: String, port: Int, database: String, user: String, password: Secret?) {
        self.host = host
        self.port = port
        self.database = database
        self.user = user
        self.password = password
    }
}
