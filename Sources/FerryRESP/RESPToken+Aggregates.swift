import NIOCore

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
