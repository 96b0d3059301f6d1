import FerryRESP
import NIOCore

/// libFuzzer entry point: any bytes must give tokens or a `RESPParsingError`, never a crash, and splitting the
/// input at any point must give the same tokens as feeding it whole.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRESPDecoder(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    var limits = RESPFrameScanner.Limits()
    limits.maxBulkLength = 1 << 16
    limits.maxElements = 1 << 12
    limits.maxDepth = 32
    limits.maxLineLength = 1 << 12
    let whole = decode(ByteBuffer(bytes: bytes), split: nil, limits: limits)
    if size > 1 {
        let split = Int(bytes[0]) % size
        let parts = decode(ByteBuffer(bytes: bytes), split: split, limits: limits)
        precondition(parts.tokens == whole.tokens, "splitting the input changed the tokens")
        precondition(parts.failed == whole.failed, "splitting the input changed whether it fails")
    }
    for token in whole.tokens { walk(token, depth: 0) }
    return 0
}

func decode(_ input: ByteBuffer, split: Int?, limits: RESPFrameScanner.Limits) -> (tokens: [RESPToken], failed: Bool) {
    let processor = NIOSingleStepByteToMessageProcessor(RESPTokenDecoder(limits: limits))
    var tokens: [RESPToken] = []
    var input = input
    do {
        if let split {
            try processor.process(buffer: input.readSlice(length: split)!) { tokens.append($0) }
        }
        try processor.process(buffer: input) { tokens.append($0) }
        return (tokens, false)
    } catch {
        precondition(error is RESPParsingError, "unexpected error type \(type(of: error))")
        return (tokens, true)
    }
}

/// Reads every part of a token the way callers do.
func walk(_ token: RESPToken, depth: Int) {
    precondition(depth < 64)
    _ = token.description
    _ = token.identifier
    if let attributes = token.attributes {
        for (key, value) in attributes {
            walk(key, depth: depth + 1)
            walk(value, depth: depth + 1)
        }
    }
    _ = try? token.decode(as: String.self)
    _ = try? token.decode(as: Int.self)
    _ = try? token.decode(as: Double.self)
    _ = try? token.pairs()
    switch token.value {
    case .array(let array), .set(let array), .push(let array):
        var count = 0
        for element in array {
            walk(element, depth: depth + 1)
            count += 1
        }
        precondition(count == array.count, "aggregate count mismatch")
    case .map(let map):
        var count = 0
        for (key, value) in map {
            walk(key, depth: depth + 1)
            walk(value, depth: depth + 1)
            count += 1
        }
        precondition(count == map.count, "map count mismatch")
    default:
        break
    }
}
