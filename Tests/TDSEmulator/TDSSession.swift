import Foundation
import Logging
import NIOCore
import PostgresNIO

/// One client connection: PRELOGIN, LOGIN7, then requests, each answered from the session's own PostgreSQL
/// connection. Errors in a request go to the client as ERROR tokens; a protocol error closes the connection.
struct TDSSession {
    var configuration: TDSEmulator.Configuration
    var logger: Logger
    private var packetSize = 4096
    private var postgres: PostgresConnection?
    private var transaction: UInt64 = 0
    private var nextTransaction: UInt64 = 1
    /// Column types declared by `tds:TYPE` comments, by table OID and column number (read before each statement).
    private var declaredTypes: [ColumnID: TDSColumn.SQLType] = [:]
    /// TDS 7.3 and later: rows with NULLs go as NBCROW.
    private var nullBitmapRows = false
    /// The table an `insert bulk` statement named: the BULK LOAD message that follows goes into it.
    private var bulkTarget: String?

    struct ColumnID: Hashable {
        var table: UInt32
        var column: Int16
    }

    /// The TDS connection's event loop: the PostgreSQL connection runs on it too (and with
    /// ``TDSEmulator/Configuration/sessionsOnEventLoops`` the session's task as well, so rows do not change threads).
    private let eventLoop: (any EventLoop)?

    init(configuration: TDSEmulator.Configuration, logger: Logger, eventLoop: (any EventLoop)? = nil) {
        self.configuration = configuration
        self.logger = logger
        self.eventLoop = eventLoop
    }

    mutating func run(_ connection: NIOAsyncChannel<TDSMessage, ByteBuffer>) async {
        do {
            try await connection.executeThenClose { inbound, outbound in
                var loggedIn = false
                for try await message in inbound {
                    var reply = TDSReply(packetSize: packetSize, outbound: outbound)
                    switch message.kind {
                    case .preLogin where !loggedIn:
                        _ = try TDSPreLogin(message.payload)
                        reply.payload = TDSPreLogin.response()
                    case .login7 where !loggedIn:
                        guard try await login(TDSLogin(message.payload), reply: &reply) else {
                            try await reply.finish()
                            return
                        }
                        loggedIn = true
                    case .sqlBatch where loggedIn:
                        try await sqlBatch(message.payload, reply: &reply)
                    case .transactionManager where loggedIn:
                        try await transactionRequest(message.payload, reply: &reply)
                    case .attention where loggedIn:
                        reply.payload.writeDone(status: .attention)
                    case .rpc where loggedIn:
                        try await rpc(message.payload, reply: &reply)
                    case .bulkLoad where loggedIn:
                        try await bulkLoad(message.payload, reply: &reply)
                    default:
                        throw TDSProtocolError("a message of type \(message.kind) arrived \(loggedIn ? "after" : "before") login")
                    }
                    try await reply.finish()
                }
            }
        } catch {
            // A request the emulator could not read is worth seeing in a test's log; a client going away is not.
            if error is TDSProtocolError {
                logger.warning("TDS session ended on a request the emulator cannot read: \(error)")
            } else {
                logger.debug("TDS session ended: \(error)")
            }
        }
        try? await postgres?.close()
    }

