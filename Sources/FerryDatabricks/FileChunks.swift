import FerryCore
import Foundation
import NIOCore

/// A file's bytes from its start, as an upload body: each upload try makes a new iterator, which opens the file again,
/// so a retried upload sends the whole file again. Reads block (1 MiB at a time, usually from the page cache): the
/// target has no asynchronous file I/O, and a read is short next to sending the chunk.
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer

    let path: String
    var chunkSize = 1 << 20

    struct ReadError: Error, CustomStringConvertible {
        var path: String
        var reason: String
        var description: String { "cannot read \"\(PrintableText.escaped(path))\": \(reason)" }
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        let path: String
        let chunkSize: Int
        var handle: FileHandle?
        var finished = false

        mutating func next() async throws -> ByteBuffer? {
            if finished { return nil }
            if handle == nil {
                guard let opened = FileHandle(forReadingAtPath: path) else { throw ReadError(path: path, reason: "it cannot be opened") }
                handle = opened
            }
            let data: Data?
            do {
                data = try handle?.read(upToCount: chunkSize)
            } catch {
                throw ReadError(path: path, reason: "\(error.localizedDescription)")
            }
            guard let data, !data.isEmpty else {
                finished = true
                try? handle?.close()
                handle = nil
                return nil
            }
            return ByteBuffer(bytes: data)
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(path: path, chunkSize: chunkSize) }
}
