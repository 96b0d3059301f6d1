import CFreeTDS
package import FerryCore
import NIOCore
import NIOPosix
import Synchronization

/// How a connection logs in and how long it waits, beside the endpoint's host, port, database, user and password.
package struct SQLServerOptions: Sendable {
    /// The TDS version to offer (7.4 = SQL Server 2012 and later; 7.3 for 2008).
    package enum Version: String, Sendable, CaseIterable {
        case v72 = "7.2"
        case v73 = "7.3"
        case v74 = "7.4"

        var dbVersion: Int32 {
            switch self {
            case .v72: Int32(DBVERSION_72)
            case .v73: Int32(DBVERSION_73)
            case .v74: Int32(DBVERSION_74)
            }
        }
    }

    package var version: Version = .v74
    /// Whole seconds; DB-Library counts in seconds. 0 waits for ever.
    package var queryTimeoutSeconds = 300
    package var applicationName = "ferry"
    /// Logs in with bulk copy allowed (the login's "dump/load" flag), for connections that load tables with BCP.
    package var bulkCopy = false

    package init() {}

    /// The options an endpoint's configuration asks for (`tds_version`, `query_timeout`).
    package init(_ endpoint: SQLServerEndpoint) {
        version = Version(rawValue: endpoint.tdsVersion.rawValue) ?? .v74
        queryTimeoutSeconds = max(1, Int(endpoint.queryTimeout.components.seconds))
    }
}