    /// Checks the login and opens the PostgreSQL connection; false when the login failed (the client was told).
    private mutating func login(_ login: TDSLogin, reply: inout TDSReply) async throws -> Bool {
        guard login.agreedVersion >= 0x7200_0000 else {
            throw TDSProtocolError("TDS version 0x\(String(login.tdsVersion, radix: 16)) is older than 7.2, which the emulator needs")
        }
        let server = configuration.serverName
        guard configuration.logins[login.userName] == login.password else {
            reply.error(18456, "Login failed for user '\(login.userName)'.", state: 1, severity: 14, server: server)
            reply.payload.writeDone(status: .error)
            return false
        }
        let database = login.database.isEmpty ? configuration.database : login.database
        guard database.lowercased() == configuration.database.lowercased() else {
            // As SQL Server: the database's error, then the login's.
            reply.error(
                4060, "Cannot open database \"\(database)\" requested by the login. The login failed.", state: 1, severity: 11, server: server)
            reply.error(18456, "Login failed for user '\(login.userName)'.", state: 1, severity: 14, server: server)
            reply.payload.writeDone(status: .error)
            return false
        }
        do {
            if let eventLoop {
                postgres = try await PostgresConnection.connect(on: eventLoop, configuration: configuration.postgres, id: 1, logger: logger)
            } else {
                postgres = try await PostgresConnection.connect(configuration: configuration.postgres, id: 1, logger: logger)
            }
        } catch {
            reply.error(4060, "Cannot open database \"\(database)\": its PostgreSQL is unreachable.", state: 1, severity: 11, server: server)
            reply.payload.writeDone(status: .error)
            return false
        }
        if TDSMessage.packetSizes.contains(login.packetSize) { packetSize = login.packetSize }
        nullBitmapRows = login.agreedVersion >= 0x7300_0000
        reply.packetSize = packetSize
        var buffer = ByteBuffer()
        buffer.writeLengthPrefixedToken(0xAD) { ack in
            ack.writeInteger(UInt8(1))
            ack.writeInteger(login.agreedVersion, endianness: .big)
            ack.writeBVarchar("Microsoft SQL Server")
            ack.writeBytes([13, 0, 0x13, 0x88])
        }
        buffer.writeEnvChange(type: 1, new: configuration.database, old: "master")
        buffer.writeMessage(
            error: false, number: 5701, state: 2, severity: 0, text: "Changed database context to '\(configuration.database)'.", server: server)
        buffer.writeEnvChange(type: 7, newBytes: [0x09, 0x04, 0xD0, 0x00, 0x34], oldBytes: [])
        buffer.writeEnvChange(type: 2, new: "us_english", old: "")
        buffer.writeEnvChange(type: 4, new: "\(packetSize)", old: "\(login.packetSize)")
        buffer.writeDone(status: .final)
        reply.payload = buffer
        logger.debug("TDS login", metadata: ["tds.user": "\(login.userName)", "tds.app": "\(login.appName)"])
        return true
    }

    /// Skips ALL_HEADERS ([MS-TDS] 2.2.5.3), which every request of TDS 7.2 and later starts with.
    private func skipHeaders(_ payload: inout ByteBuffer) throws {
        guard let total = payload.getInteger(at: payload.readerIndex, endianness: .little, as: UInt32.self),
            total >= 4, Int(total) <= payload.readableBytes
        else { throw TDSProtocolError("a request's ALL_HEADERS length is outside the message") }
        payload.moveReaderIndex(forwardBy: Int(total))
    }

    private mutating func sqlBatch(_ payload: ByteBuffer, reply: inout TDSReply) async throws {
        var payload = payload
        try skipHeaders(&payload)
        guard payload.readableBytes % 2 == 0, let text = payload.readUTF16(units: payload.readableBytes / 2) else {
            throw TDSProtocolError("a SQL batch is not UTF-16")
        }
        logger.trace("TDS batch", metadata: ["tds.sql": "\(text)"])
        if try await bulkCopyStatement(text, reply: &reply) { return }
        if let match = text.wholeMatch(of: #/(?i)\s*(BEGIN|COMMIT|ROLLBACK)\s+TRAN(?:SACTION)?\s*;?\s*/#) {
            try await transaction(String(match.output.1).uppercased(), reply: &reply)
            return
        }
        let statement: String?
        do {
            statement = try TSQLTranslator.translate(try await describingFirstResultSet(text, parameters: [:]))
        } catch {
            reply.error(102, "\(error)", server: configuration.serverName)
            reply.payload.writeDone(status: .error)
            return
        }
        guard let statement else {
            reply.payload.writeDone(status: .final)
            return
        }
        try await execute(PostgresQuery(unsafeSQL: statement), reply: &reply, cacheKey: statement)
    }

