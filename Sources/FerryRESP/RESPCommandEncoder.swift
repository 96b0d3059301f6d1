public import NIOCore

/// Writes commands as RESP arrays of bulk strings straight into a `ByteBuffer`, with no intermediate strings.
public struct RESPCommandEncoder {
    public var buffer: ByteBuffer

    @inlinable
    public init(buffer: ByteBuffer) {
        self.buffer = buffer
    }

    /// Writes one command: every value's arguments, in order, under one array header.
    @inlinable
    public mutating func encodeArray<each Value: RESPRenderable>(_ values: repeat each Value) {
        var count = 0
        for value in repeat each values { count += value.respEntries }
        writeHeader(RESPTypeIdentifier.array.rawValue, Int64(count))
        for value in repeat each values { value.encode(into: &self) }
    }

    // Fixed-arity forms of `encodeArray`: the optimiser specialises these (it does not specialise parameter
    // packs), which removes generic-metadata lookups from every command on the hot path.

    @inlinable
    public mutating func encodeArray<A: RESPRenderable>(_ a: A) {
        writeHeader(RESPTypeIdentifier.array.rawValue, Int64(a.respEntries))
        a.encode(into: &self)
    }

    @inlinable
    public mutating func encodeArray<A: RESPRenderable, B: RESPRenderable>(_ a: A, _ b: B) {
        writeHeader(RESPTypeIdentifier.array.rawValue, Int64(a.respEntries + b.respEntries))
        a.encode(into: &self)
        b.encode(into: &self)
    }

    @inlinable
    public mutating func encodeArray<A: RESPRenderable, B: RESPRenderable, C: RESPRenderable>(_ a: A, _ b: B, _ c: C) {
        writeHeader(RESPTypeIdentifier.array.rawValue, Int64(a.respEntries + b.respEntries + c.respEntries))
        a.encode(into: &self)
        b.encode(into: &self)
        c.encode(into: &self)
    }

    @inlinable
    public mutating func encodeArray<A: RESPRenderable, B: RESPRenderable, C: RESPRenderable, D: RESPRenderable>(_ a: A, _ b: B, _ c: C, _ d: D) {
        writeHeader(RESPTypeIdentifier.array.rawValue, Int64(a.respEntries + b.respEntries + c.respEntries + d.respEntries))
        a.encode(into: &self)
        b.encode(into: &self)
        c.encode(into: &self)
        d.encode(into: &self)
    }

    @inlinable
    public mutating func encodeArray<A: RESPRenderable, B: RESPRenderable, C: RESPRenderable, D: RESPRenderable, E: RESPRenderable>(
        _ a: A, _ b: B, _ c: C, _ d: D, _ e: E
    ) {
        writeHeader(RESPTypeIdentifier.array.rawValue, Int64(a.respEntries + b.respEntries + c.respEntries + d.respEntries + e.respEntries))
        a.encode(into: &self)
        b.encode(into: &self)
        c.encode(into: &self)
        d.encode(into: &self)
        e.encode(into: &self)
    }

    @inlinable
    public mutating func encodeArray<
        A: RESPRenderable, B: RESPRenderable, C: RESPRenderable, D: RESPRenderable, E: RESPRenderable, F: RESPRenderable
    >(_ a: A, _ b: B, _ c: C, _ d: D, _ e: E, _ f: F) {
        writeHeader(
            RESPTypeIdentifier.array.rawValue, Int64(a.respEntries + b.respEntries + c.respEntries + d.respEntries + e.respEntries + f.respEntries))
        a.encode(into: &self)
        b.encode(into: &self)
        c.encode(into: &self)
        d.encode(into: &self)
        e.encode(into: &self)
        f.encode(into: &self)
    }

    @inlinable
    public mutating func encodeArray<
        A: RESPRenderable, B: RESPRenderable, C: RESPRenderable, D: RESPRenderable, E: RESPRenderable, F: RESPRenderable, G: RESPRenderable
    >(_ a: A, _ b: B, _ c: C, _ d: D, _ e: E, _ f: F, _ g: G) {
        writeHeader(
            RESPTypeIdentifier.array.rawValue,
            Int64(a.respEntries + b.respEntries + c.respEntries + d.respEntries + e.respEntries + f.respEntries + g.respEntries))
        a.encode(into: &self)
        b.encode(into: &self)
        c.encode(into: &self)
        d.encode(into: &self)
        e.encode(into: &self)
        f.encode(into: &self)
        g.encode(into: &self)
    }

