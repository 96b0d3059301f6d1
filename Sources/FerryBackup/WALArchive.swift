import Crypto
package import FerryCore

/// PostgreSQL's WAL kept in a repository: `archive_command = 'ferry wal push %p …'` and
/// `restore_command = 'ferry wal fetch %f %p …'`.
///
/// Each file is stored compressed behind a header that records its size and SHA-256, under
/// `wal/<system identifier>/<first 16 characters of the name>/<name>` (history files under `…/history/`), so that two
/// clusters never share a name and one directory holds at most 256 segments. Pushing a file that is already archived
/// with the same content succeeds (PostgreSQL retries an archive command after a crash); with other content it is an
/// error that names the file and leaves the archive as it is. A fetched file is checked against its SHA-256 before
/// PostgreSQL sees it.
package struct WALArchive: Sendable {
    package let repository: any BackupRepository
    package let compression: BackupCompression

    package init(repository: any BackupRepository, compression: BackupCompression = .zstd) {
        self.repository = repository
        self.compression = compression
    }

    package enum PushOutcome: Sendable, Equatable {
        /// Stored, in this many bytes.
        case stored(bytes: Int)
        /// The archive already held the same content.
        case alreadyArchived
    }

    /// Archives the WAL file `content` named `name`, for the cluster `system`.
    package func push(name: String, content: [UInt8], system: UInt64) throws(FerryError) -> PushOutcome {
        let path = try Self.path(of: name, system: system)
        let digest = Array(SHA256.hash(data: content))
        if let existing = try repository.read(path) { return try compare(existing, name: name, content: content, digest: digest) }
        let body = try compression.compress(content)
        let header = WALFileHeader(compression: compression, size: content.count, sha256: digest)
        // Never over a file another push stored meanwhile: that one is compared instead.
        guard try repository.write(path, header.encoded + body, replacing: false) else {
            guard let existing = try repository.read(path) else {
                throw FerryError(.server, "\(name) appeared and vanished in \(repository.location) while it was archived", fix: "run the push again")
            }
            return try compare(existing, name: name, content: content, digest: digest)
        }
        return .stored(bytes: WALFileHeader.length + body.count)
    }

    /// An archived file against the one being pushed: the same content is archived already, other content an error.
    private func compare(_ existing: [UInt8], name: String, content: [UInt8], digest: [UInt8]) throws(FerryError) -> PushOutcome {
        let header = try WALFileHeader(existing, what: "\(name) in \(repository.location)")
        if header.size == content.count, header.sha256 == digest { return .alreadyArchived }
        throw FerryError(
            .conflict,
            "WAL file \(name) is already archived in \(repository.location) with other content (\(header.size) bytes, SHA-256 \(Self.hex(header.sha256.prefix(8)))…; this one: \(content.count) bytes, \(Self.hex(digest.prefix(8)))…)",
            fix:
                "two clusters or two timelines may be archiving into the same place: check that each cluster has its own repository and that only the primary archives; the archived file was left as it is"
        )
    }

    /// The WAL file `name` of the cluster `system`, checked against its SHA-256; nil when the archive does not hold it.
    package func fetch(name: String, system: UInt64) throws(FerryError) -> [UInt8]? {
        let path = try Self.path(of: name, system: system)
        guard let stored = try repository.read(path) else { return nil }
        let what = "\(name) in \(repository.location)"
        let header = try WALFileHeader(stored, what: what)
        let content = try header.compression.decompress(stored[WALFileHeader.length...], size: header.size, what: what)
        guard Array(SHA256.hash(data: content)) == header.sha256 else {
            throw FerryError(.invalidInput, "\(what) does not match its SHA-256", fix: BackupCompression.damagedFix)
        }
        return content
    }

    /// Whether the archive holds `name` (without reading it).
    package func contains(name: String, system: UInt64) throws(FerryError) -> Bool {
        let path = try Self.path(of: name, system: system)
        let slash = path.lastIndex(of: "/")!
        return try repository.list(String(path[..<slash])).contains(name)
    }

    /// The directory under `wal/` of the cluster `system`: 16 hex digits.
    package static func systemDirectoryName(_ system: UInt64) -> String { String(system, radix: 16).leftPadded(to: 16) }

    /// Where `name` is kept; refused unless it is a WAL segment (24 hex digits, or with `.partial`), a timeline
    /// history file (`00000002.history`) or a backup label (`<segment>.00000028.backup`): nothing else may name a path.
    package static func path(of name: String, system: UInt64) throws(FerryError) -> String {
        let base = "wal/" + systemDirectoryName(system)
        if name.hasSuffix(".history"), isHex(String(name.dropLast(8)), count: 8) {
            return base + "/history/" + name
        }
        let segment = String(name.prefix(24))
        let rest = name.dropFirst(24)
        guard isHex(segment, count: 24),
            rest.isEmpty || rest == ".partial"
                || (rest.hasPrefix(".") && rest.hasSuffix(".backup") && isHex(String(rest.dropFirst().dropLast(7)), count: 8))
        else {
            throw FerryError(
                .invalidInput, "\"\(PrintableText.escaped(name))\" is not the name of a WAL file",
                fix: "pass PostgreSQL's %p (push) or %f (fetch), e.g. archive_command = 'ferry wal push %p --repository DIR'")
        }
        return base + "/" + segment.prefix(16) + "/" + name
    }

    private static func isHex(_ text: String, count: Int) -> Bool {
        text.utf8.count == count
            && text.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains($0) }
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { String($0, radix: 16).leftPadded(to: 2) }.joined()
    }
}

/// The header of an archived file: `FERRYWAL`, format 1, the compression, the original size and its SHA-256.
struct WALFileHeader: Equatable {
    static let magic = Array("FERRYWAL".utf8)
    static let length = 8 + 1 + 1 + 2 + 8 + 32
    /// The largest WAL file PostgreSQL writes (segments are at most 1 GB).
    static let maximumSize = 1 << 30

    var compression: BackupCompression
    var size: Int
    var sha256: [UInt8]

    init(compression: BackupCompression, size: Int, sha256: [UInt8]) {
        self.compression = compression
        self.size = size
        self.sha256 = sha256
    }

    init(_ bytes: [UInt8], what: String) throws(FerryError) {
        guard bytes.count >= Self.length, Array(bytes[0..<8]) == Self.magic else {
            throw FerryError(.invalidInput, "\(what) is not a file Ferry archived (no FERRYWAL header)", fix: BackupCompression.damagedFix)
        }
        guard bytes[8] == 1 else {
            throw FerryError(
                .unsupported, "\(what) is in archive format \(bytes[8]), which this ferry does not read",
                fix: "use the ferry version that wrote it, or a newer one")
        }
        guard let compression = BackupCompression(code: bytes[9]) else {
            throw FerryError(
                .unsupported, "\(what) uses compression number \(bytes[9]), which this ferry does not read",
                fix: "use the ferry version that wrote it, or a newer one")
        }
        var size: UInt64 = 0
        for index in 0..<8 { size |= UInt64(bytes[12 + index]) << (8 * UInt64(index)) }
        guard size <= UInt64(Self.maximumSize) else {
            throw FerryError(.invalidInput, "\(what) claims \(size) bytes, more than any WAL file", fix: BackupCompression.damagedFix)
        }
        self.compression = compression
        self.size = Int(size)
        self.sha256 = Array(bytes[20..<52])
    }

    var encoded: [UInt8] {
        var bytes = Self.magic + [1, compression.code, 0, 0]
        for index in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: UInt64(size) >> (8 * UInt64(index)))) }
        return bytes + sha256
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