    /// `sp_executesql @stmt, @params, values…`: the statement runs with its parameters bound (never spliced), its
    /// result ends with DONEINPROC, then the procedure's return status and DONEPROC, as SQL Server answers an RPC.
    private mutating func rpc(_ payload: ByteBuffer, reply: inout TDSReply) async throws {
        var payload = payload
        try skipHeaders(&payload)
        let request = try TDSRPCRequest(payload)
        let server = configuration.serverName
        logger.trace(
            "TDS RPC",
            metadata: ["tds.procedure": "\(request.procedure)", "tds.types": "\(request.parameters.map { String($0.type, radix: 16) })"])
        guard request.procedure.lowercased() == "sp_executesql", let statement = request.parameters.first?.text else {
            reply.error(2812, "Could not find stored procedure '\(request.procedure)'.", server: server)
            reply.payload.writeDone(token: 0xFE, status: .error)
            return
        }
        let declared = request.parameters.count > 1 ? TDSRPCRequest.declaredNames(request.parameters[1].text ?? "") : []
        let values = Array(request.parameters.dropFirst(2))
        var bindings = PostgresBindings()
        for (index, name) in declared.enumerated() {
            let named = values.first { $0.name.lowercased() == name.lowercased() }
            guard let parameter = named ?? (index < values.count && values[index].name.isEmpty ? values[index] : nil) else {
                reply.error(8178, "The parameterized query expects the parameter '\(name)', which was not supplied.", server: server)
                reply.payload.writeDone(token: 0xFE, status: .error)
                return
            }
            if let text = parameter.text {
                // Typed by PostgreSQL from where it is used, as SQL Server converts to the declared type.
                bindings.append(UntypedText(text: text))
            } else {
                bindings.appendNull()
            }
        }
        var named: [String: String?] = [:]
        for (index, name) in declared.enumerated() {
            let parameter = values.first { $0.name.lowercased() == name.lowercased() } ?? (index < values.count ? values[index] : nil)
            named[name.lowercased()] = parameter?.text
        }
        let translated: String?
        do {
            translated = try TSQLTranslator.translate(try await describingFirstResultSet(statement, parameters: named), parameters: declared)
        } catch {
            reply.error(102, "\(error)", server: server)
            reply.payload.writeDone(token: 0xFE, status: .error)
            return
        }
        var failed = false
        if let translated {
            let key = ([translated] + declared.map { name in named[name.lowercased()].map { $0.map { "=" + $0 } ?? "NULL" } ?? "" })
                .joined(separator: "\u{0}")
            failed = try await execute(
                PostgresQuery(unsafeSQL: translated, binds: bindings), reply: &reply, doneToken: 0xFF, cacheKey: key)
        }
        reply.payload.writeInteger(UInt8(0x79))  // RETURNSTATUS
        reply.payload.writeInteger(Int32(failed ? 1 : 0), endianness: .little)
        reply.payload.writeDone(token: 0xFE, status: failed ? .error : .final)
    }

