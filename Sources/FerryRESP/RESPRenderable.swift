public import NIOCore

/// A value that becomes one or more bulk-string arguments of a command.
public protocol RESPRenderable {
    /// How many arguments this value writes.
    var respEntries: Int { get }
    /// Writes the arguments.
    func encode(into encoder: inout RESPCommandEncoder)
}

extension String: RESPRenderable {
    @inlinable public var respEntries: Int { 1 }
    @inlinable public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeBulkString(self) }
}

extension Substring: RESPRenderable {
    @inlinable public var respEntries: Int { 1 }
    @inlinable public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeBulkString(String(self)) }
}

extension Int: RESPRenderable {
    @inlinable public var respEntries: Int { 1 }
    @inlinable public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeBulkInteger(Int64(self)) }
}

extension Int64: RESPRenderable {
    @inlinable public var respEntries: Int { 1 }
    @inlinable public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeBulkInteger(self) }
}

extension Double: RESPRenderable {
    @inlinable public var respEntries: Int { 1 }
    @inlinable public func encode(into encoder: inout RESPCommandEncoder) {
        if self == .infinity {
            encoder.encodeBulkString("+inf")
        } else if self == -.infinity {
            encoder.encodeBulkString("-inf")
        } else {
            encoder.encodeBulkString("\(self)")
        }
    }
}

extension ByteBuffer: RESPRenderable {
    @inlinable public var respEntries: Int { 1 }
    @inlinable public func encode(into encoder: inout RESPCommandEncoder) { encoder.encodeBulkBytes(self) }
}

extension Array: RESPRenderable where Element: RESPRenderable {
    @inlinable public var respEntries: Int { reduce(0) { $0 + $1.respEntries } }
    @inlinable public func encode(into encoder: inout RESPCommandEncoder) {
        for element in self { element.encode(into: &encoder) }
    }
}

extension Optional: RESPRenderable where Wrapped: RESPRenderable {
    @inlinable public var respEntries: Int { self?.respEntries ?? 0 }
    @inlinable public func encode(into encoder: inout RESPCommandEncoder) { self?.encode(into: &encoder) }
}

/// A pair of values written as two arguments, e.g. a field and its value.
public struct RESPPair<First: RESPRenderable, Second: RESPRenderable>: RESPRenderable {
    public var first: First
    public var second: Second

    @inlinable
    public init(_ first: First, _ second: Second) {
        self.first = first
        self.second = second
    }

    @inlinable public var respEntries: Int { first.respEntries + second.respEntries }
    @inlinable public func encode(into encoder: inout RESPCommandEncoder) {
        first.encode(into: &encoder)
        second.encode(into: &encoder)
    }
}

/// A keyword followed by its value, written only when the value is present (`COUNT 10`, `BLOCK 500`).
public struct RESPOption<Value: RESPRenderable>: RESPRenderable {
    public var keyword: String
    public var value: Value?

    @inlinable
    public init(_ keyword: String, _ value: Value?) {
        self.keyword = keyword
        self.value = value
    }

    @inlinable public var respEntries: Int { value.map { 1 + $0.respEntries } ?? 0 }
    @inlinable public func encode(into encoder: inout RESPCommandEncoder) {
        guard let value else { return }
        encoder.encodeBulkString(keyword)
        value.encode(into: &encoder)
    }
}

/// A keyword written only when set (`MKSTREAM`, `NOMKSTREAM`).
public struct RESPFlag: RESPRenderable {
    public var keyword: String
    public var isSet: Bool

    @inlinable
    public init(_ keyword: String, _ isSet: Bool) {
        self.keyword = keyword
        self.isSet = isSet
    }

    @inlinable public var respEntries: Int { isSet ? 1 : 0 }
    @inlinable public func encode(into encoder: inout RESPCommandEncoder) {
        if isSet { encoder.encodeBulkString(keyword) }
    }
}
