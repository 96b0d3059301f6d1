import FerryRESP
import NIOCore
import Testing

@testable import FerryRedis

@Suite("Request queue state machine")
struct RedisRequestQueueTests {
    typealias Queue = RedisRequestQueue<String>

    func token(_ text: String) throws -> RESPToken { try RESPToken(validating: ByteBuffer(string: text)) }

    @Test func repliesMatchRequestsInOrder() throws {
        var queue = Queue()
        #expect(queue.enqueue(.init(id: 1, expected: 2, context: "pipeline")).isWrite)
        #expect(queue.enqueue(.init(id: 2, expected: 1, context: "get")).isWrite)
        #expect(queue.receive(try token("+OK\r\n")).succeeded == nil)
        let first = try #require(queue.receive(try token(":1\r\n")).succeeded)
        #expect(first.id == 1)
        #expect(first.replies.map(\.value) == [.simpleString(ByteBuffer(string: "OK")), .number(1)])
        let second = try #require(queue.receive(try token("$1\r\nx\r\n")).succeeded)
        #expect(second.id == 2)
        #expect(queue.isEmpty)
    }

    @Test func aReplyWithNothingWaitingMeansOutOfStep() throws {
        var queue = Queue()
        guard case .closeOutOfStep(let error) = queue.receive(try token("+OK\r\n")) else {
            Issue.record("an unexpected reply must close the connection")
            return
        }
        #expect(error.code == .protocolViolation)
    }

    @Test func closingFailsEveryPendingRequestAndLaterOnes() {
        var queue = Queue()
        _ = queue.enqueue(.init(id: 1, expected: 1, context: "a"))
        _ = queue.enqueue(.init(id: 2, expected: 3, context: "b"))
        let failed = queue.close(RedisError(.timeout, "deadline"))
        #expect(failed.map(\.id) == [1, 2])
        #expect(queue.close(RedisError(.timeout, "again")).isEmpty, "closing twice fails nothing twice")
        guard case .fail(let error) = queue.enqueue(.init(id: 3, expected: 1, context: "c")) else {
            Issue.record("a closed queue rejects new requests")
            return
        }
        #expect(error.code == .timeout)
    }

    @Test func repliesAfterCloseAreIgnored() throws {
        var queue = Queue()
        _ = queue.enqueue(.init(id: 1, expected: 1, context: "a"))
        _ = queue.close(RedisError(.cancelled, "cancelled"))
        guard case .none = queue.receive(try token("+OK\r\n")) else {
            Issue.record("late replies are dropped")
            return
        }
    }
}

extension RedisRequestQueue.EnqueueAction {
    var isWrite: Bool {
        if case .write = self { return true }
        return false
    }
}

extension RedisRequestQueue.ReplyAction {
    var succeeded: RedisRequestQueue.Request? {
        if case .succeed(let request) = self { return request }
        return nil
    }
}
