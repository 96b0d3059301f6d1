import CFreeTDS
import Foundation
import NIOPosix
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// FreeTDS's DB-Library, set up once per process: its error and message handlers, and the threads its blocking calls
/// run on.
///
/// DB-Library blocks the calling thread for every round trip, and its handlers are process-wide C callbacks. Every
/// call therefore runs on ``threads`` (never on a NIO event loop or the concurrency pool), one call at a time per
/// connection, with the connection's ``MessageCollector`` set for that thread: the handlers hand what they are told to
/// the collector of the call that caused it, login failures included (there is no connection to attach them to yet).
enum DBLibrary {
    /// How many DB-Library calls may block at once, process-wide; further calls wait for a thread.
    static let threadCount = 4

    /// The threads DB-Library calls run on.
    static let threads: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: threadCount)
        pool.start()
        return pool
    }()

    /// `dbinit` and the handlers; false when FreeTDS could not initialise (out of memory).
    static let initialized: Bool = {
        guard dbinit() == SUCCEED else { return false }
        _ = dberrhandle(libraryErrorHandler)
        _ = dbmsghandle(serverMessageHandler)
        return true
    }()

    private static let collectorKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// Runs `body` (blocking DB-Library calls) on ``threads`` with `collector` receiving the handlers' messages.
    static func run<T: Sendable>(_ collector: MessageCollector, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await threads.runIfActive {
            pthread_setspecific(collectorKey, Unmanaged.passUnretained(collector).toOpaque())
            defer { pthread_setspecific(collectorKey, nil) }
            return try body()
        }
    }

    /// `dbsetlogintime` is process-wide and `tdsdbopen` reads it: two logins with different timeouts at once could
    /// each get the other's (seen: a login given 15 s timed out after 2 s while another test logged in with 2 s).
    /// Logins with the same timeout run together; one with another timeout waits until those in flight are done.
    private static let loginGate = NSCondition()
    nonisolated(unsafe) private static var loginTimeout: Int32 = -1
    nonisolated(unsafe) private static var loginsInFlight = 0

    /// Runs `open` (a `tdsdbopen`) with DB-Library's login timeout at `seconds`. On a DB-Library thread only.
    static func withLoginTimeout<T>(_ seconds: Int32, _ open: () -> T) -> T {
        loginGate.lock()
        while loginsInFlight > 0 && loginTimeout != seconds { loginGate.wait() }
        if loginTimeout != seconds {
            dbsetlogintime(seconds)
            loginTimeout = seconds
        }
        loginsInFlight += 1
        loginGate.unlock()
        defer {
            loginGate.lock()
            loginsInFlight -= 1
            loginGate.broadcast()
            loginGate.unlock()
        }
        return open()
    }

    /// The collector of the call running on this thread.
    static var currentCollector: MessageCollector? {
        guard let pointer = pthread_getspecific(collectorKey) else { return nil }
        return Unmanaged<MessageCollector>.fromOpaque(pointer).takeUnretainedValue()
    }
}

/// DB-Library's own errors (connection refused, timeouts, conversions): recorded, and the failing call returns FAIL.
private let libraryErrorHandler: EHANDLEFUNC = { _, severity, number, osError, text, osText in
    let message = text.map { String(cString: $0) } ?? "DB-Library error \(number)"
    let system = osError > 0 ? osText.map { String(cString: $0) } : nil
    DBLibrary.currentCollector?.record(.library(number: Int(number), severity: Int(severity), message: message, system: system))
    return INT_CANCEL
}

/// The server's messages (errors and informational ones, such as "Changed database context").
private let serverMessageHandler: MHANDLEFUNC = { _, number, state, severity, text, server, procedure, line in
    let message = SQLServerMessage(
        number: Int(number), state: Int(state), severity: Int(severity), message: text.map { String(cString: $0) } ?? "",
        server: server.map { String(cString: $0) } ?? "", procedure: procedure.flatMap { $0.pointee == 0 ? nil : String(cString: $0) },
        line: Int(line))
    DBLibrary.currentCollector?.record(.server(message))
    return 0
}

/// What the handlers reported during one connection's calls.
final class MessageCollector: Sendable {
    enum Entry: Sendable {
        case server(SQLServerMessage)
        case library(number: Int, severity: Int, message: String, system: String?)
    }

    private let entries = Mutex<[Entry]>([])

    func record(_ entry: Entry) { entries.withLock { $0.append(entry) } }

    /// Everything recorded since the last call, emptied.
    func take() -> [Entry] {
        entries.withLock { entries in
            defer { entries = [] }
            return entries
        }
    }
}
