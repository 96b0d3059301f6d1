import FerryCore
import Foundation
import NIOCore

/// One page of `GET /api/2.0/fs/directories{path}`: `{"contents": [...], "next_page_token": "..."}`. Every number in
/// it comes from the server and is checked before use: a size below zero, a time outside years 1970–9999 or a value
/// that is not a number is an error, never a crash.
struct DatabricksListing {
    var entries: [DatabricksDirectoryEntry]
    var nextPageToken: String?

    private struct Page: Decodable {
        var contents: [Entry]?
        // swift-format-ignore: AlwaysUseLowerCamelCase
        var next_page_token: String?
    }

    private struct Entry: Decodable {
        var path: String?
        var name: String?
        // swift-format-ignore: AlwaysUseLowerCamelCase
        var is_directory: Bool?
        // swift-format-ignore: AlwaysUseLowerCamelCase
        var file_size: Int64?
        // swift-format-ignore: AlwaysUseLowerCamelCase
        var last_modified: Int64?
    }

    /// The last millisecond of 9999-12-31.
    static let latestMilliseconds: Int64 = 253_402_300_799_999

    static func decode(_ body: ByteBuffer, what: String, client: DatabricksFilesClient) throws(FerryError) -> DatabricksListing {
        let page: Page
        do {
            page = try JSONDecoder().decode(Page.self, from: Data(body.readableBytesView))
        } catch {
            throw client.unexpected("a directory listing that is not the expected JSON", what)
        }
        var entries: [DatabricksDirectoryEntry] = []
        for entry in page.contents ?? [] {
            guard let path = entry.path, path.hasPrefix("/") else { throw client.unexpected("a listing entry without a path", what) }
            if let size = entry.file_size, size < 0 { throw client.unexpected("a listing entry with a negative file_size", what) }
            var modified: Date?
            if let milliseconds = entry.last_modified {
                guard (0...latestMilliseconds).contains(milliseconds) else {
                    throw client.unexpected("a listing entry with last_modified out of range", what)
                }
                modified = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
            }
            let isDirectory = entry.is_directory ?? false
            let name = entry.name ?? String(path.split(separator: "/").last ?? "")
            entries.append(
                DatabricksDirectoryEntry(
                    path: path, name: name, isDirectory: isDirectory, size: isDirectory ? nil : (entry.file_size ?? 0), lastModified: modified))
        }
        let token = page.next_page_token.flatMap { $0.isEmpty ? nil : $0 }
        return DatabricksListing(entries: entries, nextPageToken: token)
    }
}
