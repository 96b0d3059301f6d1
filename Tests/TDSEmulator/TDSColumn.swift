import Foundation
import NIOCore
import PostgresNIO

/// A result column as SQL Server would describe it, and how its PostgreSQL values are written in a ROW token.
///
/// The PostgreSQL column's type picks the SQL Server type (int4 → int, timestamp(p) → datetime2, text →
/// nvarchar(max), …); a table or view column whose comment is `tds:TYPE` (`COMMENT ON COLUMN t.c IS 'tds:money'`) is
/// described as that SQL Server type instead (datetime, money, tinyint, varchar(20), char(3), binary(4), …), since
/// PostgreSQL has no such types. A `datetime` column holds each value as the microsecond Ferry prints for its 1/300 s
/// tick (`.003333`, `.006667`, `.01`), as SQL Server would store it.
struct TDSColumn: Sendable {
    enum SQLType: Sendable, Equatable {
        case bit, tinyint, smallint, int, bigint
        case decimal(precision: Int, scale: Int)
        case money, smallmoney
        case real, float
        /// nil length: (max).
        case nvarchar(Int?)
        case varchar(Int?)
        case nchar(Int)
        case char(Int)
        case varbinary(Int?)
        case binary(Int)
        case date
        case time(Int)
        case datetime2(Int)
        case datetimeoffset(Int)
        case datetime, smalldatetime
        case uniqueidentifier
        /// `rowversion`: binary(8) on the wire, `timestamp` in the catalog.
        case rowversion
    }

    var name: String
    var type: SQLType

    /// The SQL Server type for a PostgreSQL type and modifier; nil when the emulator does not serve it.
    static func sqlType(for dataType: PostgresDataType, modifier: Int32) -> SQLType? {
        let mod = Int(modifier)
        switch dataType {
        case .bool: return .bit
        case .int2: return .smallint
        case .int4: return .int
        case .int8: return .bigint
        case .float4: return .real
        case .float8: return .float
        case .numeric:
            guard mod >= 4 else { return .decimal(precision: 38, scale: 10) }
            return .decimal(precision: ((mod - 4) >> 16) & 0xFFFF, scale: (mod - 4) & 0xFFFF)
        case .text, .name: return .nvarchar(nil)
        case .varchar: return mod >= 4 && mod - 4 <= 4000 ? .nvarchar(mod - 4) : .nvarchar(nil)
        case .bpchar: return .nchar(mod >= 4 ? min(mod - 4, 4000) : 1)
        case .bytea: return .varbinary(nil)
        case .date: return .date
        case .time: return .time(mod >= 0 ? mod : 7)
        case .timestamp: return .datetime2(mod >= 0 ? mod : 7)
        case .timestamptz: return .datetimeoffset(mod >= 0 ? mod : 7)
        case .uuid: return .uniqueidentifier
        default: return nil
        }
    }
}

extension TDSColumn.SQLType {
    /// The type as SQL Server names it (`sys.dm_exec_describe_first_result_set`'s `system_type_name`).
    var systemTypeName: String {
        func length(_ value: Int?) -> String { value.map(String.init) ?? "max" }
        switch self {
        case .bit: return "bit"
        case .tinyint: return "tinyint"
        case .smallint: return "smallint"
        case .int: return "int"
        case .bigint: return "bigint"
        case .decimal(let precision, let scale): return "decimal(\(precision),\(scale))"
        case .money: return "money"
        case .smallmoney: return "smallmoney"
        case .real: return "real"
        case .float: return "float"
        case .nvarchar(let n): return "nvarchar(\(length(n)))"
        case .varchar(let n): return "varchar(\(length(n)))"
        case .nchar(let n): return "nchar(\(n))"
        case .char(let n): return "char(\(n))"
        case .varbinary(let n): return "varbinary(\(length(n)))"
        case .binary(let n): return "binary(\(n))"
        case .date: return "date"
        case .time(let scale): return "time(\(scale))"
        case .datetime2(let scale): return "datetime2(\(scale))"
        case .datetimeoffset(let scale): return "datetimeoffset(\(scale))"
        case .datetime: return "datetime"
        case .smalldatetime: return "smalldatetime"
        case .uniqueidentifier: return "uniqueidentifier"
        case .rowversion: return "timestamp"
        }
    }

    /// The collation of a character type (`collation_name`), the one COLMETADATA carries; nil for other types.
    var collationName: String? {
        switch self {
        case .nvarchar, .varchar, .nchar, .char: return "SQL_Latin1_General_CP1_CI_AS"
        default: return nil
        }
    }

