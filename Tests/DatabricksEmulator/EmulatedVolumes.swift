import Foundation

/// The files of the emulated workspace's Unity Catalog volumes, in memory, with the Files API's rules: a volume
/// exists only once created (`createVolume`), directories are made like `mkdir -p`, an upload creates the directories
/// above it, and each refusal is the status and `error_code` Databricks answers with.
struct EmulatedVolumes {
    struct File {
        var bytes: [UInt8]
        var modified: Date
    }

    /// A refusal: HTTP status, Databricks `error_code`, message.
    struct Refusal: Error {
        var status: Int
        var code: String
        var message: String
    }

    enum Entry {
        case file(File)
        case directory
    }

    private(set) var volumes = Set<String>()
    /// Directories inside volumes (not the volume roots).
    private(set) var directories = Set<String>()
    private(set) var files: [String: File] = [:]

    /// The segments of a `/Volumes/c/s/v/...` path (already percent-decoded), or a 400 refusal.
    static func segments(_ path: String) throws(Refusal) -> [Substring] {
        guard path.hasPrefix("/Volumes/") else {
            throw Refusal(status: 400, code: "INVALID_PARAMETER_VALUE", message: "Path must be absolute and start with /Volumes/: \(path)")
        }
        let parts = path.dropFirst("/Volumes/".count).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count >= 3, !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
            throw Refusal(status: 400, code: "INVALID_PARAMETER_VALUE", message: "Invalid path: \(path)")
        }
        return parts
    }

    static func volume(of parts: [Substring]) -> String { "/Volumes/" + parts.prefix(3).joined(separator: "/") }

    mutating func createVolume(_ path: String) {
        if let parts = try? Self.segments(path) { volumes.insert(Self.volume(of: parts)) }
    }

    /// The volume of `path` must exist.
    private func checkVolume(_ parts: [Substring]) throws(Refusal) {
        let volume = Self.volume(of: parts)
        guard volumes.contains(volume) else {
            throw Refusal(
                status: 404, code: "RESOURCE_DOES_NOT_EXIST",
                message: "Volume '\(parts.prefix(3).joined(separator: "."))' does not exist.")
        }
    }

    func entry(_ path: String) throws(Refusal) -> Entry? {
        let parts = try Self.segments(path)
        try checkVolume(parts)
        if parts.count == 3 || directories.contains(path) { return .directory }
        return files[path].map { .file($0) }
    }

    /// `mkdir -p` below the volume.
    mutating func createDirectory(_ path: String) throws(Refusal) {
        let parts = try Self.segments(path)
        try checkVolume(parts)
        guard parts.count > 3 else { return }
        for depth in 4...parts.count {
            let prefix = "/Volumes/" + parts.prefix(depth).joined(separator: "/")
            if files[prefix] != nil {
                throw Refusal(status: 409, code: "RESOURCE_ALREADY_EXISTS", message: "A file exists at \(prefix).")
            }
            directories.insert(prefix)
        }
    }

    mutating func upload(_ path: String, bytes: [UInt8], overwrite: Bool, at now: Date) throws(Refusal) {
        let parts = try Self.segments(path)
        try checkVolume(parts)
        guard parts.count > 3, !directories.contains(path) else {
            throw Refusal(status: 409, code: "ALREADY_EXISTS", message: "A directory exists at \(path).")
        }
        if files[path] != nil, !overwrite {
            throw Refusal(status: 409, code: "ALREADY_EXISTS", message: "The file being created already exists.")
        }
        if parts.count > 4 { try createDirectory("/Volumes/" + parts.dropLast().joined(separator: "/")) }
        files[path] = File(bytes: bytes, modified: now)
    }

    func file(_ path: String) throws(Refusal) -> File {
        guard case .file(let file)? = try entry(path) else {
            throw Refusal(status: 404, code: "NOT_FOUND", message: "The file \(path) does not exist.")
        }
        return file
    }

    /// The entries right under the directory `path`, sorted by name: (name, path, file or nil for a directory).
    func list(_ path: String) throws(Refusal) -> [(name: String, path: String, file: File?)] {
        guard case .directory? = try entry(path) else {
            throw Refusal(status: 404, code: "NOT_FOUND", message: "The directory \(path) does not exist.")
        }
        let prefix = path + "/"
        var entries: [(name: String, path: String, file: File?)] = []
        for directory in directories where directory.hasPrefix(prefix) && !directory.dropFirst(prefix.count).contains("/") {
            entries.append((String(directory.dropFirst(prefix.count)), directory, nil))
        }
        for (filePath, file) in files where filePath.hasPrefix(prefix) && !filePath.dropFirst(prefix.count).contains("/") {
            entries.append((String(filePath.dropFirst(prefix.count)), filePath, file))
        }
        return entries.sorted { $0.name < $1.name }
    }

    mutating func deleteFile(_ path: String) throws(Refusal) {
        _ = try file(path)
        files[path] = nil
    }

    mutating func deleteDirectory(_ path: String) throws(Refusal) {
        let parts = try Self.segments(path)
        guard parts.count > 3 else {
            throw Refusal(status: 400, code: "INVALID_PARAMETER_VALUE", message: "A volume's root cannot be deleted through the Files API.")
        }
        guard case .directory? = try entry(path) else {
            throw Refusal(status: 404, code: "NOT_FOUND", message: "The directory \(path) does not exist.")
        }
        guard try list(path).isEmpty else {
            throw Refusal(status: 409, code: "DIRECTORY_NOT_EMPTY", message: "The directory \(path) is not empty.")
        }
        directories.remove(path)
    }
}
