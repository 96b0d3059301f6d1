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

    package init() {}
}
