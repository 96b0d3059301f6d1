/// One table sync pipeline: a source table, view or query copied into a PostgreSQL mirror through Redis.
package struct PipelineConfiguration: Sendable, Equatable {
    /// What to do with rows whose watermark is NULL.
    package enum NullWatermarkPolicy: String, Sendable, CaseIterable {
        /// Load them, ordered by key (default).
        case load
        /// Stop with an error naming the pipeline and column.
        case refuse
    }

    package struct Source: Sendable, Equatable {
        /// `sqlserver`, `postgres`, or a name under `sources`.
        package var connection: String
        /// A table or view; exclusive with ``query``.
        package var table: String?
        /// A query; exclusive with ``table``.
        package var query: String?
        /// Key column(s); unique per row.
        package var key: [String]
        /// Column that grows when a row changes (a modification time or row version).
        package var watermark: String
        /// How far back each poll re-reads, for late commits and clock skew. Default 30s.
        package var lookback: Duration = .seconds(30)
        /// How often the lookback window is re-read; `nil`: a tenth of ``lookback`` (at least the poll interval).
        /// A row is found when it commits no later than `lookback − lookbackEvery` after its watermark.
        package var lookbackEvery: Duration?
        package var nullWatermark: NullWatermarkPolicy = .load
        /// SQL Server Change Tracking instead of a watermark column (`change_tracking: true`): changes, deletes
        /// included, come from `CHANGETABLE(CHANGES …)`; ``watermark`` is then ``changeVersionColumn``.
        package var changeTracking = false

        /// The column a Change Tracking source adds to its rows: the version of the row's last change (NULL for rows
        /// not changed since tracking began). Its watermark, and a bigint column of the mirror.
        package static let changeVersionColumn = "ferry_change_version"

        package init(connection: String, table: String?, query: String?, key: [String], watermark: String) {
            self.connection = connection
            self.table = table
            self.query = query
            self.key = key
            self.watermark = watermark
        }
    }

    package struct Target: Sendable, Equatable {
        /// Default: `postgres.schema`.
        package var schema: String
        package var table: String
        /// An optional surrogate identity column the mirror gets (the original design's `sync_id`); Ferry never
        /// writes it, PostgreSQL numbers rows as they arrive.
        package var rowID: String?
        /// Roles granted SELECT on the mirror (and the companion): with `protect_mirror`, no role but Ferry's may
        /// write the mirror, so readers are named here rather than granted by hand.
        package var readers: [String] = []

        package init(schema: String, table: String, rowID: String? = nil) {
            self.schema = schema
            self.table = table
            self.rowID = rowID
        }
    }

    /// How one source column lands in the mirror.
    package struct ColumnMapping: Sendable, Equatable {
        package var source: String
        /// Mirror column name. Default: the source name in lower case.
        package var name: String?
        /// PostgreSQL type, overriding the one derived from the source.
        package var type: String?
        /// Leave the column out of the mirror.
        package var exclude: Bool = false

        package init(source: String, name: String? = nil, type: String? = nil, exclude: Bool = false) {
            self.source = source
            self.name = name
            self.type = type
            self.exclude = exclude
        }
    }

    /// An editable table beside the mirror, one row per mirror row, never written by the sync.
    package struct Companion: Sendable, Equatable {
        package var table: String
        /// Editable columns and their PostgreSQL types, in order.
        package var columns: [(name: String, type: String)]
        /// Roles that edit the companion: SELECT on the mirror; SELECT, INSERT, UPDATE, DELETE on the companion.
        package var editors: [String] = []

        package init(table: String, columns: [(name: String, type: String)]) {
            self.table = table
            self.columns = columns
        }

        package static func == (lhs: Companion, rhs: Companion) -> Bool {
            lhs.table == rhs.table && lhs.columns.map(\.name) == rhs.columns.map(\.name)
                && lhs.columns.map(\.type) == rhs.columns.map(\.type) && lhs.editors == rhs.editors
        }
    }

    package var name: String
    package var source: Source
    package var target: Target
    package var columns: [ColumnMapping] = []
    package var companion: Companion?
    /// Default: `sync.batch_size`.
    package var batchSize: Int
    /// Default: `sync.interval`.
    package var interval: Duration
    /// Rows per queue entry. Default 500.
    package var rowsPerEntry = 500
    /// Consumers this process runs for the pipeline (more processes may share the group). Default 2: each has
    /// its own PostgreSQL backend, and the per-row version keeps concurrent batches from undoing each other.
    package var consumers = 2
    /// Deliveries after which an entry that was never applied is applied on its own; at twice this many it goes to
    /// the dead letters whole (a consumer keeps stopping while applying it). Default 5.
    package var maxDeliveries = 5
    /// Entries pending this long on a consumer that stopped are claimed by another. Default 30s.
    package var claimIdle: Duration = .seconds(30)
    /// An apply that has not finished after this long has its PostgreSQL connection closed and is retried.
    package var applyTimeout: Duration = .seconds(60)
    /// Queued entries waiting and none applied for this long: the pipeline is reported stalled (`/health/ready`
    /// 503, `ferry_job_stalled` 1) until it moves again. Default 2m.
    package var stallAfter: Duration = .seconds(120)
    /// Longest time a consumer waits to fill a batch. Default 50ms.
    package var maxWait: Duration = .milliseconds(50)
    /// Rows per PostgreSQL transaction at most. Default 10000.
    package var applyBatchRows = 10_000
    /// Only Ferry writes the mirror: write privileges other roles hold on it are revoked as the pipeline starts
    /// (readers and editors get what they need from `target.readers` and `companion.editors`), and a trigger
    /// refuses writes by any role that is not the mirror's owner. Default true.
    package var protectMirror = true
    /// When a source column widens without losing anything (int → bigint, varchar(10) → varchar(50),
    /// timestamp(3) → timestamp(6), numeric(10,2) → numeric(12,2)), widen the mirror column too. Default true; when
    /// false, or for any other type change, the pipeline stops and names the column.
    package var widenColumns = true
    /// Run `reconcile --repair` on this schedule in `ferry run`; `nil` (default) never.
    package var reconcileEvery: Duration?

    package init(name: String, source: Source, target: Target, batchSize: Int, interval: Duration) {
        self.name = name
        self.source = source
        self.target = target
        self.batchSize = batchSize
        self.interval = interval
    }
}
