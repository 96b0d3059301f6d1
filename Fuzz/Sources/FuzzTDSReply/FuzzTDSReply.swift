import FerrySQLServer
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// libFuzzer entry point: a server on a loopback port answers the client's PRELOGIN, LOGIN7, its session setting
/// (`SET TEXTSIZE`) and one query. The first byte picks which answer comes from the fuzz bytes (its low bits: 0:
/// PRELOGIN, 1: the login, 2: the setting, 3: the query); the others are valid. With its high bit set, the server
/// closes the connection right after the fuzzed answer (a server that dies). Else it goes on answering (a server that
/// is only wrong); when the client then waits for more of a short answer, the server closes after 50 ms of silence,
/// or (bit 6 set, bits 2–5 clear: one input in 32) stays silent and the client waits out its one-second timeout. An
/// attention (the client cancelling) is acknowledged. The client must end with rows or an error: a crash or a hang is
/// a finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTDSReply(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let stage = Int(data[0] & 0x3F) % 4
    let fuzzed = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    var replies = [Replies.preLogin, Replies.login, Replies.done, Replies.oneRow]
    replies[stage] = fuzzed
    let silence: Int32? = data[0] & 0x40 != 0 && data[0] & 0x3C == 0 ? nil : 50
    guard let server = ScriptedServer(replies: replies, closeAfter: data[0] & 0x80 != 0 ? stage : nil, idleCloseMilliseconds: silence) else {
        return 0
    }
    _ = FerrySQLServerFuzzEntry.loginAndQuery(port: server.port)
    server.finish()
    return 0
}

/// Valid replies, written as the TDS emulator in the test tree writes them ([MS-TDS] 2.2.6.5, 2.2.7).
enum Replies {
    static let preLogin: [UInt8] = {
        let options: [(UInt8, [UInt8])] = [(0x00, [13, 0, 0x13, 0x88, 0, 0]), (0x01, [0x02]), (0x02, [0x00]), (0x03, []), (0x04, [0x00])]
        var header: [UInt8] = []
        var body: [UInt8] = []
        var offset = options.count * 5 + 1
        for (option, data) in options {
            header += [option, UInt8(offset >> 8), UInt8(offset & 0xFF), UInt8(data.count >> 8), UInt8(data.count & 0xFF)]
            body += data
            offset += data.count
        }
        return header + [0xFF] + body
    }()

    static func bVarchar(_ text: String) -> [UInt8] {
        let units = Array(text.utf16)
        return [UInt8(units.count)] + units.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
    }

    static func token(_ type: UInt8, _ body: [UInt8]) -> [UInt8] { [type, UInt8(body.count & 0xFF), UInt8(body.count >> 8)] + body }

    static let done: [UInt8] = [0xFD, 0, 0, 0xC1, 0] + [UInt8](repeating: 0, count: 8)

    /// A result of one int column `x` holding 1.
    static let oneRow: [UInt8] =
        [0x81, 1, 0, 0, 0, 0, 0, 1, 0, 0x26, 4] + bVarchar("x") + [0xD1, 4, 1, 0, 0, 0]
        + [0xFD, 0x10, 0, 0xC1, 0, 1, 0, 0, 0, 0, 0, 0, 0]

    /// DONE with the attention bit: the acknowledgement of a cancel.
    static let attentionDone: [UInt8] = [0xFD, 0x20, 0, 0, 0] + [UInt8](repeating: 0, count: 8)

    /// LOGINACK (TDS 7.4), the packet size, DONE.
    static let login: [UInt8] =
        token(0xAD, [1, 0x74, 0, 0, 4] + bVarchar("Microsoft SQL Server") + [13, 0, 0x13, 0x88])
        + token(0xE3, [4] + bVarchar("4096") + bVarchar("4096")) + done
}

/// A loopback server thread that answers each client message (packets up to end-of-message) with the next reply,
/// then closes the connection.
final class ScriptedServer: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private let thread: Thread

    /// `idleCloseMilliseconds`: after a reply, the connection is closed when the client sends nothing for that long
    /// (nil: it waits as a live server would).
    init?(replies: [[UInt8]], closeAfter: Int?, idleCloseMilliseconds: Int32?) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 1) == 0 else {
            close(fd)
            return nil
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        listener = fd
        thread = Thread {
            let client = accept(fd, nil, nil)
            guard client >= 0 else { return }
            defer { close(client) }
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var next = 0
            while Self.clientSpeaks(client, within: next == 0 ? nil : idleCloseMilliseconds), let kind = Self.readMessage(client) {
                if kind == 0x06 {
                    // An attention: acknowledged, as a server does.
                    Self.send(Replies.attentionDone, to: client)
                } else if next < replies.count {
                    Self.send(replies[next], to: client)
                    if next == closeAfter { return }
                    next += 1
                } else {
                    Self.send(Replies.done, to: client)
                }
            }
        }
        thread.start()
    }

    /// Whether the client sends something (or closes) within `milliseconds` (nil: waits for it).
    static func clientSpeaks(_ fd: Int32, within milliseconds: Int32?) -> Bool {
        guard let milliseconds else { return true }
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, milliseconds) > 0
    }

    /// Reads packets until one marked end-of-message and returns the message's type; nil when the client went away.
    static func readMessage(_ fd: Int32) -> UInt8? {
        while true {
            var header = [UInt8](repeating: 0, count: 8)
            guard readFully(fd, &header) else { return nil }
            let length = Int(header[2]) << 8 | Int(header[3])
            guard length >= 8 else { return nil }
            var body = [UInt8](repeating: 0, count: length - 8)
            guard readFully(fd, &body) else { return nil }
            if header[1] & 0x01 != 0 { return header[0] }
        }
    }

    static func readFully(_ fd: Int32, _ buffer: inout [UInt8]) -> Bool {
        var offset = 0
        let total = buffer.count
        while offset < total {
            let got = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + offset, total - offset) }
            guard got > 0 else { return false }
            offset += got
        }
        return true
    }

    /// `payload` as tabular-result packets of at most 4,096 bytes, the last marked end-of-message.
    static func send(_ payload: [UInt8], to fd: Int32) {
        var offset = 0
        var id: UInt8 = 1
        repeat {
            let chunk = Array(payload[offset..<min(payload.count, offset + 4088)])
            offset += chunk.count
            let last = offset >= payload.count
            let length = chunk.count + 8
            let packet = [0x04, last ? 0x01 : 0x00, UInt8(length >> 8), UInt8(length & 0xFF), 0, 0, id, 0] + chunk
            id &+= 1
            _ = packet.withUnsafeBytes { write(fd, $0.baseAddress, packet.count) }
        } while offset < payload.count
    }

    func finish() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        while !thread.isFinished { usleep(1_000) }
    }
}
