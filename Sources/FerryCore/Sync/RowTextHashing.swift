/// Hashes rows a source read, as text, exactly as the mirror's side of a reconciliation hashes its own rows: for a
/// source whose database cannot compute that hash (SQL Server has no `hashtextextended`, and its text forms of values
/// differ from PostgreSQL's). The target's PostgreSQL implements it, so both sides hash with one function by
/// construction.
package protocol RowTextHashing: Sendable {
    /// The hash of each row of `rows` (fields in `types` order), each value first converted to `types[i]` (the mirror
    /// column's PostgreSQL type), as ``TableSource/rowHashes(in:mirrorTypes:)`` defines it.
    func hashes(of rows: CopyTextRows, types: [String]) async throws -> [Int64]

    /// Releases connections.
    func close() async
}
