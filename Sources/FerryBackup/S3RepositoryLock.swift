package import FerryCore
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// What `backup.lock` holds: who took the lock, for what, and a token only its holder knows.
struct S3LockRecord: Codable, Equatable {
    var pid: Int32
    var host: String
    var what: String
    /// When it was taken, UTC (ISO 8601).
    var time: String
    var token: String
    /// The holder's PID namespace (`pid:[4026531836]`): a pid on the same host means the same process only within one.
    var pidNamespace: String?

    enum CodingKeys: String, CodingKey {
        case pid, host, what, time, token
        case pidNamespace = "pid_namespace"
    }

    static let host = ProcessInfo.processInfo.hostName
    static let pidNamespace = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/pid")

    /// This process's record for `what`.
    static func current(_ what: String) -> S3LockRecord {
        S3LockRecord(
            pid: getpid(), host: host, what: what, time: ISO8601DateFormatter().string(from: Date()),
            token: (0..<4).map { _ in String(UInt32.random(in: 0...UInt32.max), radix: 16) }.joined(), pidNamespace: pidNamespace)
    }

    var encoded: [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(self)).map { Array($0) + [UInt8(ascii: "\n")] } ?? []
    }

    /// A process on this host (and in this PID namespace) that is gone: its lock can be taken over at once.
    var holderIsGone: Bool {
        guard host == Self.host, let namespace = pidNamespace, namespace == Self.pidNamespace, pid > 0 else { return false }
        return kill(pid, 0) != 0 && errno == ESRCH
    }

    var description: String { "pid \(pid) on \(PrintableText.escaped(host)): \(PrintableText.escaped(what)), since \(PrintableText.escaped(time))" }
}

extension S3Repository {
    /// Takes the repository's lock: the object `backup.lock`, created only if there is none (`If-None-Match: *`). The
    /// holder rewrites it every `lockRefreshInterval` and deletes it on release (only while it is still its own:
    /// `If-Match`). A process killed while holding it cannot delete it, so a lock is taken over when its object was
    /// last written `lockStaleAfter` ago (6 hours by default; the store's clock on both ends), or at once when its
    /// holder ran on this host and is gone.
    package func lock(for what: String) throws(FerryError) -> any RepositoryLock {
        let key = try key("backup.lock")
        let record = S3LockRecord.current(what)
        let body = record.encoded
        let headers = [(name: "Content-Type", value: "application/json")]
        for _ in 0..<5 {
            let created = try send("PUT", key: key, headers: headers + [(name: "If-None-Match", value: "*")], body: body, what: "take the lock")
            if created.status == 200 { return S3RepositoryLock(repository: self, key: key, body: body, etag: created.etag) }
            guard created.status == 412 else { throw failure(created, "take the lock") }
            let existing = try send("GET", key: key, what: "read the lock")
            if existing.status == 404, existing.errorCode != "NoSuchBucket" { continue }  // released meanwhile
            guard existing.status == 200 else { throw failure(existing, "read the lock") }
            let holder = try? JSONDecoder().decode(S3LockRecord.self, from: Data(existing.body))
            // An earlier try of this very PUT that stored the lock but lost its answer.
            if holder?.token == record.token { return S3RepositoryLock(repository: self, key: key, body: body, etag: existing.etag) }
            let age = Self.age(of: existing)
            guard holder?.holderIsGone == true || age.map({ $0 >= configuration.lockStaleAfter }) == true else {
                let since = age.map { " (written \(Int($0.seconds / 60)) minutes ago)" } ?? ""
                throw FerryError(
                    .conflict,
                    "another ferry is working in \(location) (\(holder?.description ?? "holder unknown")\(since)), so \(what) cannot start",
                    fix:
                        "wait for it to finish (or stop it), then run this again; a lock whose holder was killed on another machine is taken over \(Int(configuration.lockStaleAfter.seconds / 3600)) hours after it was last written (or delete \(key) from the bucket when no ferry works there)"
                )
            }
            // Replaced only while it is still the stale one: of two takers, one wins.
            guard let etag = existing.etag else { throw failure(existing, "read the lock's ETag") }
            let taken = try send("PUT", key: key, headers: headers + [(name: "If-Match", value: etag)], body: body, what: "take over a stale lock")
            if taken.status == 200 { return S3RepositoryLock(repository: self, key: key, body: body, etag: taken.etag) }
            guard taken.status == 412 || taken.status == 404 else { throw failure(taken, "take over a stale lock") }
        }
        throw FerryError(.conflict, "the lock in \(location) kept changing hands, so \(what) cannot start", fix: "run this again")
    }

