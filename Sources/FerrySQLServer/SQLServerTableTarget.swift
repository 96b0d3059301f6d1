package import FerryCore

/// Changes to a SQL Server table by key, as PostgreSQL text (what Ferry's rows hold; nil is NULL).
package struct SQLServerChanges: Sendable {
    /// The columns of each insert and update row, in their order; they must include every key column.
    package var columns: [String]
    /// New rows, loaded with bulk copy.
    package var inserts: [[String?]] = []
    /// Rows whose non-key columns replace those of the row with the same key.
    package var updates: [[String?]] = []
    /// Keys (the values of the target's key columns, in their order) of rows to delete.
    package var deletes: [[String?]] = []

    package init(columns: [String], inserts: [[String?]] = [], updates: [[String?]] = [], deletes: [[String?]] = []) {
        self.columns = columns
        self.inserts = inserts
        self.updates = updates
        self.deletes = deletes
    }
}

/// What ``SQLServerTableTarget/apply(_:)`` did. `missing` counts updates and deletes whose key matched no row.
package struct SQLServerApplied: Sendable, Equatable, Codable {
    package var inserted = 0
    package var updated = 0
    package var deleted = 0
    package var missing = 0

    package init(inserted: Int = 0, updated: Int = 0, deleted: Int = 0, missing: Int = 0) {
        self.inserted = inserted
        self.updated = updated
        self.deleted = deleted
        self.missing = missing
    }
}

