import NIOCore
import Synchronization

/// Every connection a test listener accepted, kept for the life of the test process.
///
/// NIO traps (in debug builds) when an accepted connection's async channel is released without ever being used: one
/// that arrives while a listener's accept loop ends — a client still retrying a login the test already gave up on —
/// is dropped by the loop's stream and released. Held here, none is ever released unused; they are a few per test.
enum AcceptedConnections {
    private static let kept = Mutex<[any Sendable]>([])

    /// `channel` wrapped for async use, and kept.
    static func wrap(_ channel: any Channel) throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        let wrapped = try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
        kept.withLock { $0.append(wrapped) }
        return wrapped
    }
}
