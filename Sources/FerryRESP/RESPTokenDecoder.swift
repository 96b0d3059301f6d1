public import NIOCore

/// A SwiftNIO decoder that emits one ``RESPToken`` per complete frame and never consumes a partial one.
public struct RESPTokenDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = RESPToken

    private var scanner: RESPFrameScanner

    public init(limits: RESPFrameScanner.Limits = .init()) {
        self.scanner = RESPFrameScanner(limits: limits)
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> RESPToken? {
        guard let length = try scanner.scan(buffer) else { return nil }
        return RESPToken(validated: buffer.readSlice(length: length)!)
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> RESPToken? {
        try decode(buffer: &buffer)
    }
}
