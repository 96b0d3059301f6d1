public import NIOCore

/// Finds where the next complete RESP frame ends, validating it on the way, without consuming anything.
///
/// Resumable: when a frame is incomplete it remembers how far it validated (and which aggregates are open), so
/// the next call continues from there instead of rescanning a large reply from its start. A frame is one value,
/// preceded by any attributes that annotate it.
public struct RESPFrameScanner: Sendable {
    /// Bounds that protect the client from a hostile or broken server.
    public struct Limits: Sendable, Hashable {
        /// Deepest nesting of aggregates. Default 64.
        public var maxDepth: Int = 64
        /// Most children in one aggregate. Default 2²⁴.
        public var maxElements: Int = 1 << 24
        /// Longest bulk string. Default 512 MiB, Redis's own `proto-max-bulk-len`.
        public var maxBulkLength: Int = 512 * 1024 * 1024
        /// Longest header or simple-string line. Default 1 MiB.
        public var maxLineLength: Int = 1024 * 1024

        public init() {}
    }

    private struct OpenAggregate: Sendable {
        var remaining: Int
        var isAttribute: Bool
    }

    public let limits: Limits
    /// Bytes of the current frame already validated, counted from the buffer's reader index.
    private var validated = 0
    private var open: [OpenAggregate] = []
    /// Bytes looked at so far, over the scanner's life; tests use it to prove no frame is rescanned.
    private(set) var bytesExamined = 0

    public init(limits: Limits = .init()) {
        self.limits = limits
    }

    /// Returns the length of the complete frame at the start of `buffer`'s readable bytes, or `nil` when more
    /// bytes are needed. After a non-nil result, the caller consumes that many bytes before calling again.
    public mutating func scan(_ buffer: ByteBuffer) throws(RESPParsingError) -> Int? {
        while true {
            let start = buffer.readerIndex + validated
            guard buffer.writerIndex > start else { return nil }
            let leading = buffer.getInteger(at: start, as: UInt8.self)!
            guard let type = RESPTypeIdentifier(rawValue: leading) else {
                throw RESPParsingError(.invalidLeadingByte, offset: validated)
            }
            guard let lineEnd = try findLineEnd(buffer, from: start + 1) else {
                bytesExamined += buffer.writerIndex - start
                return nil
            }
            let lineStart = start + 1
            let headerLength = lineEnd + 2 - start
            bytesExamined += headerLength
            var valueLength = headerLength

            switch type {
            case .simpleString, .simpleError:
                break
            case .bigNumber:
                guard RESPBytes.isBigNumber(buffer, lineStart, lineEnd) else { throw RESPParsingError(.invalidData, offset: validated + 1) }
            case .integer:
                guard RESPBytes.parseInteger(buffer, lineStart, lineEnd) != nil else { throw RESPParsingError(.invalidData, offset: validated + 1) }
            case .double:
                guard RESPBytes.parseDouble(buffer, lineStart, lineEnd) != nil else { throw RESPParsingError(.invalidData, offset: validated + 1) }
            case .boolean:
                let byte = lineEnd - lineStart == 1 ? buffer.getInteger(at: lineStart, as: UInt8.self) : nil
                guard byte == UInt8(ascii: "t") || byte == UInt8(ascii: "f") else { throw RESPParsingError(.invalidData, offset: validated + 1) }
            case .null:
                guard lineEnd == lineStart else { throw RESPParsingError(.invalidData, offset: validated + 1) }
            case .bulkString, .bulkError, .verbatimString:
                guard let length = RESPBytes.parseInteger(buffer, lineStart, lineEnd) else {
                    throw RESPParsingError(.invalidLength, offset: validated + 1)
                }
                if length == -1 && type == .bulkString { break }
                guard length >= 0 else { throw RESPParsingError(.invalidLength, offset: validated + 1) }
                guard length <= limits.maxBulkLength else { throw RESPParsingError(.bulkTooLong, offset: validated + 1) }
                let payloadEnd = lineEnd + 2 + Int(length)
                guard buffer.writerIndex >= payloadEnd + 2 else { return nil }
                guard buffer.getInteger(at: payloadEnd, as: UInt16.self) == RESPBytes.crlf else {
                    throw RESPParsingError(.missingCRLF, offset: payloadEnd - buffer.readerIndex)
                }
                if type == .verbatimString {
                    guard length >= 4, buffer.getInteger(at: lineEnd + 5, as: UInt8.self) == UInt8(ascii: ":") else {
                        throw RESPParsingError(.invalidData, offset: headerLength + validated)
                    }
                }
                valueLength += Int(length) + 2
            case .array, .set, .push, .map, .attribute:
                guard let count = RESPBytes.parseInteger(buffer, lineStart, lineEnd) else {
                    throw RESPParsingError(.invalidLength, offset: validated + 1)
                }
                if count == -1 && (type == .array || type == .set || type == .map) { break }
                guard count >= 0 else { throw RESPParsingError(.invalidLength, offset: validated + 1) }
                guard count <= limits.maxElements else { throw RESPParsingError(.tooManyElements, offset: validated + 1) }
                let children = Int(count) * type.childrenPerCount!
                if children > 0 {
                    guard open.count < limits.maxDepth else { throw RESPParsingError(.tooDeep, offset: validated) }
                    open.append(OpenAggregate(remaining: children, isAttribute: type == .attribute))
                    validated += headerLength
                    continue
                }
                if type == .attribute {
                    // An empty attribute still annotates the value that follows.
                    validated += headerLength
                    continue
                }
            }

            validated += valueLength
            if completeValue() {
                let length = validated
                validated = 0
                return length
            }
        }
    }

    /// Records that one value finished; returns whether the whole frame is now complete.
    private mutating func completeValue() -> Bool {
        while !open.isEmpty {
            open[open.count - 1].remaining -= 1
            if open[open.count - 1].remaining > 0 { return false }
            let closed = open.removeLast()
            // A finished attribute is not a value: the value it annotates comes next.
            if closed.isAttribute { return false }
        }
        return true
    }

    /// Index of the CR that ends the line starting at `from`, or `nil` if the line is not complete yet.
    private func findLineEnd(_ buffer: ByteBuffer, from: Int) throws(RESPParsingError) -> Int? {
        let available = buffer.writerIndex - from
        let searchLength = min(available, limits.maxLineLength + 1)
        let found: Int? = buffer.withUnsafeReadableBytes { bytes in
            let base = from - buffer.readerIndex
            for index in base..<(base + searchLength) where bytes[index] == 0x0D || bytes[index] == 0x0A {
                return index + buffer.readerIndex
            }
            return nil
        }
        guard let cr = found else {
            if available > limits.maxLineLength { throw RESPParsingError(.lineTooLong, offset: from - buffer.readerIndex) }
            return nil
        }
        guard buffer.getInteger(at: cr, as: UInt8.self) == 0x0D else { throw RESPParsingError(.missingCRLF, offset: cr - buffer.readerIndex) }
        guard cr + 1 < buffer.writerIndex else { return nil }
        guard buffer.getInteger(at: cr + 1, as: UInt8.self) == 0x0A else { throw RESPParsingError(.missingCRLF, offset: cr + 1 - buffer.readerIndex) }
        return cr
    }
}