    @inlinable
    public mutating func encodeArray<
        A: RESPRenderable, B: RESPRenderable, C: RESPRenderable, D: RESPRenderable, E: RESPRenderable, F: RESPRenderable, G: RESPRenderable,
        H: RESPRenderable
    >(_ a: A, _ b: B, _ c: C, _ d: D, _ e: E, _ f: F, _ g: G, _ h: H) {
        writeHeader(
            RESPTypeIdentifier.array.rawValue,
            Int64(a.respEntries + b.respEntries + c.respEntries + d.respEntries + e.respEntries + f.respEntries + g.respEntries + h.respEntries))
        a.encode(into: &self)
        b.encode(into: &self)
        c.encode(into: &self)
        d.encode(into: &self)
        e.encode(into: &self)
        f.encode(into: &self)
        g.encode(into: &self)
        h.encode(into: &self)
    }

    @inlinable
    public mutating func encodeArray<
        A: RESPRenderable, B: RESPRenderable, C: RESPRenderable, D: RESPRenderable, E: RESPRenderable, F: RESPRenderable, G: RESPRenderable,
        H: RESPRenderable, I: RESPRenderable
    >(_ a: A, _ b: B, _ c: C, _ d: D, _ e: E, _ f: F, _ g: G, _ h: H, _ i: I) {
        writeHeader(
            RESPTypeIdentifier.array.rawValue,
            Int64(
                a.respEntries + b.respEntries + c.respEntries + d.respEntries + e.respEntries + f.respEntries + g.respEntries + h.respEntries
                    + i.respEntries))
        a.encode(into: &self)
        b.encode(into: &self)
        c.encode(into: &self)
        d.encode(into: &self)
        e.encode(into: &self)
        f.encode(into: &self)
        g.encode(into: &self)
        h.encode(into: &self)
        i.encode(into: &self)
    }

    @inlinable
    public mutating func encodeArray<
        A: RESPRenderable, B: RESPRenderable, C: RESPRenderable, D: RESPRenderable, E: RESPRenderable, F: RESPRenderable, G: RESPRenderable,
        H: RESPRenderable, I: RESPRenderable, J: RESPRenderable
    >(_ a: A, _ b: B, _ c: C, _ d: D, _ e: E, _ f: F, _ g: G, _ h: H, _ i: I, _ j: J) {
        writeHeader(
            RESPTypeIdentifier.array.rawValue,
            Int64(
                a.respEntries + b.respEntries + c.respEntries + d.respEntries + e.respEntries + f.respEntries + g.respEntries + h.respEntries
                    + i.respEntries + j.respEntries))
        a.encode(into: &self)
        b.encode(into: &self)
        c.encode(into: &self)
        d.encode(into: &self)
        e.encode(into: &self)
        f.encode(into: &self)
        g.encode(into: &self)
        h.encode(into: &self)
        i.encode(into: &self)
        j.encode(into: &self)
    }

    @inlinable
    public mutating func encodeArray<
        A: RESPRenderable, B: RESPRenderable, C: RESPRenderable, D: RESPRenderable, E: RESPRenderable, F: RESPRenderable, G: RESPRenderable,
        H: RESPRenderable, I: RESPRenderable, J: RESPRenderable, K: RESPRenderable
    >(_ a: A, _ b: B, _ c: C, _ d: D, _ e: E, _ f: F, _ g: G, _ h: H, _ i: I, _ j: J, _ k: K) {
        writeHeader(
            RESPTypeIdentifier.array.rawValue,
            Int64(
                a.respEntries + b.respEntries + c.respEntries + d.respEntries + e.respEntries + f.respEntries + g.respEntries + h.respEntries
                    + i.respEntries + j.respEntries + k.respEntries))
        a.encode(into: &self)
        b.encode(into: &self)
        c.encode(into: &self)
        d.encode(into: &self)
        e.encode(into: &self)
        f.encode(into: &self)
        g.encode(into: &self)
        h.encode(into: &self)
        i.encode(into: &self)
        j.encode(into: &self)
        k.encode(into: &self)
    }

