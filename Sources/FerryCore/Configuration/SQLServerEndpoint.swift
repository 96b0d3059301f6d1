/// How to reach a SQL Server database (the source of the original design).
package struct SQLServerEndpoint: Sendable, Equatable {
    package var host: String = "127.0.0.1"
    package var port: Int = 1433
    package var database: String = "master"
    package var user: String = "sa"
    package var password: Secret?
    /// The view or table pipelines read when they name none (`MSSQL_VIEW`).
    package var view: String?
    package var connectTimeout: Duration = .seconds(10)
    /// The TDS version offered at login: 7.4 (SQL Server 2012 and later, the default), 7.3 (2008), 7.2 (2005).
    package var tdsVersion: TDSVersion = .v74
    /// How long one statement may run before it is cancelled. Default 5 minutes.
    package var queryTimeout: Duration = .seconds(300)
    /// TLS: `request` (the default, FreeTDS's: the login is encrypted when the server can), `require` (the whole session
    /// encrypted, or no connection), `off`.
    package var encryption: Encryption = .request
    /// The PEM file of the CA that signed the server's certificate (or the certificate itself): the certificate must
    /// then be signed by it and name `host`. Without it an encrypted connection does not authenticate the server.
    package var caFile: String?

    package enum Encryption: String, Sendable, CaseIterable {
        case off, request, require
    }

    package enum TDSVersion: String, Sendable, CaseIterable {
        case v72 = "7.2"
        case v73 = "7.3"
        case v74 = "7.4"
    }

    package init() {}
}