/// One SQL Server connection on FreeTDS's DB-Library: log in, run statements, stream their rows in batches as
/// PostgreSQL text, cancel what is left of a result, close. Every DB-Library call runs on ``DBLibrary/threads``,
/// never on an event loop; calls on one connection run one at a time (a second caller while one runs is a
/// programming error, reported, not a crash). Messages never hold the password.
package final class SQLServerConnection: Sendable {
    package let endpoint: SQLServerEndpoint
    /// The configuration key of the endpoint, for messages (`sqlserver`, `sources.erp`).
    package let key: String
    private let process: Mutex<UncheckedProcess?>
    private let collector: MessageCollector
    private let busy = Atomic<Bool>(false)

    private init(endpoint: SQLServerEndpoint, key: String, process: UncheckedProcess, collector: MessageCollector) {
        self.endpoint = endpoint
        self.key = key
        self.process = Mutex(process)
        self.collector = collector
    }

    deinit {
        if let open = process.withLock({ $0 }) {
            DBLibrary.threads.submit { _ in dbclose(open.pointer) }
        }
    }

    /// Logs in to `endpoint` and opens its database. Errors say which part failed (unreachable, login, database,
    /// encryption) and the fix.
    package static func connect(_ endpoint: SQLServerEndpoint, key: String = "sqlserver", options: SQLServerOptions = .init()) async throws
        -> SQLServerConnection
    {
        guard DBLibrary.initialized else {
            throw FerryError(.unsupported, "FreeTDS's DB-Library could not be initialised", fix: "reinstall freetds-dev / libsybdb5")
        }
        let collector = MessageCollector()
        let server = try FreeTDSServers.serverName(endpoint, key: key)
        let password = endpoint.password?.value ?? ""
        let loginSeconds = max(1, Int32(clamping: Int(endpoint.connectTimeout.components.seconds)))
        let opened: Result<UncheckedProcess, SQLServerError> = try await DBLibrary.run(collector) {
            guard let login = dblogin() else { return .failure(SQLServerError(messages: [], library: "out of memory for a login")) }
            defer { dbloginfree(login) }
            dbsetlname(login, endpoint.user, Int32(DBSETUSER))
            dbsetlname(login, password, Int32(DBSETPWD))
            dbsetlname(login, options.applicationName, Int32(DBSETAPP))
            dbsetlname(login, endpoint.database, Int32(DBSETDBNAME))
            // Text arrives as UTF-8 whatever the server's collation (FreeTDS converts varchar and nvarchar).
            dbsetlname(login, "UTF-8", Int32(DBSETCHARSET))
            dbsetlversion(login, BYTE(options.version.dbVersion))
            if options.bulkCopy { dbsetlbool(login, 1, Int32(DBSETBCP)) }
            // Encryption and the CA are a freetds.conf section of Ferry's own (FreeTDSServers).
            guard let process = DBLibrary.withLoginTimeout(loginSeconds, { tdsdbopen(login, server, 1) }) else {
                return .failure(collector.failure())
            }
            if options.queryTimeoutSeconds > 0 { dbsetopt(process, Int32(DBSETTIME), "\(options.queryTimeoutSeconds)", 0) }
            // Large values ((max), text, image) whole: DB-Library's default cuts them at 4 kB. Sent as a statement of
            // Ferry's own, not with dbsetopt(DBTEXTSIZE): DB-Library sends that option as a hidden batch and spins for
            // ever when a broken server answers it with rows (found by the TDS reply fuzz target).
            let handle = UncheckedProcess(process)
            guard Self.sendBatch("SET TEXTSIZE 2147483647", handle), Self.drainResults(handle) else {
                let failure = collector.failure()
                dbclose(process)
                return .failure(failure)
            }
            _ = collector.take()
            return .success(handle)
        }
        switch opened {
        case .success(let process): return SQLServerConnection(endpoint: endpoint, key: key, process: process, collector: collector)
        case .failure(let error): throw SQLServerDiagnosis.connectFailure(error, endpoint: endpoint, key: key)
        }
    }

    /// Runs `sql` (one batch) and discards any rows; returns the number of rows the last statement affected.
    @discardableResult
    package func execute(_ sql: String) async throws -> Int {
        try await query(sql) { _ in }.affected
    }

    /// Runs `sql` (one batch) and hands its rows to `body` in batches of at most `batchRows`, as PostgreSQL COPY text
    /// in the result's column order; only the first result set's rows are read. When `body` throws or the task is
    /// cancelled, the rest of the result is cancelled on the server and the connection stays usable.
    ///
    /// With `parameters`, the batch runs through `sp_executesql` with `@p1`, `@p2`, … bound to them: their values travel
    /// beside the statement, never inside its text. Columns at `fullPrecision` (0-based) keep a 7th fractional digit.
    @discardableResult
    package func query(
        _ sql: String, parameters: [SQLServerParameter] = [], batchRows: Int = 1000, fullPrecision: Set<Int> = [],
        columns: ([SQLServerColumn]) async throws -> Void = { _ in }, _ body: (CopyTextRows) async throws -> Void
    ) async throws -> (rows: Int, affected: Int) {
        var renderer: SQLServerRowRenderer?
        func described(_ list: [SQLServerColumn]) async throws {
            renderer = SQLServerRowRenderer(columns: list, fullPrecision: fullPrecision)
            try await columns(list)
        }
        func rendered(_ raw: SQLServerRawRows) async throws {
            guard let renderer else { return }
            let rows: CopyTextRows
            do throws(SQLServerError) {
                rows = try renderer.render(raw)
            } catch {
                throw RenderFailure(error: error)
            }
            try await body(rows)
        }
        return try await queryRaw(sql, parameters: parameters, batchRows: batchRows, columns: described, rendered)
    }

    /// ``query(_:parameters:batchRows:fullPrecision:columns:_:)`` without the text: `body` gets each batch's values
    /// as DB-Library holds them (``SQLServerRawRows``), for readers that convert them to another form themselves.
    /// Two stages: DB-Library's thread copies a batch out of FreeTDS's buffers while `body` works on the batch before
    /// it (1.3–1.5× the rows a second of doing them in turn, when the client has a second core). One fetch is ahead at
    /// most, and every way out waits for it before the connection is used again.
    @discardableResult
    package func queryRaw(
        _ sql: String, parameters: [SQLServerParameter] = [], batchRows: Int = 1000,
        columns: ([SQLServerColumn]) async throws -> Void = { _ in }, _ body: (SQLServerRawRows) async throws -> Void
    ) async throws -> (rows: Int, affected: Int) {
        let handle = try begin()
        defer { busy.store(false, ordering: .releasing) }
        let started: Result<[SQLServerColumn], SQLServerError> = try await DBLibrary.run(collector) { [collector] in
            let sent = parameters.isEmpty ? Self.sendBatch(sql, handle) : Self.sendExecuteSQL(sql, parameters: parameters, handle)
            guard sent else { return .failure(collector.failure()) }
            return Self.nextResult(handle, collector: collector)
        }
        let described: [SQLServerColumn]
        switch started {
        case .success(let list): described = list
        case .failure(let error): throw try await failed(error, handle)
        }
        do {
            try await columns(described)
        } catch {
            await cancelResults(handle)
            throw error
        }
        let columnCount = described.count
        func fetchTask() -> Task<Result<SQLServerRawRows, SQLServerError>, any Error> {
            Task { [collector] in
                try await DBLibrary.run(collector) {
                    Self.fetchRaw(handle, columnCount: columnCount, limit: batchRows, collector: collector)
                }
            }
        }
        var total = 0
        var pending = described.isEmpty ? nil : fetchTask()
        while let fetching = pending {
            pending = nil
            let raw: SQLServerRawRows
            do {
                raw = try await fetching.value.get()
                if raw.rowCount == batchRows { pending = fetchTask() }
                guard raw.rowCount > 0 else { break }
                total += raw.rowCount
            } catch let error as SQLServerError {
                _ = await pending?.result
                throw try await failed(error, handle)
            } catch {
                _ = await pending?.result
                await cancelResults(handle)
                throw error
            }
            do {
                try Task.checkCancellation()
                try await body(raw)
            } catch let failure as RenderFailure {
                _ = await pending?.result
                throw try await failed(failure.error, handle)
            } catch {
                _ = await pending?.result
                await cancelResults(handle)
                throw error
            }
        }
        // Whatever follows (more result sets, row counts, errors of later statements in the batch).
        let affected: Result<Int, SQLServerError> = try await DBLibrary.run(collector) { [collector] in
            var affected = Int(dbcount(handle.pointer))
            while true {
                let status = dbresults(handle.pointer)
                if status == NO_MORE_RESULTS { break }
                if status != SUCCEED { return .failure(collector.failure()) }
                guard Self.skipRows(handle) else { return .failure(collector.failure()) }
                affected = Int(dbcount(handle.pointer))
            }
            let errors = collector.failure()
            return errors.messages.isEmpty ? .success(affected) : .failure(errors)
        }
        switch affected {
        case .success(let count): return (total, max(0, count))
        case .failure(let error): throw try await failed(error, handle)
        }
    }

    /// Loads `rows` into `table` (a quoted T-SQL name) with DB-Library's bulk copy (BCP: `insert bulk` and a BULK LOAD
    /// message), `rowsPerCall` rows per trip to DB-Library's thread. `columns[i]` is the 1-based position in the table of
    /// the column the rows' i-th value goes to, written in `encodings[i]`; columns left out get NULL (or their default).
    /// nil is NULL. An empty string cannot travel (DB-Library sends a zero length as NULL), nor a value its encoding
    /// cannot write: such rows are refused here and must go another way. Returns the rows the server took.
    ///
    /// A row DB-Library cannot convert (a value that is not of the column's type) fails the copy and closes the
    /// connection: it is left in the middle of a BULK LOAD message, which nothing can end cleanly.
    package func bulkCopy(
        into table: String, columns: [Int], encodings: [SQLServerBulkEncoding], rows: [[String?]], rowsPerCall: Int = 5000
    ) async throws -> Int {
        for (index, row) in rows.enumerated() {
            for (value, encoding) in zip(row, encodings) {
                guard let value else { continue }
                if value.isEmpty || !encoding.canEncode(value) {
                    throw FerryError(
                        .invalidInput,
                        "row \(index + 1) has a value bulk copy cannot send as it is (an empty string, or text outside the column's code page)",
                        fix: "insert it with a statement")
                }
            }
        }
        let handle = try begin()
        defer { busy.store(false, ordering: .releasing) }
        let started: Result<Void, SQLServerError> = try await DBLibrary.run(collector) { [collector] in
            guard bcp_init(handle.pointer, table, nil, nil, DB_IN) == SUCCEED else { return .failure(collector.failure()) }
            // Bound once with no data; each row points every column at its value (bcp_colptr, bcp_collen).
            for column in columns where bcp_bind(handle.pointer, nil, 0, 0, nil, 0, Int32(SYBCHAR), Int32(column)) != SUCCEED {
                return .failure(collector.failure())
            }
            return .success(())
        }
        if case .failure(let error) = started { throw try await failed(error, handle) }
        var start = 0
        while start < rows.count {
            let chunk = rows[start..<min(rows.count, start + max(1, rowsPerCall))]
            let sent: Result<Void, SQLServerError> = try await DBLibrary.run(collector) { [collector] in
                var bytes: [UInt8] = []
                var ends: [Int] = []
                for row in chunk {
                    bytes.removeAll(keepingCapacity: true)
                    ends.removeAll(keepingCapacity: true)
                    for (value, encoding) in zip(row, encodings) {
                        if let value { _ = encoding.encode(value, into: &bytes) }
                        ends.append(bytes.count)
                    }
                    // Never empty: a NULL still needs an address (zero length is what makes it NULL).
                    bytes.append(0)
                    let ok = bytes.withUnsafeMutableBufferPointer { buffer -> Bool in
                        var from = 0
                        for (index, column) in columns.enumerated() {
                            let length = row[index] == nil ? 0 : ends[index] - from
                            guard let base = buffer.baseAddress,
                                bcp_colptr(handle.pointer, base + (row[index] == nil ? 0 : from), Int32(column)) == SUCCEED,
                                bcp_collen(handle.pointer, DBINT(length), Int32(column)) == SUCCEED
                            else { return false }
                            from = ends[index]
                        }
                        return bcp_sendrow(handle.pointer) == SUCCEED
                    }
                    if !ok { return .failure(collector.failure()) }
                }
                return .success(())
            }
            if case .failure(let error) = sent {
                await close()
                let reason = error.library ?? error.messages.map(\.message).joined(separator: "; ")
                throw FerryError(
                    .invalidInput, "bulk copy into \(table) stopped at one of rows \(start + 1)…\(start + chunk.count): \(reason)",
                    fix: "check those rows' values against the table's column types; nothing of this copy was kept")
            }
            start += chunk.count
        }
        let done: Result<Int, SQLServerError> = try await DBLibrary.run(collector) { [collector] in
            let copied = bcp_done(handle.pointer)
            let errors = collector.failure()
            guard copied >= 0, errors.messages.isEmpty else { return .failure(errors) }
            return .success(Int(copied))
        }
        switch done {
        case .success(let copied): return copied
        case .failure(let error): throw try await failed(error, handle)
        }
    }

    /// Runs `sql` and counts its rows with DB-Library alone, converting nothing: the floor under any client on
    /// FreeTDS (for the benchmark, which sets it beside Ferry's and pymssql's cost per row).
    package func countRows(_ sql: String) async throws -> Int {
        let handle = try begin()
        defer { busy.store(false, ordering: .releasing) }
        let counted: Result<Int, SQLServerError> = try await DBLibrary.run(collector) { [collector] in
            guard Self.sendBatch(sql, handle) else { return .failure(collector.failure()) }
            var rows = 0
            while true {
                let status = dbresults(handle.pointer)
                if status == NO_MORE_RESULTS { return .success(rows) }
                guard status == SUCCEED else { return .failure(collector.failure()) }
                while true {
                    let next = dbnextrow(handle.pointer)
                    if next == NO_MORE_ROWS { break }
                    guard next == REG_ROW else { return .failure(collector.failure()) }
                    rows += 1
                }
            }
        }
        switch counted {
        case .success(let rows): return rows
        case .failure(let error): throw try await failed(error, handle)
        }
    }

    /// Every row of `sql` as text (NULL as nil): for catalog queries and checks, not for tables.
    package func rows(_ sql: String, parameters: [SQLServerParameter] = []) async throws -> [[String?]] {
        var result: [[String?]] = []
        try await query(sql, parameters: parameters) { rows in
            for index in 0..<rows.rowCount { result.append(rows.fields(ofRow: index)) }
        }
        return result
    }

    /// Closes the connection (idempotent).
    package func close() async {
        guard
            let open = process.withLock({ slot -> UncheckedProcess? in
                defer { slot = nil }
                return slot
            })
        else { return }
        _ = try? await DBLibrary.run(collector) { dbclose(open.pointer) }
    }

    /// Whether the server ended the connection (DB-Library marks it dead).
    package var isDead: Bool {
        guard let open = process.withLock({ $0 }) else { return true }
        return dbdead(open.pointer) != 0
    }

    // MARK: Internals

    private func begin() throws -> UncheckedProcess {
        guard let open = process.withLock({ $0 }) else {
            throw FerryError(.closed, "the connection to SQL Server at \(endpoint.host):\(endpoint.port) is closed")
        }
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            throw FerryError(.conflict, "a SQL Server connection was used by two tasks at once (a bug in Ferry)")
        }
        return open
    }

    /// Reads the rest of the current result's rows; false when DB-Library failed. Every loop over DB-Library's answers
    /// ends on anything but progress: a broken server must not make it spin.
    private static func skipRows(_ handle: UncheckedProcess) -> Bool {
        while true {
            let status = dbnextrow(handle.pointer)
            if status == NO_MORE_ROWS { return true }
            if status != REG_ROW && status <= 0 { return false }
        }
    }

    /// Reads every result of the batch sent last; false when one failed.
    private static func drainResults(_ handle: UncheckedProcess) -> Bool {
        while true {
            let status = dbresults(handle.pointer)
            if status == NO_MORE_RESULTS { return true }
            guard status == SUCCEED, skipRows(handle) else { return false }
        }
    }

    private static func sendBatch(_ sql: String, _ handle: UncheckedProcess) -> Bool {
        dbcmd(handle.pointer, sql) == SUCCEED && dbsqlexec(handle.pointer) == SUCCEED
    }

    /// `EXEC sp_executesql @stmt, @params, @p1 …` as an RPC. Every value goes as nvarchar text; SQL Server converts it
    /// to the type `@params` declares, so the column's own type is compared (and its index used).
    private static func sendExecuteSQL(_ sql: String, parameters: [SQLServerParameter], _ handle: UncheckedProcess) -> Bool {
        let declarations = parameters.enumerated().map { "@p\($0.offset + 1) \($0.element.type)" }.joined(separator: ", ")
        // DB-Library reads the values when the call is sent: they live until then.
        var storage: [UnsafeMutablePointer<UInt8>] = []
        defer { for pointer in storage { pointer.deallocate() } }
        func add(_ name: String, _ value: String?) -> Bool {
            guard let value, !value.isEmpty else {
                return dbrpcparam(handle.pointer, name, 0, Int32(FERRY_XSYBNVARCHAR), -1, 0, nil) == SUCCEED
            }
            let bytes = Array(value.utf8)
            let copy = UnsafeMutablePointer<UInt8>.allocate(capacity: bytes.count)
            copy.initialize(from: bytes, count: bytes.count)
            storage.append(copy)
            // FreeTDS 1.3 cuts an nvarchar parameter at 4,000 characters, silently (it never switches to nvarchar(max)):
            // a longer text goes as ntext, which SQL Server converts to the declared type like nvarchar.
            let type = value.utf16.count > 4000 ? Int32(SYBNTEXT) : Int32(FERRY_XSYBNVARCHAR)
            return dbrpcparam(handle.pointer, name, 0, type, -1, DBINT(bytes.count), copy) == SUCCEED
        }
        guard dbrpcinit(handle.pointer, "sp_executesql", 0) == SUCCEED, add("@stmt", sql), add("@params", declarations) else { return false }
        for (index, parameter) in parameters.enumerated() where !add("@p\(index + 1)", parameter.value) { return false }
        return dbrpcsend(handle.pointer) == SUCCEED && dbsqlok(handle.pointer) == SUCCEED
    }

    /// Moves to the first result that has columns; `[]` when the batch has none (DDL, updates).
    private static func nextResult(_ handle: UncheckedProcess, collector: MessageCollector) -> Result<[SQLServerColumn], SQLServerError> {
        while true {
            let status = dbresults(handle.pointer)
            if status == NO_MORE_RESULTS { return .success([]) }
            guard status == SUCCEED else { return .failure(collector.failure()) }
            let count = dbnumcols(handle.pointer)
            if count > 0 {
                return .success(
                    (1...count).map { index in
                        SQLServerColumn(
                            name: dbcolname(handle.pointer, index).map { String(cString: $0) } ?? "",
                            kind: SQLServerText.Kind(type: dbcoltype(handle.pointer, index)), type: dbcoltype(handle.pointer, index),
                            length: Int(dbcollen(handle.pointer, index)),
                            precision: Int(dbcoltypeinfo(handle.pointer, index)?.pointee.precision ?? 0),
                            scale: Int(dbcoltypeinfo(handle.pointer, index)?.pointee.scale ?? 0))
                    })
            }
        }
    }

    /// Up to `limit` rows of the current result, copied out of DB-Library's buffers as they are (rendered later, off
    /// DB-Library's thread).
    private static func fetchRaw(
        _ handle: UncheckedProcess, columnCount: Int, limit: Int, collector: MessageCollector
    ) -> Result<SQLServerRawRows, SQLServerError> {
        let raw = SQLServerRawRows()
        while raw.rowCount < limit {
            let status = dbnextrow(handle.pointer)
            if status == NO_MORE_ROWS { break }
            guard status == REG_ROW else {
                // A COMPUTE row (its id, above 0): not produced by the statements Ferry runs; anything else is a failure.
                if status > 0 { continue }
                return .failure(collector.failure())
            }
            for index in 1...Int32(columnCount) {
                let data = dbdata(handle.pointer, index)
                raw.append(data, count: data == nil ? 0 : Int(dbdatlen(handle.pointer, index)))
            }
            raw.rowCount += 1
        }
        return .success(raw)
    }

    /// Discards what is left of the current batch's results (the connection stays usable).
    private func cancelResults(_ handle: UncheckedProcess) async {
        _ = try? await DBLibrary.run(collector) { [collector] in
            dbcancel(handle.pointer)
            _ = collector.take()
        }
    }

    private func failed(_ error: SQLServerError, _ handle: UncheckedProcess) async throws -> FerryError {
        await cancelResults(handle)
        return SQLServerDiagnosis.statementFailure(error, endpoint: endpoint)
    }
}

