public import NIOCore

/// One complete, validated RESP value: a slice of the received bytes, decoded lazily and without copying.
///
/// Tokens come from ``RESPTokenDecoder`` (or ``init(validating:)``), so every accessor can rely on the bytes
/// being well-formed. Attributes that precede a value are kept in the slice and exposed by ``attributes``.
public struct RESPToken: Hashable, Sendable, CustomStringConvertible {
    /// The value's bytes, attributes included: exactly one value, nothing after it (every initializer ensures it).
    public let base: ByteBuffer

    /// The value, decoded one level deep: aggregates are lazy views over their children.
    public enum Value: Hashable, Sendable {
        case simpleString(ByteBuffer)
        case simpleError(ByteBuffer)
        case bulkString(ByteBuffer)
        case bulkError(ByteBuffer)
        /// The payload including its three-letter format and colon, e.g. `txt:hello`.
        case verbatimString(ByteBuffer)
        case number(Int64)
        case double(Double)
        case boolean(Bool)
        /// Decimal digits, with an optional sign.
        case bigNumber(ByteBuffer)
        /// `_`, `$-1` or `*-1`.
        case null
        case array(Array)
        case set(Array)
        case map(Map)
        /// An out-of-band message (RESP3 `>`): never a reply to a command.
        case push(Array)
    }

    /// Wraps bytes already validated by a ``RESPFrameScanner``.
    init(validated: ByteBuffer) {
        self.base = validated
    }

    /// Validates `buffer` as exactly one frame.
    public init(validating buffer: ByteBuffer, limits: RESPFrameScanner.Limits = .init()) throws(RESPParsingError) {
        var scanner = RESPFrameScanner(limits: limits)
        guard let length = try scanner.scan(buffer) else { throw RESPParsingError(.missingCRLF, offset: buffer.readableBytes) }
        guard length == buffer.readableBytes else { throw RESPParsingError(.invalidData, offset: length) }
        self.base = buffer
    }

    /// The type of the value, attributes skipped.
    public var identifier: RESPTypeIdentifier {
        RESPTypeIdentifier(rawValue: base.getInteger(at: valueStart, as: UInt8.self)!)!
    }

    /// Whether this is an out-of-band push rather than a reply.
    public var isPush: Bool { identifier == .push }

    /// Attributes sent before the value, if any (the last attribute block when there are several).
    public var attributes: Map? {
        var index = base.readerIndex
        var found: Map?
        while base.getInteger(at: index, as: UInt8.self) == RESPTypeIdentifier.attribute.rawValue {
            let lineEnd = RESPBytes.lineEnd(base, from: index + 1)
            let count = Int(RESPBytes.parseInteger(base, index + 1, lineEnd)!)
            let end = Self.attributeEnd(base, at: index)
            found = Map(count: count, children: base.getSlice(at: lineEnd + 2, length: end - lineEnd - 2)!)
            index = end
        }
        return found
    }

    /// Index of the first byte after any attributes.
    var valueStart: Int {
        var index = base.readerIndex
        guard base.getInteger(at: index, as: UInt8.self) == RESPTypeIdentifier.attribute.rawValue else { return index }
        while base.getInteger(at: index, as: UInt8.self) == RESPTypeIdentifier.attribute.rawValue {
            index = Self.attributeEnd(base, at: index)
        }
        return index
    }

    /// Index just past the attribute block (only its pairs, not the value it annotates) at `index`.
    static func attributeEnd(_ buffer: ByteBuffer, at index: Int) -> Int {
        let lineEnd = RESPBytes.lineEnd(buffer, from: index + 1)
        let count = Int(RESPBytes.parseInteger(buffer, index + 1, lineEnd)!)
        var position = lineEnd + 2
        for _ in 0..<(count * 2) { position = skip(buffer, from: position) }
        return position
    }

    public var value: Value {
        let start = valueStart
        let type = RESPTypeIdentifier(rawValue: base.getInteger(at: start, as: UInt8.self)!)!
        let lineEnd = RESPBytes.lineEnd(base, from: start + 1)
        let lineLength = lineEnd - start - 1
        func line() -> ByteBuffer { base.getSlice(at: start + 1, length: lineLength)! }
        switch type {
        case .simpleString: return .simpleString(line())
        case .simpleError: return .simpleError(line())
        case .bigNumber: return .bigNumber(line())
        case .integer: return .number(RESPBytes.parseInteger(base, start + 1, lineEnd)!)
        case .double: return .double(RESPBytes.parseDouble(base, start + 1, lineEnd)!)
        case .boolean: return .boolean(base.getInteger(at: start + 1, as: UInt8.self) == UInt8(ascii: "t"))
        case .null: return .null
        case .bulkString, .bulkError, .verbatimString:
            let length = Int(RESPBytes.parseInteger(base, start + 1, lineEnd)!)
            if length < 0 { return .null }
            let payload = base.getSlice(at: lineEnd + 2, length: length)!
            switch type {
            case .bulkString: return .bulkString(payload)
            case .bulkError: return .bulkError(payload)
            default: return .verbatimString(payload)
            }
        case .array, .set, .push, .map, .attribute:
            let count = Int(RESPBytes.parseInteger(base, start + 1, lineEnd)!)
            if count < 0 { return .null }
            // `base` ends where the value ends, so the children run to its end: no walk over them to find it
            // (a stream entry's fields were walked once per level of nesting before).
            let children = base.getSlice(at: lineEnd + 2, length: base.writerIndex - lineEnd - 2)!
            switch type {
            case .array: return .array(Array(count: count, children: children))
            case .set: return .set(Array(count: count, children: children))
            case .push: return .push(Array(count: count, children: children))
            default: return .map(Map(count: count, children: children))
            }
        }
    }

    /// Index just past the value (with its attributes) that starts at `index` of a validated buffer.
    static func skip(_ buffer: ByteBuffer, from index: Int) -> Int {
        var index = index
        var remaining = 1
        while remaining > 0 {
            let type = RESPTypeIdentifier(rawValue: buffer.getInteger(at: index, as: UInt8.self)!)!
            let lineStart = index + 1
            let lineEnd = RESPBytes.lineEnd(buffer, from: lineStart)
            index = lineEnd + 2
            remaining -= 1
            switch type {
            case .bulkString, .bulkError, .verbatimString:
                let length = Int(RESPBytes.parseInteger(buffer, lineStart, lineEnd)!)
                if length >= 0 { index += length + 2 }
            case .array, .set, .push, .map:
                let count = Int(RESPBytes.parseInteger(buffer, lineStart, lineEnd)!)
                if count > 0 { remaining += count * type.childrenPerCount! }
            case .attribute:
                // The attribute's pairs, then the value it annotates.
                remaining += Int(RESPBytes.parseInteger(buffer, lineStart, lineEnd)!) * 2 + 1
            default:
                break
            }
        }
        return index
    }

    public var description: String { RESPTokenFormatter.describe(self) }
}
