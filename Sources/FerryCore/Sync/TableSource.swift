/// A database table, view or query that a pipeline copies from.
///
/// PostgreSQL implements it in FerryPostgres; SQL Server will implement the same protocol. Every read writes
/// rows in PostgreSQL COPY text format (``CopyTextRows``) with the schema's columns in order, values as
/// PostgreSQL would print them, so the consumer never parses values itself.
package protocol TableSource: Sendable {
    /// The columns, with PostgreSQL types for the mirror.
    func describe() async throws -> SourceSchema

    /// Rows with a non-NULL watermark, ordered by (watermark, key), strictly after `position` (or from the
    /// start), at most `limit`. Returns, when the source can tell and rows were read, a change mark no later than
    /// the read's own snapshot (see ``TailRead``).
    ///
    /// Every read that returns rows takes `schema`, the schema its caller labels the rows with: the rows come in its
    /// columns, and a source whose columns changed (so the rows would be read under another schema) throws
    /// ``SourceSchemaChanged`` instead of returning them.
    @discardableResult
    func readChanges(after position: SourcePosition?, limit: Int, schema: SourceSchema, into rows: inout CopyTextRows) async throws -> String?

    /// Rows with watermark at or above `lowerBound` (text), below `upperBound` when given, and at or before
    /// `through`, ordered by (watermark, key), strictly after `after` when given; for re-reading the lookback
    /// window. With `changedSince` (a mark from ``changeMark()``), rows not written since that mark may be left
    /// out: every row written since is in, except rows that `tailReads` prove were read (a source may ignore them).
    func readWindow(
        from lowerBound: String, below upperBound: String?, through: SourcePosition, after: SourcePosition?, changedSince mark: String?,
        tailReads: [TailRead], limit: Int, schema: SourceSchema, into rows: inout CopyTextRows
    ) async throws

    /// A mark to pass to a later ``readWindow(from:through:after:changedSince:limit:into:)``: taken before a window
    /// re-read, it lets the next re-read skip the rows this one sees. `nil` when the source cannot tell which rows
    /// were written since (views, queries, sources without row versions): every re-read then reads the whole window.
    func changeMark() async throws -> String?

    /// The watermarks `amounts` before `watermark`, in that order, as text (`timestamp - interval`); `nil` when the
    /// watermark type has no such arithmetic.
    func watermarks(_ watermark: String, minus amounts: [Duration]) async throws -> [String]?

    /// Rows whose watermark is NULL, ordered by key, strictly after `afterKey`, at most `limit`.
    func readNullWatermarks(afterKey: [String]?, limit: Int, schema: SourceSchema, into rows: inout CopyTextRows) async throws

    /// Every row, whatever its watermark, ordered by key, strictly after `afterKey`, at most `limit`: the pages of a
    /// backfill (columns added to the mirror, filled for the rows it already had).
    func readByKey(afterKey: [String]?, limit: Int, schema: SourceSchema, into rows: inout CopyTextRows) async throws

    /// How many rows have a NULL watermark.
    func countNullWatermarks() async throws -> Int

    /// A cheap estimate of the number of rows, for progress; `nil` when unknown.
    func estimatedRowCount() async throws -> Int?

    /// Keys that split `range` into about `parts` ranges of similar size, ascending.
    func keyBoundaries(parts: Int, in range: KeyRange) async throws -> [[String]]

    /// Count and an order-independent hash of the rows in `range`. Each value is first converted to the mirror's
    /// type for that column (`mirrorTypes[i]`, `nil` for none), so source and mirror hash the same text.
    func digest(of range: KeyRange, mirrorTypes: [String?]) async throws -> RangeDigest

    /// The key and row hash (as ``digest(of:mirrorTypes:)`` computes it) of every row in `range`, by key.
    func rowHashes(in range: KeyRange, mirrorTypes: [String?]) async throws -> [(key: [String], hash: Int64)]

    /// Every row in `range`, ordered by key.
    func readRange(_ range: KeyRange, schema: SourceSchema, into rows: inout CopyTextRows) async throws

    /// The rows with these keys (each in the key columns' order) that still exist, ordered by key.
    func readKeys(_ keys: [[String]], schema: SourceSchema, into rows: inout CopyTextRows) async throws

    /// Releases connections.
    func close() async
}

/// A read of the tail that began at `position` and whose snapshot came after `mark` (from
/// ``TableSource/readChanges(after:limit:into:)``), continued page by page until the tail was read to its end.
///
/// Every row version written by a transaction that had ended before `mark`, and ordered after `position`, was
/// visible to that read and so was read by it (or replaced by a newer version before it): the producer moves its
/// position past a row only by reading it. A window re-read may therefore leave such versions out, and with
/// tail reads recorded as they happen, a re-read returns only versions no tail read can have seen — the late
/// commits it exists for — instead of every recently changed row again.
package struct TailRead: Sendable, Hashable {
    package var mark: String
    package var position: SourcePosition

    package init(mark: String, position: SourcePosition) {
        self.mark = mark
        self.position = position
    }
}

/// Thrown by a read when the source's columns are no longer those of the schema the caller passed: the read
/// returned nothing, and `current` is what the source has now.
package struct SourceSchemaChanged: Error, Sendable, CustomStringConvertible {
    package var current: SourceSchema

    package init(current: SourceSchema) { self.current = current }

    package var description: String { "the source's columns changed while it was read" }
}
