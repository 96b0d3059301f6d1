/// How to reach a PostgreSQL database.
package struct PostgresEndpoint: Sendable, Equatable {
    /// TLS use, as in libpq's `sslmode` (the subset Ferry supports).
    package enum TLSMode: String, Sendable, CaseIterable {
        case disable
        case prefer
        case require
    }

    package var host: String = "127.0.0.1"
    package var port: Int = 5432
    package var database: String = "postgres"
    package var user: String = "postgres"
    package var password: Secret?
    /// Schema for the tables Ferry creates. Default `public`; `PG_SCHEMA` overrides.
    package var schema: String = "public"
    /// Default `prefer`: TLS when the server offers it.
    package var tls: TLSMode = .prefer
    /// Default 10 seconds.
    package var connectTimeout: Duration = .seconds(10)

    package init() {}

    package init(host: String, port: Int, database: String, user: String, password: Secret?) {
        self.host = host
        self.port = port
        self.database = database
        self.user = user
        self.password = password
    }
}
