package import Foundation

/// One backup as the catalogue, `ferry backup list` and `--json` show it: its manifest without the file list.
package struct BackupCatalogEntry: Codable, Sendable, Equatable {
    package var id: String
    package var kind: String
    package var prior: String?
    package var full: String
    package var system: String
    package var timeline: Int
    package var startLsn: String
    package var stopLsn: String
    package var startWal: String
    package var stopWal: String
    package var started: Date
    package var stopped: Date
    package var bytes: Int64
    package var storedBytes: Int64
    package var storedBlocks: Int
    package var files: Int
    package var compression: String

    package init(_ manifest: BackupManifest) {
        id = manifest.id
        kind = manifest.kind.rawValue
        prior = manifest.prior
        full = manifest.full
        system = manifest.system
        timeline = manifest.timeline
        startLsn = manifest.startLSN
        stopLsn = manifest.stopLSN
        startWal = manifest.startWAL
        stopWal = manifest.stopWAL
        started = manifest.started
        stopped = manifest.stopped
        bytes = manifest.bytes
        storedBytes = manifest.storedBytes
        storedBlocks = manifest.storedBlocks
        files = manifest.files.count
        compression = manifest.compression.rawValue
    }

    /// Its fields as a Redis hash holds them (text; times in seconds since 1970).
    package var fields: [(field: String, value: String)] {
        var fields: [(String, String)] = [
            ("id", id), ("kind", kind), ("full", full), ("system", system), ("timeline", "\(timeline)"), ("start_lsn", startLsn),
            ("stop_lsn", stopLsn), ("start_wal", startWal), ("stop_wal", stopWal), ("started", "\(started.timeIntervalSince1970)"),
            ("stopped", "\(stopped.timeIntervalSince1970)"), ("bytes", "\(bytes)"), ("stored_bytes", "\(storedBytes)"),
            ("stored_blocks", "\(storedBlocks)"), ("files", "\(files)"), ("compression", compression),
        ]
        if let prior { fields.append(("prior", prior)) }
        return fields.map { (field: $0.0, value: $0.1) }
    }

    /// From a Redis hash; nil when a field is missing or unreadable (the entry is then rebuilt from its manifest).
    package init?(fields: [String: String]) {
        guard let id = fields["id"], let kind = fields["kind"], let full = fields["full"], let system = fields["system"],
            let timeline = fields["timeline"].flatMap(Int.init), let startLsn = fields["start_lsn"], let stopLsn = fields["stop_lsn"],
            let startWal = fields["start_wal"], let stopWal = fields["stop_wal"], let started = fields["started"].flatMap(Double.init),
            let stopped = fields["stopped"].flatMap(Double.init), let bytes = fields["bytes"].flatMap(Int64.init),
            let storedBytes = fields["stored_bytes"].flatMap(Int64.init), let storedBlocks = fields["stored_blocks"].flatMap(Int.init),
            let files = fields["files"].flatMap(Int.init), let compression = fields["compression"]
        else { return nil }
        self.id = id
        self.kind = kind
        self.prior = fields["prior"]
        self.full = full
        self.system = system
        self.timeline = timeline
        self.startLsn = startLsn
        self.stopLsn = stopLsn
        self.startWal = startWal
        self.stopWal = stopWal
        self.started = Date(timeIntervalSince1970: started)
        self.stopped = Date(timeIntervalSince1970: stopped)
        self.bytes = bytes
        self.storedBytes = storedBytes
        self.storedBlocks = storedBlocks
        self.files = files
        self.compression = compression
    }
}
