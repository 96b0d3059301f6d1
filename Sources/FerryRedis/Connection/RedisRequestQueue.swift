import DequeModule
import FerryRESP

/// The pure state of one connection's in-flight requests: replies are matched to requests strictly in order.
///
/// Owns no I/O. The channel handler feeds it events and performs the actions it returns; tests drive it directly.
struct RedisRequestQueue<Context> {
    struct Request {
        let id: UInt64
        /// Replies this request waits for (one per pipelined command).
        let expected: Int
        var replies: [RESPToken]
        let context: Context

        init(id: UInt64, expected: Int, replies: [RESPToken] = [], context: Context) {
            self.id = id
            self.expected = expected
            self.replies = replies
            self.context = context
            if replies.isEmpty { self.replies.reserveCapacity(expected) }
        }
    }

    enum State {
        case open
        case closed(RedisError)
    }

    enum EnqueueAction {
        case write
        case fail(RedisError)
    }

    enum ReplyAction {
        case none
        case succeed(Request)
        /// A reply arrived with nothing waiting for it: the stream is out of step and must be closed.
        case closeOutOfStep(RedisError)
    }

    private(set) var state: State = .open
    private var pending: Deque<Request> = []

    var pendingCount: Int { pending.count }
    var isEmpty: Bool { pending.isEmpty }

    mutating func enqueue(_ request: Request) -> EnqueueAction {
        switch state {
        case .open:
            pending.append(request)
            return .write
        case .closed(let error):
            return .fail(error)
        }
    }

    mutating func receive(_ token: RESPToken) -> ReplyAction {
        guard case .open = state else { return .none }
        guard !pending.isEmpty else {
            return .closeOutOfStep(RedisError(.protocolViolation, "the server sent a reply nobody asked for"))
        }
        pending[pending.startIndex].replies.append(token)
        if pending[pending.startIndex].replies.count == pending[pending.startIndex].expected {
            return .succeed(pending.removeFirst())
        }
        return .none
    }

    /// Closes the queue; every pending request is returned to be failed. Later enqueues fail with `error`.
    mutating func close(_ error: RedisError) -> [Request] {
        if case .closed = state { return [] }
        state = .closed(error)
        defer { pending.removeAll() }
        return Array(pending)
    }

    func contains(_ id: UInt64) -> Bool { pending.contains { $0.id == id } }

    /// The context of the first pending request matching `predicate`.
    func firstContext(where predicate: (Context) -> Bool) -> Context? {
        pending.first { predicate($0.context) }?.context
    }

    /// The smallest non-nil value of `key` among pending requests.
    func earliest<T: Comparable>(_ key: (Context) -> T?) -> T? {
        pending.compactMap { key($0.context) }.min()
    }
}