    /// Runs one statement and streams its rows as COLMETADATA, ROW…, DONE; returns whether it failed. `cacheKey`
    /// names the request (its text and parameters) for ``TDSEmulator/Configuration/resultCache``.
    @discardableResult
    private mutating func execute(
        _ query: PostgresQuery, reply: inout TDSReply, doneToken: UInt8 = 0xFD, cacheKey: String? = nil
    ) async throws -> Bool {
        guard let postgres else { throw TDSProtocolError("no PostgreSQL connection") }
        // Inside a procedure more tokens follow (the return status, DONEPROC): DONE_MORE says so, or the client stops reading.
        var done: TDSDoneStatus = transaction != 0 ? .inTransaction : []
        if doneToken == 0xFF { done.insert(.more) }
        let cache = cacheKey.flatMap { key in configuration.resultCache.map { ($0, "\(nullBitmapRows)\u{1}\(key)") } }
        if let (cache, key) = cache, let result = cache.result(key) {
            var bytes = result.bytes
            while bytes.readableBytes > 0 {
                reply.payload.writeImmutableBuffer(bytes.readSlice(length: min(bytes.readableBytes, 1 << 16))!)
                try await reply.flushWholePackets()
            }
            reply.payload.writeDone(token: doneToken, status: done.union(.count), rows: result.rows)
            return false
        }
        do {
            try await loadDeclaredTypes()
            if let verb = query.sql.split(whereSeparator: \.isWhitespace).first?.uppercased(), ["INSERT", "UPDATE", "DELETE"].contains(verb),
                !query.sql.uppercased().contains("RETURNING")
            {
                // The rows a statement changed, as SQL Server counts them in DONE.
                let metadata = try await postgres.query(query, logger: logger) { _ in }.get()
                reply.payload.writeDone(token: doneToken, status: done.union(.count), rows: UInt64(metadata.rows ?? 0))
                return false
            }
            let rows = try await postgres.query(query, logger: logger)
            let columns = try rows.columns.map { column in
                let id = ColumnID(table: UInt32(bitPattern: column.tableOID), column: column.columnAttributeNumber)
                guard let type = declaredTypes[id] ?? TDSColumn.sqlType(for: column.dataType, modifier: column.dataTypeModifier) else {
                    throw TDSValueError(description: "column \(column.name): PostgreSQL type \(column.dataType) is not served")
                }
                return TDSColumn(name: column.name, type: type)
            }
            var count: UInt64 = 0
            // What goes out from here to the last row, kept for the result cache.
            var recorded: ByteBuffer? = cache == nil || columns.isEmpty ? nil : ByteBuffer()
            var start = reply.payload.writerIndex
            if !columns.isEmpty {
                reply.payload.writeInteger(UInt8(0x81))
                reply.payload.writeInteger(UInt16(columns.count), endianness: .little)
                for column in columns {
                    reply.payload.writeInteger(UInt32(0), endianness: .little)
                    reply.payload.writeInteger(UInt16(0x0001), endianness: .little)
                    column.type.writeTypeInfo(into: &reply.payload)
                    reply.payload.writeBVarchar(column.name)
                }
            }
            // One row's values, written apart first: whether the row starts with a NULL bitmap is known only after
            // them, and a value that cannot be written takes its row back out (an ERROR token then follows whole rows).
            var values = ByteBuffer()
            var nulls = [UInt8](repeating: 0, count: (columns.count + 7) / 8)
            let types = columns.map(\.type)
            for try await row in rows {
                values.clear()
                var hasNull = false
                for (index, (cell, type)) in zip(row, types).enumerated() {
                    if let bytes = cell.bytes {
                        try type.writeValue(bytes, pgType: cell.dataType, into: &values)
                    } else if nullBitmapRows {
                        // A row with NULLs goes as NBCROW from TDS 7.3 on, as SQL Server sends it: a bitmap of the NULL
                        // columns, then only the other values.
                        if !hasNull {
                            for byte in nulls.indices { nulls[byte] = 0 }
                            hasNull = true
                        }
                        nulls[index / 8] |= 1 << UInt8(index % 8)
                    } else {
                        type.writeNull(into: &values)
                    }
                }
                if hasNull {
                    reply.payload.writeInteger(UInt8(0xD2))
                    reply.payload.writeBytes(nulls)
                } else {
                    reply.payload.writeInteger(UInt8(0xD1))
                }
                reply.payload.writeImmutableBuffer(values)
                count += 1
                if recorded != nil { record(&recorded, from: reply.payload, at: start, limit: cache?.0.limit) }
                try await reply.flushWholePackets()
                start = reply.payload.writerIndex
            }
            if let (cache, key) = cache, recorded != nil {
                record(&recorded, from: reply.payload, at: start, limit: cache.limit)
                if let recorded { cache.keep(.init(bytes: recorded, rows: count), for: key) }
            }
            reply.payload.writeDone(token: doneToken, status: columns.isEmpty ? done : done.union(.count), rows: count)
            return false
        } catch let error as PSQLError {
            let message = error.serverInfo?[.message] ?? "PostgreSQL: \(error.code)"
            reply.error(Self.errorNumber(sqlState: error.serverInfo?[.sqlState]), message, server: configuration.serverName)
            reply.payload.writeDone(token: doneToken, status: done.union(.error))
            return true
        } catch let error as TDSValueError {
            reply.error(8115, error.description, server: configuration.serverName)
            reply.payload.writeDone(token: doneToken, status: done.union(.error))
            return true
        }
    }

    /// Copies what `payload` gained since `start` into `recorded`; past `limit` bytes the recording is dropped.
    private func record(_ recorded: inout ByteBuffer?, from payload: ByteBuffer, at start: Int, limit: Int?) {
        guard var kept = recorded, let added = payload.getSlice(at: start, length: payload.writerIndex - start) else { return }
        recorded = nil  // the buffer is written in place, not copied
        guard kept.readableBytes + added.readableBytes <= limit ?? .max else { return }
        kept.writeImmutableBuffer(added)
        recorded = kept
    }

    /// Reads the `tds:TYPE` comments of every column.
    private mutating func loadDeclaredTypes() async throws {
        guard let postgres else { return }
        let rows = try await postgres.query(
            "SELECT objoid::int8, objsubid, description FROM pg_description WHERE classoid = 'pg_class'::regclass AND objsubid > 0 AND description LIKE 'tds:%'",
            logger: logger)
        var types: [ColumnID: TDSColumn.SQLType] = [:]
        for try await (table, column, description) in rows.decode((Int64, Int32, String).self) {
            guard let type = TDSColumn.SQLType(declared: String(description.dropFirst(4))) else { continue }
            types[ColumnID(table: UInt32(truncatingIfNeeded: table), column: Int16(truncatingIfNeeded: column))] = type
        }
        declaredTypes = types
    }

