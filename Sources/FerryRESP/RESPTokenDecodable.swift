public import NIOCore

/// A reply did not have the shape a command expects (for example an array where a number was due).
public struct RESPDecodeError: Error, Sendable, Hashable, CustomStringConvertible {
    public var expected: String
    public var found: RESPTypeIdentifier?

    public init(expected: String, found: RESPTypeIdentifier?) {
        self.expected = expected
        self.found = found
    }

    public var description: String {
        "unexpected reply: expected \(expected), got \(found.map { "\($0)" } ?? "nothing")"
    }
}

/// A type that can be read from a reply token.
public protocol RESPTokenDecodable {
    init(fromRESP token: RESPToken) throws(RESPDecodeError)
}

extension RESPToken: RESPTokenDecodable {
    public init(fromRESP token: RESPToken) { self = token }
}

extension ByteBuffer: RESPTokenDecodable {
    public init(fromRESP token: RESPToken) throws(RESPDecodeError) {
        switch token.value {
        case .bulkString(let b), .simpleString(let b), .verbatimString(let b), .bigNumber(let b): self = b
        default: throw RESPDecodeError(expected: "a string", found: token.identifier)
        }
    }
}

extension String: RESPTokenDecodable {
    public init(fromRESP token: RESPToken) throws(RESPDecodeError) {
        switch token.value {
        case .bulkString(let b), .simpleString(let b), .bigNumber(let b): self = String(buffer: b)
        case .verbatimString(let b): self = String(buffer: b.getSlice(at: b.readerIndex + 4, length: b.readableBytes - 4)!)
        case .number(let n): self = String(n)
        case .double(let d): self = String(d)
        default: throw RESPDecodeError(expected: "a string", found: token.identifier)
        }
    }
}

extension Int64: RESPTokenDecodable {
    public init(fromRESP token: RESPToken) throws(RESPDecodeError) {
        switch token.value {
        case .number(let n): self = n
        case .bulkString(let b), .simpleString(let b):
            guard let n = RESPBytes.parseInteger(b, b.readerIndex, b.writerIndex) else {
                throw RESPDecodeError(expected: "an integer", found: token.identifier)
            }
            self = n
        case .boolean(let b): self = b ? 1 : 0
        default: throw RESPDecodeError(expected: "an integer", found: token.identifier)
        }
    }
}

extension Int: RESPTokenDecodable {
    public init(fromRESP token: RESPToken) throws(RESPDecodeError) {
        self = Int(try Int64(fromRESP: token))
    }
}

extension Double: RESPTokenDecodable {
    public init(fromRESP token: RESPToken) throws(RESPDecodeError) {
        switch token.value {
        case .double(let d): self = d
        case .number(let n): self = Double(n)
        case .bulkString(let b), .simpleString(let b):
            guard let d = RESPBytes.parseDouble(b, b.readerIndex, b.writerIndex) else {
                throw RESPDecodeError(expected: "a number", found: token.identifier)
            }
            self = d
        default: throw RESPDecodeError(expected: "a number", found: token.identifier)
        }
    }
}

extension Bool: RESPTokenDecodable {
    public init(fromRESP token: RESPToken) throws(RESPDecodeError) {
        switch token.value {
        case .boolean(let b): self = b
        case .number(let n): self = n != 0
        case .simpleString(let b): self = String(buffer: b) == "OK"
        default: throw RESPDecodeError(expected: "a boolean", found: token.identifier)
        }
    }
}

extension Optional: RESPTokenDecodable where Wrapped: RESPTokenDecodable {
    public init(fromRESP token: RESPToken) throws(RESPDecodeError) {
        if case .null = token.value {
            self = .none
        } else {
            self = .some(try Wrapped(fromRESP: token))
        }
    }
}

extension Array: RESPTokenDecodable where Element: RESPTokenDecodable {
    public init(fromRESP token: RESPToken) throws(RESPDecodeError) {
        switch token.value {
        case .array(let a), .set(let a), .push(let a):
            var result: [Element] = []
            result.reserveCapacity(a.count)
            for element in a { result.append(try Element(fromRESP: element)) }
            self = result
        case .null: self = []
        default: throw RESPDecodeError(expected: "an array", found: token.identifier)
        }
    }
}

extension RESPToken {
    /// Reads the token as `T`.
    public func decode<T: RESPTokenDecodable>(as type: T.Type = T.self) throws(RESPDecodeError) -> T {
        try T(fromRESP: self)
    }

    /// Pairs of a RESP3 map or a flat RESP2 array of alternating keys and values.
    public func pairs() throws(RESPDecodeError) -> [(key: RESPToken, value: RESPToken)] {
        switch value {
        case .map(let map): return Swift.Array(map)
        case .array(let array):
            var result: [(key: RESPToken, value: RESPToken)] = []
            result.reserveCapacity(array.count / 2)
            var iterator = array.makeIterator()
            while let key = iterator.next() {
                guard let value = iterator.next() else { throw RESPDecodeError(expected: "key-value pairs", found: .array) }
                result.append((key, value))
            }
            return result
        case .null: return []
        default: throw RESPDecodeError(expected: "a map", found: identifier)
        }
    }

    /// The elements of an array, set or push.
    public func elements() throws(RESPDecodeError) -> [RESPToken] {
        switch value {
        case .array(let a), .set(let a), .push(let a): return a.elements
        case .null: return []
        default: throw RESPDecodeError(expected: "an array", found: identifier)
        }
    }

    /// Whether the value is null (`_`, `$-1`, `*-1`), without decoding it.
    public var isNull: Bool {
        switch identifier {
        case .null: return true
        case .bulkString, .array, .set, .map:
            // Only a negative length or count is null; it starts with '-'.
            return base.getInteger(at: valueStart + 1, as: UInt8.self) == UInt8(ascii: "-")
        default: return false
        }
    }
}
