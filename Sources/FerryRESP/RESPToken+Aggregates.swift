public import NIOCore

extension RESPToken {
    /// The children of an array, set or push, read one at a time.
    public struct Array: Sequence, Hashable, Sendable {
        public typealias Element = RESPToken

        public let count: Int
        let children: ByteBuffer

        init(count: Int, children: ByteBuffer) {
            self.count = count
            self.children = children
        }

        public func makeIterator() -> Iterator { Iterator(buffer: children) }

        public struct Iterator: IteratorProtocol {
            var buffer: ByteBuffer

            public mutating func next() -> RESPToken? {
                guard buffer.readableBytes > 0 else { return nil }
                let end = RESPToken.skip(buffer, from: buffer.readerIndex)
                return RESPToken(validated: buffer.readSlice(length: end - buffer.readerIndex)!)
            }
        }

        /// The children in an array; for small aggregates where random access helps.
        public var elements: [RESPToken] { Swift.Array(self) }
    }

    /// The pairs of a map or attribute, read one at a time.
    public struct Map: Sequence, Hashable, Sendable {
        public typealias Element = (key: RESPToken, value: RESPToken)

        /// Number of pairs.
        public let count: Int
        let children: ByteBuffer

        init(count: Int, children: ByteBuffer) {
            self.count = count
            self.children = children
        }

        public func makeIterator() -> Iterator { Iterator(inner: Array.Iterator(buffer: children)) }

        public struct Iterator: IteratorProtocol {
            var inner: Array.Iterator

            public mutating func next() -> (key: RESPToken, value: RESPToken)? {
                guard let key = inner.next(), let value = inner.next() else { return nil }
                return (key, value)
            }
        }
    }
}

extension RESPToken.Array {
    /// A forward reader over the children, for callers that read many plain values (a stream reply's entries).
    public var reader: RESPToken.Reader { RESPToken.Reader(buffer: children) }
}

extension RESPToken {
    /// Reads the common shapes straight from validated bytes — array headers and bulk or simple strings — in one
    /// pass, without making a token per value. Anything else (null, attribute, map, number…) makes a read return
    /// nil without moving, so the caller can fall back to tokens.
    public struct Reader {
        private var buffer: ByteBuffer

        init(buffer: ByteBuffer) {
            self.buffer = buffer
        }

        public var isAtEnd: Bool { buffer.readableBytes == 0 }

        /// The header line of the next value: its type byte, the length or count on it (for `$`, `*` and `~`;
        /// a `-1` is none), and where the line ends relative to the reader index.
        private func header() -> (type: UInt8, number: Int, lineEnd: Int)? {
            buffer.withUnsafeReadableBytes { bytes -> (UInt8, Int, Int)? in
                guard bytes.count >= 3 else { return nil }
                let type = bytes[0]
                var index = 1
                var number = 0
                if type == UInt8(ascii: "+") {
                    while index < bytes.count, bytes[index] != 0x0D { index += 1 }
                } else {
                    while index < bytes.count, bytes[index] != 0x0D {
                        let digit = bytes[index] &- UInt8(ascii: "0")
                        guard digit < 10, index < 19 else { return nil }
                        number = number * 10 + Int(digit)
                        index += 1
                    }
                }
                guard index < bytes.count, index > 1 || type == UInt8(ascii: "+") else { return nil }
                return (type, number, index)
            }
        }

        /// The element count of an array (`*`) or set (`~`) that follows; its children are read next.
        public mutating func readArrayHeader() -> Int? {
            guard let (type, count, lineEnd) = header(), type == UInt8(ascii: "*") || type == UInt8(ascii: "~") else { return nil }
            buffer.moveReaderIndex(forwardBy: lineEnd + 2)
            return count
        }

        /// The payload of a bulk (`$`) or simple (`+`) string that follows, sharing the reply's storage.
        public mutating func readString() -> ByteBuffer? {
            guard let (type, number, lineEnd) = header() else { return nil }
            switch type {
            case UInt8(ascii: "$"):
                guard buffer.readableBytes >= lineEnd + 2 + number + 2 else { return nil }
                buffer.moveReaderIndex(forwardBy: lineEnd + 2)
                let payload = buffer.readSlice(length: number)
                buffer.moveReaderIndex(forwardBy: 2)
                return payload
            case UInt8(ascii: "+"):
                let line = buffer.getSlice(at: buffer.readerIndex + 1, length: lineEnd - 1)
                buffer.moveReaderIndex(forwardBy: lineEnd + 2)
                return line
            default:
                return nil
            }
        }
    }
}