/// A SQL Server table written by key: deletes, then updates, then inserts, in one transaction (`SET XACT_ABORT ON`, so
/// any error rolls everything back): a batch is applied whole or not at all.
///
/// - Inserts go through bulk copy (BCP), `insert bulk` and one BULK LOAD stream; a row with an empty string goes
///   through a parameterized `INSERT` instead (bulk copy cannot tell an empty string from NULL).
/// - Updates and deletes go in statements of up to 1,000 rows and 2,000 parameters, every value bound as its column's
///   type: `UPDATE t SET … FROM (VALUES …) AS v(…) WHERE t.k = v.k` and `DELETE FROM t WHERE EXISTS (…)`.
/// - Identity, computed and rowversion columns are never written; a batch naming one is refused.
/// - `maxDeleteRows` refuses a batch that deletes more rows, before anything is written.
package struct SQLServerTableTarget: Sendable {
    package let session: SQLServerSession
    /// The table as configured (`schema.table`).
    package let table: String
    package let key: [String]
    package var maxDeleteRows: Int?

    /// A column of the target table.
    package struct Column: Sendable, Equatable {
        package var name: String
        package var type: SQLServerColumnType
        /// 1-based position in the table (bulk copy binds by position).
        package var position: Int
        /// Identity, computed or rowversion: SQL Server fills it.
        package var generated: Bool
        /// The code page of a character column's collation.
        package var codePage: Int?

        var bulkEncoding: SQLServerBulkEncoding { SQLServerBulkEncoding(type: type, codePage: codePage) }
    }

    package init(session: SQLServerSession, table: String, key: [String], maxDeleteRows: Int? = nil) {
        self.session = session
        self.table = table
        self.key = key
        self.maxDeleteRows = maxDeleteRows
    }

    private var quotedTable: String { SQLServerIdentifier.qualified(table) }
    private var endpoint: SQLServerEndpoint { session.endpoint }

    /// The table's columns, in order.
    package func describe(on connection: SQLServerConnection) async throws -> [Column] {
        let rows = try await connection.rows(
            """
            SELECT [name], [system_type_name], [is_identity_column], [is_computed_column], COLLATIONPROPERTY([collation_name], 'CodePage'),
              [error_number], [error_message]
            FROM sys.dm_exec_describe_first_result_set(@p1, NULL, 0) ORDER BY [column_ordinal]
            """, parameters: [SQLServerParameter("SELECT * FROM \(quotedTable)", as: "nvarchar(max)")])
        if let failed = rows.first(where: { $0.count > 6 && $0[5] != nil }) {
            let number = Int(failed[5] ?? "") ?? 0
            if number == 208 {
                throw FerryError(
                    .invalidInput, "target table \(table) does not exist on \(endpoint.host):\(endpoint.port)/\(endpoint.database) (Msg 208)",
                    fix: "create it, or check the name (schema.table) and that user `\(endpoint.user)` can see it")
            }
            throw FerryError(
                .invalidInput, "SQL Server cannot describe target table \(table): \(failed[6] ?? "") (Msg \(number))",
                fix: "check the table's name and that user `\(endpoint.user)` may SELECT, INSERT, UPDATE and DELETE on it")
        }
        var columns: [Column] = []
        for row in rows {
            guard row.count >= 5, let name = row[0], let typeName = row[1] else { continue }
            let type = SQLServerColumnType(typeName)
            let generated = Self.isTrue(row[2]) || Self.isTrue(row[3]) || type.isRowVersion
            columns.append(Column(name: name, type: type, position: columns.count + 1, generated: generated, codePage: row[4].flatMap { Int($0) }))
        }
        return columns
    }

    private static func isTrue(_ text: String?) -> Bool { text == "1" || text == "true" || text == "t" }

    /// Applies `changes` in one transaction; on any error nothing is applied and the error names what failed.
    package func apply(_ changes: SQLServerChanges) async throws -> SQLServerApplied {
        if let limit = maxDeleteRows, changes.deletes.count > limit {
            throw FerryError(
                .invalidInput, "\(changes.deletes.count) deletes from \(table) are more than max_delete_rows (\(limit)); nothing was written",
                fix: "check the change that asks for them; raise max_delete_rows for this table if they are meant")
        }
        guard !changes.inserts.isEmpty || !changes.updates.isEmpty || !changes.deletes.isEmpty else { return SQLServerApplied() }
        return try await session.withConnection { connection in
            let columns = try await describe(on: connection)
            let plan = try Plan(changes: changes, columns: columns, key: key, table: table)
            _ = try await connection.execute("SET XACT_ABORT ON")
            _ = try await connection.execute("BEGIN TRANSACTION")
            do {
                var applied = SQLServerApplied()
                applied.deleted = try await delete(changes.deletes, plan: plan, on: connection)
                applied.updated = try await update(changes.updates, plan: plan, on: connection)
                applied.missing = changes.deletes.count - applied.deleted + changes.updates.count - applied.updated
                applied.inserted = try await insert(changes.inserts, plan: plan, on: connection)
                _ = try await connection.execute("COMMIT TRANSACTION")
                return applied
            } catch {
                do {
                    _ = try await connection.execute("ROLLBACK TRANSACTION")
                } catch let rollback where SQLServerSession.serverRefused(rollback) {
                    // Msg 3903: XACT_ABORT rolled the transaction back already.
                } catch {
                    // The transaction's state is unknown: the connection must not be used again.
                    await connection.close()
                }
                throw error
            }
        }
    }

    /// The columns a batch writes, checked against the table.
    struct Plan {
        /// For each of the changes' columns, the table's column.
        var columns: [Column]
        /// Positions in `columns` of the key columns, in key order.
        var keyIndexes: [Int]
        /// Positions in `columns` of the columns an update sets.
        var setIndexes: [Int]

        init(changes: SQLServerChanges, columns table: [Column], key: [String], table tableName: String) throws {
            var byName: [String: Column] = [:]
            for column in table { byName[column.name.lowercased()] = column }
            columns = try changes.columns.map { name in
                guard let column = byName[name.lowercased()] else {
                    throw FerryError(
                        .invalidInput, "column \(name) is not in target table \(tableName) (it has \(table.map(\.name).joined(separator: ", ")))",
                        fix: "map the column to one of the table's, or add it to the table")
                }
                guard !column.generated else {
                    throw FerryError(
                        .invalidInput, "column \(column.name) of \(tableName) is filled by SQL Server (identity, computed or rowversion)",
                        fix: "leave it out of the rows written to \(tableName)")
                }
                return column
            }
            guard !key.isEmpty else {
                throw FerryError(.configuration, "target table \(tableName) has no key columns", fix: "name its primary key columns (primary_keys)")
            }
            let keyIndexes = try key.map { name in
                guard let index = changes.columns.firstIndex(where: { $0.lowercased() == name.lowercased() }) else {
                    throw FerryError(.invalidInput, "key column \(name) is not among the rows' columns", fix: "include every key column in the rows")
                }
                return index
            }
            self.keyIndexes = keyIndexes
            setIndexes = columns.indices.filter { !keyIndexes.contains($0) }
            for (index, row) in (changes.inserts + changes.updates).enumerated() where row.count != columns.count {
                throw FerryError(.invalidInput, "row \(index + 1) has \(row.count) values for \(columns.count) columns", fix: "a bug in the caller")
            }
            for (index, row) in changes.deletes.enumerated() where row.count != key.count {
                throw FerryError(
                    .invalidInput, "delete \(index + 1) has \(row.count) key values for \(key.count) key columns", fix: "a bug in the caller")
            }
        }
    }

    /// Rows per statement: at most 1,000 (a VALUES list's limit) and 2,000 parameters (SQL Server takes 2,100).
    static func rowsPerStatement(columns: Int) -> Int { max(1, min(1000, 2000 / max(1, columns))) }

    /// `(VALUES (@p1, @p2), …) AS v([a], [b])` for `rows` of `columns`, each value cast to its column's type.
    private static func values(_ rows: ArraySlice<[String?]>, columns: [Column]) -> (sql: String, parameters: [SQLServerParameter]) {
        var parameters: [SQLServerParameter] = []
        var tuples: [String] = []
        for row in rows {
            var items: [String] = []
            for (value, column) in zip(row, columns) {
                // The old large types cannot be cast to in a VALUES list: their (max) counterparts, converted on assignment.
                let type = ["text": "varchar(max)", "ntext": "nvarchar(max)", "image": "varbinary(max)"][column.type.base] ?? "\(column.type)"
                guard let value else {
                    items.append("CAST(NULL AS \(type))")
                    continue
                }
                if value.isEmpty {
                    // DB-Library sends an empty parameter as NULL; an empty string literal is no user text.
                    items.append("CAST(N'' AS \(type))")
                    continue
                }
                let name = "@p\(parameters.count + 1)"
                let (declaration, expression) = column.type.parameter(name)
                parameters.append(SQLServerParameter(column.type.parameterText(value), as: declaration))
                items.append(expression == name ? "CAST(\(name) AS \(type))" : expression)
            }
            tuples.append("(" + items.joined(separator: ", ") + ")")
        }
        let names = columns.map { SQLServerIdentifier.quote($0.name) }.joined(separator: ", ")
        return ("(VALUES " + tuples.joined(separator: ", ") + ") AS v(\(names))", parameters)
    }

    private func keyMatch(_ plan: Plan) -> String {
        plan.keyIndexes.map {
            "\(quotedTable).\(SQLServerIdentifier.quote(plan.columns[$0].name)) = v.\(SQLServerIdentifier.quote(plan.columns[$0].name))"
        }
        .joined(separator: " AND ")
    }

    private func delete(_ keys: [[String?]], plan: Plan, on connection: SQLServerConnection) async throws -> Int {
        let keyColumns = plan.keyIndexes.map { plan.columns[$0] }
        return try await inStatements(keys, columns: keyColumns, on: connection) { values in
            "DELETE FROM \(quotedTable) WHERE EXISTS (SELECT 1 FROM \(values) WHERE \(keyMatch(plan)))"
        }
    }

    private func update(_ rows: [[String?]], plan: Plan, on connection: SQLServerConnection) async throws -> Int {
        guard !rows.isEmpty else { return 0 }
        guard !plan.setIndexes.isEmpty else { return 0 }
        let sets = plan.setIndexes.map {
            "\(SQLServerIdentifier.quote(plan.columns[$0].name)) = v.\(SQLServerIdentifier.quote(plan.columns[$0].name))"
        }
        .joined(separator: ", ")
        return try await inStatements(rows, columns: plan.columns, on: connection) { values in
            "UPDATE \(quotedTable) SET \(sets) FROM \(values) WHERE \(keyMatch(plan))"
        }
    }

    /// Runs `statement` (given a `(VALUES …) AS v(…)` of a slice of `rows`) for every slice that fits one statement,
    /// returning the rows they affected.
    private func inStatements(
        _ rows: [[String?]], columns: [Column], on connection: SQLServerConnection, _ statement: (String) -> String
    ) async throws -> Int {
        let step = Self.rowsPerStatement(columns: columns.count)
        var affected = 0
        var start = 0
        while start < rows.count {
            let (values, parameters) = Self.values(rows[start..<min(rows.count, start + step)], columns: columns)
            affected += try await connection.query(statement(values), parameters: parameters) { _ in }.affected
            start += step
        }
        return affected
    }

    private func insert(_ rows: [[String?]], plan: Plan, on connection: SQLServerConnection) async throws -> Int {
        guard !rows.isEmpty else { return 0 }
        // Bulk copy takes each value as FreeTDS converts it from text (booleans as 1/0, bytes as 0x…, a UTC time without
        // its offset), or encoded for its character column; a row with a value it cannot send goes through a statement.
        let encodings = plan.columns.map(\.bulkEncoding)
        var bulk: [[String?]] = []
        var statements: [[String?]] = []
        for row in rows {
            var converted: [String?] = []
            converted.reserveCapacity(row.count)
            var sendable = true
            for (index, value) in row.enumerated() {
                guard let value else {
                    converted.append(nil)
                    continue
                }
                guard let text = plan.columns[index].type.bulkText(value), !text.isEmpty, encodings[index].canEncode(text) else {
                    sendable = false
                    break
                }
                converted.append(text)
            }
            if sendable { bulk.append(converted) } else { statements.append(row) }
        }
        var inserted = 0
        if !bulk.isEmpty {
            inserted += try await connection.bulkCopy(into: quotedTable, columns: plan.columns.map(\.position), encodings: encodings, rows: bulk)
        }
        let names = plan.columns.map { SQLServerIdentifier.quote($0.name) }.joined(separator: ", ")
        inserted += try await inStatements(statements, columns: plan.columns, on: connection) { values in
            "INSERT INTO \(quotedTable) (\(names)) SELECT * FROM \(values)"
        }
        return inserted
    }
}
