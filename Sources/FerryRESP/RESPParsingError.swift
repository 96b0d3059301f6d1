/// The bytes received are not valid RESP, or exceed the decoder's limits.
///
/// Never quotes the payload (it may be user data); gives the byte offset in the frame instead.
public struct RESPParsingError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case invalidLeadingByte = "invalid leading byte"
            case invalidLength = "invalid length or count"
            case invalidData = "invalid value"
            case missingCRLF = "missing CRLF terminator"
            case tooDeep = "nesting deeper than the limit"
            case tooManyElements = "aggregate larger than the limit"
            case bulkTooLong = "bulk string longer than the limit"
            case lineTooLong = "line longer than the limit"
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        public static let invalidLeadingByte = Code(.invalidLeadingByte)
        public static let invalidLength = Code(.invalidLength)
        public static let invalidData = Code(.invalidData)
        public static let missingCRLF = Code(.missingCRLF)
        public static let tooDeep = Code(.tooDeep)
        public static let tooManyElements = Code(.tooManyElements)
        public static let bulkTooLong = Code(.bulkTooLong)
        public static let lineTooLong = Code(.lineTooLong)

        public var description: String { base.rawValue }
    }

    public var code: Code
    /// Offset of the offending byte from the start of the frame.
    public var offset: Int

    public init(_ code: Code, offset: Int) {
        self.code = code
        self.offset = offset
    }

    public var description: String { "RESP protocol error: \(code) at byte \(offset) of the reply" }
}