    /// `sys.dm_exec_describe_first_result_set(@tsql, NULL, 0)`: the statement's result columns (translated and run
    /// with no rows) go to a temporary table `tds_describe` that stands in for the function, with SQL Server's
    /// columns (`column_ordinal`, `name`, `system_type_name`, `is_nullable`, `error_number`, `error_message`). A statement
    /// that fails is described as SQL Server does: one row with the error's number and message.
    private mutating func describingFirstResultSet(_ tsql: String, parameters: [String: String?]) async throws -> String {
        guard let postgres,
            let match = tsql.firstMatch(of: #/(?i)sys\.dm_exec_describe_first_result_set\s*\(\s*(@\w+|N?'(?:[^']|'')*')\s*,[^)]*\)/#)
        else { return tsql }
        let argument = String(match.output.1)
        let described: String
        if argument.hasPrefix("@") {
            described = (parameters[argument.lowercased()] ?? nil) ?? ""
        } else {
            described = String(argument.drop { $0 != "'" }.dropFirst().dropLast()).replacingOccurrences(of: "''", with: "'")
        }
        try await postgres.query(
            """
            CREATE TEMP TABLE IF NOT EXISTS tds_describe (column_ordinal int, name text, system_type_name text, is_nullable boolean,
              is_hidden boolean, error_number int, error_message text, is_identity_column boolean, is_computed_column boolean,
              collation_name text)
            """, logger: logger)
        try await postgres.query("TRUNCATE tds_describe", logger: logger)
        do {
            guard let inner = try TSQLTranslator.translate(described) else { throw TSQLError("nothing to describe") }
            try await loadDeclaredTypes()
            let rows = try await postgres.query(PostgresQuery(unsafeSQL: "SELECT * FROM (\(inner)) AS q LIMIT 0"), logger: logger)
            let columns = rows.columns.map { column in
                let id = ColumnID(table: UInt32(bitPattern: column.tableOID), column: column.columnAttributeNumber)
                return (column.name, declaredTypes[id] ?? TDSColumn.sqlType(for: column.dataType, modifier: column.dataTypeModifier), id)
            }
            for try await _ in rows {}
            for (ordinal, (name, type, id)) in columns.enumerated() {
                // Identity and generated columns of a table, as SQL Server flags them.
                try await postgres.query(
                    """
                    INSERT INTO tds_describe
                    SELECT \(Int32(ordinal + 1)), \(name), \(type?.systemTypeName ?? "sql_variant"), true, false, NULL, NULL,
                      COALESCE((SELECT attidentity <> '' FROM pg_attribute WHERE attrelid = \(Int64(id.table)) AND attnum = \(Int32(id.column))), false),
                      COALESCE((SELECT attgenerated <> '' FROM pg_attribute WHERE attrelid = \(Int64(id.table)) AND attnum = \(Int32(id.column))), false),
                      \(type?.collationName)
                    """,
                    logger: logger)
            }
        } catch let error as PSQLError {
            let message = error.serverInfo?[.message] ?? "PostgreSQL: \(error.code)"
            let number = Int32(Self.errorNumber(sqlState: error.serverInfo?[.sqlState]))
            try await postgres.query(
                "INSERT INTO tds_describe VALUES (NULL, NULL, NULL, NULL, NULL, \(number), \(message), NULL, NULL, NULL)", logger: logger)
        } catch let error as TSQLError {
            try await postgres.query(
                "INSERT INTO tds_describe VALUES (NULL, NULL, NULL, NULL, NULL, 102, \(error.description), NULL, NULL, NULL)", logger: logger)
        }
        // The statement's parameter stays referenced (PostgreSQL refuses a bound value it cannot type).
        let replacement =
            argument.hasPrefix("@")
            ? "(SELECT *, CAST(\(argument) AS text) AS tds_statement FROM pg_temp.tds_describe) AS tds_describe" : "pg_temp.tds_describe"
        return tsql.replacingCharacters(in: match.range, with: replacement)
    }

    /// SQL Server's error numbers for the PostgreSQL errors a client may meet.
    static func errorNumber(sqlState: String?) -> Int32 {
        switch sqlState {
        case "42P01": return 208  // invalid object name
        case "42703": return 207  // invalid column name
        case "42601": return 102  // incorrect syntax
        case "42501": return 229  // permission denied
        case "23505": return 2627  // unique key violation
        case "22003": return 8115  // arithmetic overflow
        default: return 50000
        }
    }

    /// `BEGIN`, `COMMIT` or `ROLLBACK` `TRAN[SACTION]` in a batch: a PostgreSQL transaction, with the ENVCHANGE SQL Server
    /// sends. A ROLLBACK with no transaction is SQL Server's error 3903.
    private mutating func transaction(_ verb: String, reply: inout TDSReply) async throws {
        guard let postgres else { throw TDSProtocolError("no PostgreSQL connection") }
        func descriptor(_ value: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
        switch verb {
        case "BEGIN":
            try await postgres.query("BEGIN", logger: logger)
            transaction = nextTransaction
            nextTransaction += 1
            reply.payload.writeEnvChange(type: 8, newBytes: descriptor(transaction), oldBytes: [])
        default:
            guard transaction != 0 else {
                reply.error(
                    verb == "COMMIT" ? 3902 : 3903, "The \(verb) TRANSACTION request has no corresponding BEGIN TRANSACTION.",
                    server: configuration.serverName)
                reply.payload.writeDone(status: .error)
                return
            }
            try await postgres.query(verb == "COMMIT" ? "COMMIT" : "ROLLBACK", logger: logger)
            reply.payload.writeEnvChange(type: verb == "COMMIT" ? 9 : 10, newBytes: [], oldBytes: descriptor(transaction))
            transaction = 0
        }
        reply.payload.writeDone(status: transaction != 0 ? .inTransaction : .final)
    }

    /// The two statements a bulk copy starts with ([MS-TDS] 2.2.6.1, as FreeTDS and python-tds send them):
    /// `SET FMTONLY ON select * from T SET FMTONLY OFF` (the table's columns, no rows: identity, computed and rowversion
    /// columns flagged, which a client leaves out) and `insert bulk T (…)` (the BULK LOAD message that follows goes into
    /// T). False when `text` is neither.
    private mutating func bulkCopyStatement(_ text: String, reply: inout TDSReply) async throws -> Bool {
        if let match = text.wholeMatch(of: #/(?is)\s*SET\s+FMTONLY\s+ON\s+(select\s+\*\s+from\s+.+?)\s+SET\s+FMTONLY\s+OFF\s*;?\s*/#) {
            guard let postgres, let select = try TSQLTranslator.translate(String(match.output.1)) else { return false }
            let done: TDSDoneStatus = transaction != 0 ? .inTransaction : []
            do {
                try await loadDeclaredTypes()
                let rows = try await postgres.query(PostgresQuery(unsafeSQL: select + " LIMIT 0"), logger: logger)
                let described = rows.columns
                for try await _ in rows {}
                var columns: [(TDSColumn, flags: UInt16, userType: UInt32)] = []
                for column in described {
                    let id = ColumnID(table: UInt32(bitPattern: column.tableOID), column: column.columnAttributeNumber)
                    guard let type = declaredTypes[id] ?? TDSColumn.sqlType(for: column.dataType, modifier: column.dataTypeModifier) else {
                        throw TDSValueError(description: "column \(column.name): PostgreSQL type \(column.dataType) is not served")
                    }
                    let attribute = try await postgres.query(
                        """
                        SELECT NOT attnotnull, attidentity <> '', attgenerated <> '' FROM pg_attribute
                        WHERE attrelid = \(Int64(UInt32(bitPattern: column.tableOID))) AND attnum = \(Int32(column.columnAttributeNumber))
                        """, logger: logger)
                    var flags: UInt16 = 0x0008  // updateable
                    for try await (nullable, identity, computed) in attribute.decode((Bool, Bool, Bool).self) {
                        if nullable { flags |= 0x0001 }
                        if identity { flags |= 0x0010 }
                        if computed { flags |= 0x0020 }
                    }
                    // A rowversion is user type 80 (timestamp) with a nullable-looking binary(8): clients skip it.
                    columns.append((TDSColumn(name: column.name, type: type), flags, type == .rowversion ? 80 : 0))
                }
                reply.payload.writeInteger(UInt8(0x81))
                reply.payload.writeInteger(UInt16(columns.count), endianness: .little)
                for (column, flags, userType) in columns {
                    reply.payload.writeInteger(userType, endianness: .little)
                    reply.payload.writeInteger(flags, endianness: .little)
                    column.type.writeTypeInfo(into: &reply.payload)
                    reply.payload.writeBVarchar(column.name)
                }
                reply.payload.writeDone(status: done.union(.count), rows: 0)
            } catch let error as PSQLError {
                reply.error(
                    Self.errorNumber(sqlState: error.serverInfo?[.sqlState]), error.serverInfo?[.message] ?? "\(error.code)",
                    server: configuration.serverName)
                reply.payload.writeDone(status: done.union(.error))
            } catch let error as TDSValueError {
                reply.error(8115, error.description, server: configuration.serverName)
                reply.payload.writeDone(status: done.union(.error))
            }
            return true
        }
        if let match = text.wholeMatch(of: #/(?is)\s*insert\s+bulk\s+((?:\[(?:[^\]]|\]\])*\]|[^\s(\[])+)\s*(?:\(.*\))?\s*(?:with\s*\(.*\))?\s*;?\s*/#)
        {
            guard let select = try TSQLTranslator.translate("SELECT * FROM " + String(match.output.1)) else { return false }
            bulkTarget = String(select.dropFirst("SELECT * FROM ".count))
            reply.payload.writeDone(status: transaction != 0 ? .inTransaction : .final)
            return true
        }
        return false
    }

    /// A BULK LOAD message ([MS-TDS] 2.2.6.1): COLMETADATA, then ROW tokens (and possibly DONE), inserted into the table
    /// the `insert bulk` before it named, in one statement per 1,000 rows; answered with DONE and the row count.
    private mutating func bulkLoad(_ payload: ByteBuffer, reply: inout TDSReply) async throws {
        guard let table = bulkTarget, let postgres else { throw TDSProtocolError("a BULK LOAD message without an insert bulk before it") }
        bulkTarget = nil
        var payload = payload
        guard payload.readInteger(as: UInt8.self) == 0x81, let count = payload.readInteger(endianness: .little, as: UInt16.self) else {
            throw TDSProtocolError("a BULK LOAD message that does not start with COLMETADATA")
        }
        var columns: [(name: String, info: TDSTypeInfo)] = []
        for _ in 0..<count {
            guard payload.readInteger(endianness: .little, as: UInt32.self) != nil, payload.readInteger(endianness: .little, as: UInt16.self) != nil,
                let type = payload.readInteger(as: UInt8.self)
            else { throw TDSProtocolError("a BULK LOAD column cut short") }
            let info = try TDSParameterValue.readInfo(type: type, from: &payload)
            if [0x63, 0x23, 0x22].contains(type) {
                // The table's name (text, ntext, image), as FreeTDS writes it: a 2-byte length in characters and UTF-16.
                guard let length = payload.readInteger(endianness: .little, as: UInt16.self), payload.readUTF16(units: Int(length)) != nil else {
                    throw TDSProtocolError("a BULK LOAD column's table name cut short")
                }
            }
            guard let length = payload.readInteger(as: UInt8.self), let name = payload.readUTF16(units: Int(length)) else {
                throw TDSProtocolError("a BULK LOAD column name cut short")
            }
            columns.append((name, info))
        }
        var rows: [[String?]] = []
        reading: while let token = payload.readInteger(as: UInt8.self) {
            switch token {
            case 0xD1:
                rows.append(try columns.map { try TDSParameterValue.readValue($0.info, from: &payload, inRow: true) })
            case 0xFD:
                break reading
            default:
                throw TDSProtocolError("token 0x\(String(token, radix: 16)) inside a BULK LOAD message")
            }
        }
        let done: TDSDoneStatus = transaction != 0 ? .inTransaction : []
        let names = columns.map { "\"" + $0.name.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }.joined(separator: ", ")
        // One batch is all or nothing, as SQL Server loads it.
        let own = transaction == 0
        do {
            if own { try await postgres.query("BEGIN", logger: logger) }
            var start = 0
            while start < rows.count {
                let chunk = rows[start..<min(rows.count, start + 1000)]
                var bindings = PostgresBindings()
                var values: [String] = []
                for row in chunk {
                    var placeholders: [String] = []
                    for value in row {
                        if let value { bindings.append(UntypedText(text: value)) } else { bindings.appendNull() }
                        placeholders.append("$\(bindings.count)")
                    }
                    values.append("(" + placeholders.joined(separator: ", ") + ")")
                }
                let insert = "INSERT INTO \(table) (\(names)) VALUES " + values.joined(separator: ", ")
                try await postgres.query(PostgresQuery(unsafeSQL: insert, binds: bindings), logger: logger)
                start += chunk.count
            }
            if own { try await postgres.query("COMMIT", logger: logger) }
            reply.payload.writeDone(status: done.union(.count), command: 0xF0, rows: UInt64(rows.count))
        } catch let error as PSQLError {
            if own { _ = try? await postgres.query("ROLLBACK", logger: logger) }
            reply.error(
                Self.errorNumber(sqlState: error.serverInfo?[.sqlState]), error.serverInfo?[.message] ?? "\(error.code)",
                server: configuration.serverName)
            reply.payload.writeDone(status: done.union(.error))
        }
    }

    /// TM_BEGIN_XACT, TM_COMMIT_XACT and TM_ROLLBACK_XACT ([MS-TDS] 2.2.6.9), as PostgreSQL transactions.
    private mutating func transactionRequest(_ payload: ByteBuffer, reply: inout TDSReply) async throws {
        var payload = payload
        try skipHeaders(&payload)
        guard let request = payload.readInteger(endianness: .little, as: UInt16.self), let postgres else {
            throw TDSProtocolError("a transaction manager request is empty")
        }
        func descriptor(_ value: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
        switch request {
        case 5:
            try await postgres.query("BEGIN", logger: logger)
            transaction = nextTransaction
            nextTransaction += 1
            reply.payload.writeEnvChange(type: 8, newBytes: descriptor(transaction), oldBytes: [])
        case 7, 8:
            try await postgres.query(request == 7 ? "COMMIT" : "ROLLBACK", logger: logger)
            reply.payload.writeEnvChange(type: request == 7 ? 9 : 10, newBytes: [], oldBytes: descriptor(transaction))
            transaction = 0
        default:
            reply.error(50000, "transaction manager request \(request) is not supported", server: configuration.serverName)
            reply.payload.writeDone(status: .error)
            return
        }
        reply.payload.writeDone(status: transaction != 0 ? .inTransaction : .final)
    }
}

/// A server message being written: whole packets go out while rows are produced, the rest with end-of-message.
struct TDSReply {
    var packetSize: Int
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    var payload = ByteBuffer()
    private var packetID: UInt8 = 1

    init(packetSize: Int, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) {
        self.packetSize = packetSize
        self.outbound = outbound
    }

    mutating func error(_ number: Int32, _ text: String, state: UInt8 = 1, severity: UInt8 = 16, server: String) {
        payload.writeMessage(error: true, number: number, state: state, severity: severity, text: text, server: server)
    }

    /// Sends the full packets the payload holds once it is 16 packets long (rows stream, nothing waits for the end).
    mutating func flushWholePackets() async throws {
        let room = packetSize - TDSMessage.headerLength
        guard payload.readableBytes >= room * 16 else { return }
        var out = ByteBuffer()
        while payload.readableBytes > room {
            writePacket(payload.readSlice(length: room)!, last: false, into: &out)
        }
        payload.discardReadBytes()
        try await outbound.write(out)
    }

    /// Sends what is left, the last packet marked end-of-message.
    mutating func finish() async throws {
        let room = packetSize - TDSMessage.headerLength
        var out = ByteBuffer()
        repeat {
            let length = min(room, payload.readableBytes)
            writePacket(payload.readSlice(length: length)!, last: payload.readableBytes == 0, into: &out)
        } while payload.readableBytes > 0
        try await outbound.write(out)
    }

    private mutating func writePacket(_ body: ByteBuffer, last: Bool, into out: inout ByteBuffer) {
        out.writeInteger(TDSMessage.Kind.tabularResult.rawValue)
        out.writeInteger(UInt8(last ? 0x01 : 0x00))
        out.writeInteger(UInt16(body.readableBytes + TDSMessage.headerLength), endianness: .big)
        out.writeInteger(UInt16(0), endianness: .big)
        out.writeInteger(packetID)
        out.writeInteger(UInt8(0))
        out.writeImmutableBuffer(body)
        packetID &+= 1
    }
}

/// A parameter PostgreSQL types from where it is used (OID `unknown`, text format), as SQL Server converts a value to
/// the type `@params` declares.
struct UntypedText: PostgresDynamicTypeEncodable {
    var text: String
    var psqlType: PostgresDataType { .unknown }
    var psqlFormat: PostgresFormat { .text }

    func encode<JSONEncoder: PostgresJSONEncoder>(into byteBuffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        byteBuffer.writeString(text)
    }
}