    /// A SQL Server type name as a comment `tds:TYPE` gives it; nil when the emulator does not serve it.
    init?(declared text: String) {
        let lower = text.lowercased().replacingOccurrences(of: " ", with: "")
        let base = String(lower.prefix { $0 != "(" })
        let inside = lower.drop { $0 != "(" }.dropFirst().prefix { $0 != ")" }
        let arguments = inside.split(separator: ",").map(String.init)
        let first = arguments.first.flatMap { Int($0) }
        let isMax = arguments.first == "max"
        switch base {
        case "bit": self = .bit
        case "tinyint": self = .tinyint
        case "smallint": self = .smallint
        case "int": self = .int
        case "bigint": self = .bigint
        case "decimal", "numeric": self = .decimal(precision: first ?? 18, scale: arguments.count > 1 ? Int(arguments[1]) ?? 0 : 0)
        case "money": self = .money
        case "smallmoney": self = .smallmoney
        case "real": self = .real
        case "float": self = .float
        case "nvarchar": self = .nvarchar(isMax ? nil : first ?? 1)
        case "varchar": self = .varchar(isMax ? nil : first ?? 1)
        case "nchar": self = .nchar(first ?? 1)
        case "char": self = .char(first ?? 1)
        case "varbinary": self = .varbinary(isMax ? nil : first ?? 1)
        case "binary": self = .binary(first ?? 1)
        case "date": self = .date
        case "time": self = .time(first ?? 7)
        case "datetime2": self = .datetime2(first ?? 7)
        case "datetimeoffset": self = .datetimeoffset(first ?? 7)
        case "datetime": self = .datetime
        case "smalldatetime": self = .smalldatetime
        case "uniqueidentifier": self = .uniqueidentifier
        case "timestamp", "rowversion": self = .rowversion
        default: return nil
        }
    }
}

/// A value the emulator could not write as the column's SQL Server type.
struct TDSValueError: Error, CustomStringConvertible {
    var description: String
}

extension TDSColumn.SQLType {
    /// Bytes of a time of day with this many fractional digits ([MS-TDS] 2.2.5.4.2).
    static func timeLength(_ scale: Int) -> Int { scale <= 2 ? 3 : scale <= 4 ? 4 : 5 }

    /// DECIMALN's value length for a precision.
    static func decimalLength(_ precision: Int) -> Int { precision <= 9 ? 5 : precision <= 19 ? 9 : precision <= 28 ? 13 : 17 }

    /// Whether values travel as PLP chunks ((max) types).
    var isPLP: Bool {
        switch self {
        case .nvarchar(nil), .varchar(nil), .varbinary(nil): return true
        default: return false
        }
    }

    /// TYPE_INFO in COLMETADATA ([MS-TDS] 2.2.5.6).
    func writeTypeInfo(into buffer: inout ByteBuffer) {
        let collation: [UInt8] = [0x09, 0x04, 0xD0, 0x00, 0x34]
        switch self {
        case .bit: buffer.writeBytes([0x68, 1])
        case .tinyint: buffer.writeBytes([0x26, 1])
        case .smallint: buffer.writeBytes([0x26, 2])
        case .int: buffer.writeBytes([0x26, 4])
        case .bigint: buffer.writeBytes([0x26, 8])
        case .decimal(let precision, let scale):
            buffer.writeBytes([0x6A, UInt8(Self.decimalLength(precision)), UInt8(precision), UInt8(scale)])
        case .money: buffer.writeBytes([0x6E, 8])
        case .smallmoney: buffer.writeBytes([0x6E, 4])
        case .real: buffer.writeBytes([0x6D, 4])
        case .float: buffer.writeBytes([0x6D, 8])
        case .nvarchar(let length):
            buffer.writeInteger(UInt8(0xE7))
            buffer.writeInteger(UInt16(length.map { $0 * 2 } ?? 0xFFFF), endianness: .little)
            buffer.writeBytes(collation)
        case .varchar(let length):
            buffer.writeInteger(UInt8(0xA7))
            buffer.writeInteger(UInt16(length ?? 0xFFFF), endianness: .little)
            buffer.writeBytes(collation)
        case .nchar(let length):
            buffer.writeInteger(UInt8(0xEF))
            buffer.writeInteger(UInt16(length * 2), endianness: .little)
            buffer.writeBytes(collation)
        case .char(let length):
            buffer.writeInteger(UInt8(0xAF))
            buffer.writeInteger(UInt16(length), endianness: .little)
            buffer.writeBytes(collation)
        case .varbinary(let length):
            buffer.writeInteger(UInt8(0xA5))
            buffer.writeInteger(UInt16(length ?? 0xFFFF), endianness: .little)
        case .binary(let length):
            buffer.writeInteger(UInt8(0xAD))
            buffer.writeInteger(UInt16(length), endianness: .little)
        case .date: buffer.writeBytes([0x28])
        case .time(let scale): buffer.writeBytes([0x29, UInt8(scale)])
        case .datetime2(let scale): buffer.writeBytes([0x2A, UInt8(scale)])
        case .datetimeoffset(let scale): buffer.writeBytes([0x2B, UInt8(scale)])
        case .datetime: buffer.writeBytes([0x6F, 8])
        case .smalldatetime: buffer.writeBytes([0x6F, 4])
        case .uniqueidentifier: buffer.writeBytes([0x24, 16])
        case .rowversion:
            buffer.writeInteger(UInt8(0xAD))
            buffer.writeInteger(UInt16(8), endianness: .little)
        }
    }

    /// Writes NULL the way this type's ROW value says it.
    func writeNull(into buffer: inout ByteBuffer) {
        switch self {
        case .nvarchar(nil), .varchar(nil), .varbinary(nil): buffer.writeInteger(UInt64.max, endianness: .little)
        case .nvarchar, .varchar, .nchar, .char, .varbinary, .binary, .rowversion: buffer.writeInteger(UInt16.max, endianness: .little)
        default: buffer.writeInteger(UInt8(0))
        }
    }
}