    @inlinable
    public mutating func encodeArray<
        A: RESPRenderable, B: RESPRenderable, C: RESPRenderable, D: RESPRenderable, E: RESPRenderable, F: RESPRenderable, G: RESPRenderable,
        H: RESPRenderable, I: RESPRenderable, J: RESPRenderable, K: RESPRenderable, L: RESPRenderable
    >(_ a: A, _ b: B, _ c: C, _ d: D, _ e: E, _ f: F, _ g: G, _ h: H, _ i: I, _ j: J, _ k: K, _ l: L) {
        writeHeader(
            RESPTypeIdentifier.array.rawValue,
            Int64(
                a.respEntries + b.respEntries + c.respEntries + d.respEntries + e.respEntries + f.respEntries + g.respEntries + h.respEntries
                    + i.respEntries + j.respEntries + k.respEntries + l.respEntries))
        a.encode(into: &self)
        b.encode(into: &self)
        c.encode(into: &self)
        d.encode(into: &self)
        e.encode(into: &self)
        f.encode(into: &self)
        g.encode(into: &self)
        h.encode(into: &self)
        i.encode(into: &self)
        j.encode(into: &self)
        k.encode(into: &self)
        l.encode(into: &self)
    }

    /// Starts a command of `count` arguments; write exactly that many bulk strings next. For commands whose
    /// argument count is cheaper to compute than to collect.
    @inlinable
    public mutating func encodeArrayHeader(count: Int) {
        writeHeader(RESPTypeIdentifier.array.rawValue, Int64(count))
    }

    /// Writes a command whose arguments are already in an array (the generic `send`).
    @inlinable
    public mutating func encodeArray(arguments: [any RESPRenderable]) {
        let count = arguments.reduce(0) { $0 + $1.respEntries }
        writeHeader(RESPTypeIdentifier.array.rawValue, Int64(count))
        for argument in arguments { argument.encode(into: &self) }
    }

    @inlinable
    public mutating func encodeBulkString(_ string: String) {
        var string = string
        string.withUTF8 { bytes in
            writeBulk(length: bytes.count) { target in
                target.copyMemory(from: UnsafeRawBufferPointer(bytes))
            }
        }
    }

    @inlinable
    public mutating func encodeBulkBytes(_ bytes: ByteBuffer) {
        bytes.withUnsafeReadableBytes { source in
            writeBulk(length: source.count) { target in target.copyMemory(from: source) }
        }
    }

    @inlinable
    public mutating func encodeBulkBytes(_ bytes: some Collection<UInt8>) {
        writeHeader(RESPTypeIdentifier.bulkString.rawValue, Int64(bytes.count))
        buffer.writeBytes(bytes)
        buffer.writeInteger(UInt16(0x0D0A))
    }

    @inlinable
    public mutating func encodeBulkInteger(_ value: Int64) {
        let digits = Self.decimalLength(value)
        writeBulk(length: digits) { target in Self.writeDecimal(value, length: digits, into: target, at: 0) }
    }

    /// Writes `$<length>\r\n<payload>\r\n` with one capacity check; `fill` writes exactly `length` bytes.
    @inlinable
    mutating func writeBulk(length: Int, _ fill: (UnsafeMutableRawBufferPointer) -> Void) {
        let digits = Self.decimalLength(Int64(length))
        let total = 1 + digits + 2 + length + 2
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: total) { pointer in
            pointer[0] = RESPTypeIdentifier.bulkString.rawValue
            Self.writeDecimal(Int64(length), length: digits, into: pointer, at: 1)
            pointer[1 + digits] = 0x0D
            pointer[2 + digits] = 0x0A
            fill(UnsafeMutableRawBufferPointer(rebasing: pointer[(3 + digits)..<(3 + digits + length)]))
            pointer[total - 2] = 0x0D
            pointer[total - 1] = 0x0A
            return total
        }
    }

    /// Writes `<type><value>\r\n` with one capacity check.
    @inlinable
    mutating func writeHeader(_ type: UInt8, _ value: Int64) {
        let digits = Self.decimalLength(value)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: digits + 3) { pointer in
            pointer[0] = type
            Self.writeDecimal(value, length: digits, into: pointer, at: 1)
            pointer[1 + digits] = 0x0D
            pointer[2 + digits] = 0x0A
            return digits + 3
        }
    }

    /// Writes `value` in decimal ASCII, `length` digits (sign included), at `offset`.
    @inlinable
    static func writeDecimal(_ value: Int64, length: Int, into pointer: UnsafeMutableRawBufferPointer, at offset: Int) {
        var magnitude = value.magnitude
        var index = offset + length - 1
        repeat {
            pointer[index] = UInt8(ascii: "0") + UInt8(magnitude % 10)
            magnitude /= 10
            index -= 1
        } while magnitude > 0
        if value < 0 { pointer[offset] = UInt8(ascii: "-") }
    }

    @inlinable
    static func decimalLength(_ value: Int64) -> Int {
        var magnitude = value.magnitude
        var length = value < 0 ? 2 : 1
        while magnitude >= 10 {
            magnitude /= 10
            length += 1
        }
        return length
    }
}