    /// How long ago the object was last written, by the store's clock (its Date and Last-Modified headers).
    static func age(of response: S3Response) -> Duration? {
        guard let written = response.lastModified.flatMap(httpDate), let now = response.date.flatMap(httpDate) else { return nil }
        return .seconds(max(0, now - written))
    }

    /// `Mon, 07 Dec 2026 14:18:24 GMT` as seconds since 1970.
    static func httpDate(_ text: String) -> Int? {
        let parts = text.split(separator: " ")
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        guard parts.count == 6, parts[5] == "GMT", let day = Int32(parts[1]), let month = months.firstIndex(of: String(parts[2])),
            let year = Int32(parts[3])
        else { return nil }
        let clock = parts[4].split(separator: ":").compactMap { Int32($0) }
        guard clock.count == 3 else { return nil }
        var fields = tm()
        fields.tm_year = year - 1900
        fields.tm_mon = Int32(month)
        fields.tm_mday = day
        fields.tm_hour = clock[0]
        fields.tm_min = clock[1]
        fields.tm_sec = clock[2]
        return Int(timegm(&fields))
    }
}

/// A held S3 lock: rewritten every `lockRefreshInterval` while held, deleted on release or when dropped.
///
/// `@unchecked Sendable`: the timer is a DispatchSource, whose methods may be called from any thread; everything else
/// is immutable or behind the mutex.
final class S3RepositoryLock: RepositoryLock, @unchecked Sendable {
    private struct State {
        var etag: String?
        var held = true
    }

    private let repository: S3Repository
    private let key: String
    private let body: [UInt8]
    /// Refreshes and the release take it across their requests, so a release never races a refresh's new ETag.
    private let state: Mutex<State>
    private let timer: any DispatchSourceTimer

    init(repository: S3Repository, key: String, body: [UInt8], etag: String?) {
        self.repository = repository
        self.key = key
        self.body = body
        state = Mutex(State(etag: etag))
        let interval = repository.configuration.lockRefreshInterval
        timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "ferry.s3.lock"))
        timer.schedule(deadline: .now() + interval.seconds, repeating: interval.seconds)
        timer.setEventHandler { [weak self] in self?.refresh() }
        timer.resume()
    }

    /// Rewrites the lock while it is still this one (`If-Match`); stops when it is not.
    private func refresh() {
        state.withLock { state in
            guard state.held else { return }
            var headers = [(name: "Content-Type", value: "application/json")]
            // A store that gives no ETag gets an unconditional rewrite.
            if let etag = state.etag { headers.append((name: "If-Match", value: etag)) }
            guard let response = try? repository.send("PUT", key: key, headers: headers, body: body, what: "refresh the lock") else {
                return  // tried again at the next tick
            }
            if response.status == 200 {
                state.etag = response.etag ?? state.etag
            } else if response.status == 412 || response.status == 404 {
                // Taken over (this process was thought dead) or deleted by hand: no longer this process's to keep.
                state.held = false
                timer.cancel()
            }
        }
    }

    /// Deletes the lock if it is still this one; a lock that cannot be deleted now is taken over once stale.
    func release() {
        state.withLock { state in
            guard state.held else { return }
            state.held = false
            timer.cancel()
            var headers: [(name: String, value: String)] = []
            if let etag = state.etag { headers.append((name: "If-Match", value: etag)) }
            _ = try? repository.send("DELETE", key: key, headers: headers, what: "release the lock")
        }
    }

    deinit { release() }
}
