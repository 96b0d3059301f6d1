/// One column of a flat Parquet file: its name, how its values are stored (physical type, width) and what they
/// mean (the logical type), and whether it may hold nulls.
package struct ParquetColumn: Sendable, Equatable {
    /// What a column's values are, as Ferry writes and reads them; each maps to one physical type.
    package enum Kind: Sendable, Equatable {
        case boolean
        /// INT8…INT64 (signed) and UINT8…UINT64, on INT32 or INT64.
        case integer(bits: Int, signed: Bool)
        case float
        case double
        /// UTF-8 text (BYTE_ARRAY, STRING).
        case string
        /// Bytes with no meaning given (BYTE_ARRAY).
        case binary
        /// Fixed-width bytes (FIXED_LEN_BYTE_ARRAY) with no logical type.
        case fixedBinary(width: Int)
        /// Days since 1970-01-01 (INT32, DATE).
        case date
        /// Microseconds (or milliseconds, nanoseconds when read) since 1970-01-01 (INT64, TIMESTAMP).
        case timestamp(unit: TimeUnit, utc: Bool)
        /// Microseconds since midnight (INT64, TIME micros) or milliseconds (INT32, TIME millis).
        case time(unit: TimeUnit, utc: Bool)
        /// A decimal: INT32 up to 9 digits, INT64 up to 18, FIXED_LEN_BYTE_ARRAY beyond (or BYTE_ARRAY when read).
        case decimal(precision: Int, scale: Int)
        /// INT96 timestamps (Impala, old Spark): read, never written.
        case int96Timestamp
    }

    package var name: String
    package var kind: Kind
    package var nullable: Bool
    /// How the values are stored; chosen from `kind` when writing, taken from the file when reading.
    package var physicalType: PhysicalType
    /// FIXED_LEN_BYTE_ARRAY's width.
    package var typeLength: Int?

    package init(name: String, kind: Kind, nullable: Bool = true) {
        self.name = name
        self.kind = kind
        self.nullable = nullable
        switch kind {
        case .boolean: physicalType = .boolean
        case .integer(let bits, _): physicalType = bits > 32 ? .int64 : .int32
        case .float: physicalType = .float
        case .double: physicalType = .double
        case .string, .binary: physicalType = .byteArray
        case .fixedBinary(let width):
            physicalType = .fixedLenByteArray
            typeLength = width
        case .date: physicalType = .int32
        case .timestamp: physicalType = .int64
        case .time(let unit, _): physicalType = unit == .millis ? .int32 : .int64
        case .decimal(let precision, _):
            if precision <= 9 {
                physicalType = .int32
            } else if precision <= 18 {
                physicalType = .int64
            } else {
                physicalType = .fixedLenByteArray
                typeLength = Self.decimalWidth(precision: precision)
            }
        case .int96Timestamp: physicalType = .int96
        }
    }

    /// A column as read from a file, its physical type as stored.
    package init(name: String, kind: Kind, nullable: Bool, physicalType: PhysicalType, typeLength: Int?) {
        self.name = name
        self.kind = kind
        self.nullable = nullable
        self.physicalType = physicalType
        self.typeLength = typeLength
    }

    /// The fewest bytes a two's-complement number of `precision` decimal digits fits in (as pyarrow chooses).
    package static func decimalWidth(precision: Int) -> Int {
        var width = 1
        // The largest magnitude a signed width holds is 2^(8w-1) - 1; compare digit counts of 10^precision - 1.
        while width < 32 && Double(8 * width - 1) * 0.301_029_995_663_981_2 < Double(precision) { width += 1 }
        return width
    }

    /// The largest decimal precision Ferry writes (FIXED_LEN_BYTE_ARRAY of 16 bytes holds 38 digits).
    package static let maximumDecimalPrecision = 38
}
