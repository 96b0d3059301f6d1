/// Min, max and null count of one column chunk as it is written, compared in the column's type-defined order
/// (signed or unsigned integers, IEEE floats without NaN, bytes unsigned lexicographically, decimals on
/// FIXED_LEN_BYTE_ARRAY as signed big-endian numbers).
struct ColumnStatistics {
    enum Order {
        case boolean, signed, unsigned, floating, bytes, signedBytes
    }

    let order: Order
    let statisticsLimit: Int
    private(set) var nullCount: Int64 = 0
    private var minInteger = Int64.max
    private var maxInteger = Int64.min
    private var minUnsigned = UInt64.max
    private var maxUnsigned = UInt64.min
    private var minFloating = Double.infinity
    private var maxFloating = -Double.infinity
    private var minBytes: [UInt8]?
    private var maximumBytes: [UInt8]?
    private var tooLong = false
    private var seen = false
    private var sawFloat = false

    init(column: ParquetColumn, maxBytes: Int) {
        statisticsLimit = maxBytes
        switch column.kind {
        case .boolean: order = .boolean
        case .integer(_, let signed): order = signed ? .signed : .unsigned
        case .float, .double: order = .floating
        case .decimal: order = column.physicalType == .fixedLenByteArray || column.physicalType == .byteArray ? .signedBytes : .signed
        case .string, .binary, .fixedBinary: order = .bytes
        case .date, .timestamp, .time, .int96Timestamp: order = .signed
        }
    }

    mutating func addNull() { nullCount += 1 }

    mutating func add(_ value: Bool) {
        seen = true
        let number: Int64 = value ? 1 : 0
        if number < minInteger { minInteger = number }
        if number > maxInteger { maxInteger = number }
    }

    mutating func add(_ value: Int64) {
        seen = true
        if order == .unsigned {
            let unsigned = UInt64(bitPattern: value)
            if unsigned < minUnsigned { minUnsigned = unsigned }
            if unsigned > maxUnsigned { maxUnsigned = unsigned }
        } else {
            if value < minInteger { minInteger = value }
            if value > maxInteger { maxInteger = value }
        }
    }

    /// INT32 columns: an unsigned one compares the 32-bit pattern.
    mutating func add(_ value: Int32) {
        add(order == .unsigned ? Int64(UInt32(bitPattern: value)) : Int64(value))
    }

    mutating func add(_ value: Double) {
        guard !value.isNaN else { return }
        seen = true
        sawFloat = true
        if value < minFloating || (value == 0 && minFloating == 0 && value.sign == .minus) { minFloating = value }
        if value > maxFloating || (value == 0 && maxFloating == 0 && value.sign == .plus) { maxFloating = value }
    }

    mutating func add(_ bytes: UnsafeRawBufferPointer) {
        seen = true
        guard !tooLong else { return }
        if bytes.count > statisticsLimit {
            tooLong = true
            minBytes = nil
            maximumBytes = nil
            return
        }
        if minBytes.map({ Self.less(bytes, $0, signed: order == .signedBytes) }) ?? true { minBytes = Array(bytes) }
        if maximumBytes.map({ Self.less($0, bytes, signed: order == .signedBytes) }) ?? true { maximumBytes = Array(bytes) }
    }

    mutating func add(_ bytes: [UInt8]) { bytes.withUnsafeBytes { add($0) } }

    static func less(_ a: UnsafeRawBufferPointer, _ b: [UInt8], signed: Bool) -> Bool {
        b.withUnsafeBytes { less(a, $0, signed: signed) }
    }

    static func less(_ a: [UInt8], _ b: UnsafeRawBufferPointer, signed: Bool) -> Bool {
        a.withUnsafeBytes { less($0, b, signed: signed) }
    }

    /// Unsigned lexicographic order; `signed`: two's-complement big-endian numbers of possibly different widths.
    static func less(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer, signed: Bool) -> Bool {
        if signed {
            let negativeA = (a.first ?? 0) >= 0x80
            let negativeB = (b.first ?? 0) >= 0x80
            if negativeA != negativeB { return negativeA }
            // Same sign: widen the shorter by sign extension, then compare as unsigned.
            let width = max(a.count, b.count)
            let fill: UInt8 = negativeA ? 0xFF : 0
            for index in 0..<width {
                let x = index < width - a.count ? fill : a[index - (width - a.count)]
                let y = index < width - b.count ? fill : b[index - (width - b.count)]
                if x != y { return x < y }
            }
            return false
        }
        let common = min(a.count, b.count)
        for index in 0..<common where a[index] != b[index] { return a[index] < b[index] }
        return a.count < b.count
    }

    /// The footer's statistics, min and max PLAIN-encoded in the column's physical type.
    func statistics(physicalType: PhysicalType) -> Statistics {
        var statistics = Statistics()
        statistics.nullCount = nullCount
        guard seen else { return statistics }
        switch order {
        case .boolean:
            statistics.minValue = [UInt8(minInteger)]
            statistics.maxValue = [UInt8(maxInteger)]
        case .signed:
            statistics.minValue = Self.littleEndian(minInteger, physicalType)
            statistics.maxValue = Self.littleEndian(maxInteger, physicalType)
        case .unsigned:
            statistics.minValue = Self.littleEndian(Int64(bitPattern: minUnsigned), physicalType)
            statistics.maxValue = Self.littleEndian(Int64(bitPattern: maxUnsigned), physicalType)
        case .floating:
            guard sawFloat else { return statistics }
            // An all-zero range is written as [-0, +0], as the specification asks.
            let low = minFloating == 0 ? -0.0 : minFloating
            let high = maxFloating == 0 ? 0.0 : maxFloating
            if physicalType == .float {
                statistics.minValue = Self.bytes(Float(low).bitPattern)
                statistics.maxValue = Self.bytes(Float(high).bitPattern)
            } else {
                statistics.minValue = Self.bytes(low.bitPattern)
                statistics.maxValue = Self.bytes(high.bitPattern)
            }
        case .bytes, .signedBytes:
            guard !tooLong else { return statistics }
            statistics.minValue = minBytes
            statistics.maxValue = maximumBytes
        }
        statistics.isMinValueExact = true
        statistics.isMaxValueExact = true
        return statistics
    }

    static func littleEndian(_ value: Int64, _ physicalType: PhysicalType) -> [UInt8] {
        physicalType == .int32 ? bytes(UInt32(truncatingIfNeeded: value)) : bytes(UInt64(bitPattern: value))
    }

    static func bytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }
}
