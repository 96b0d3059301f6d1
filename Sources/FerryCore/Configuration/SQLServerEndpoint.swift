/// How to reach a SQL Server database (the source of the original design).
public struct SQLServerEndpoint: Sendable, Equatable {
    public var host: String = "127.0.0.1"
    public var port: Int = 1433
    public var database: String = "master"
    public var user: String = "sa"
    public var password: Secret?
    /// The view or table pipelines read when they name none (`MSSQL_VIEW`).
    public var view: String?
    public var connectTimeout: Duration = .seconds(10)

    public init() {}
}