/// A value bound to a statement's `@pN`: sent as text, converted by SQL Server to `type` (T-SQL, e.g. `datetime2(7)`,
/// `int`, `nvarchar(50)`). An empty text travels as NULL (DB-Library cannot tell them apart in a call's parameters).
package struct SQLServerParameter: Sendable, Equatable {
    package var type: String
    package var value: String?

    package init(_ value: String?, as type: String) {
        self.value = value
        self.type = type
    }
}

/// A column of a result: its name and the type DB-Library reports.
package struct SQLServerColumn: Sendable, Equatable {
    package var name: String
    package var kind: SQLServerText.Kind
    /// DB-Library's type number (`dbcoltype`).
    package var type: Int32
    /// The maximum length in bytes (`dbcollen`).
    package var length: Int
    /// Digits and fraction digits of a decimal/numeric (`dbcoltypeinfo`); 0 for other types.
    package var precision = 0
    package var scale = 0

    package init(name: String, kind: SQLServerText.Kind, type: Int32, length: Int, precision: Int = 0, scale: Int = 0) {
        self.name = name
        self.kind = kind
        self.type = type
        self.length = length
        self.precision = precision
        self.scale = scale
    }
}

/// A batch's values that could not be rendered: a failure of the server's data, reported as the server's.
private struct RenderFailure: Error {
    let error: SQLServerError
}

/// A DB-Library connection handle moved to the thread that uses it; only one call uses it at a time (``SQLServerConnection``).
struct UncheckedProcess: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
}
