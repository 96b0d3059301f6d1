import FerrySync
import Synchronization

/// Draws sync progress on standard error: a bar with rows, rows/s and ETA on a terminal, a plain line every 5 seconds
/// at most otherwise (a log file or a CI job), nothing when quiet.
final class ProgressBar: Sendable {
    private let lastLine = Mutex<ContinuousClock.Instant?>(nil)
    private let drawn = Atomic(false)
    private let quiet: Bool

    init(quiet: Bool = false) { self.quiet = quiet }

    func update(_ progress: SyncProgress) {
        if quiet { return }
        if Terminal.stderrIsTTY {
            drawn.store(true, ordering: .relaxed)
            Terminal.writeStandardError("\r\u{1B}[K" + Self.render(progress))
        } else {
            let now = ContinuousClock.now
            let due = lastLine.withLock { last -> Bool in
                guard last.map({ now - $0 >= .seconds(5) }) ?? true else { return false }
                last = now
                return true
            }
            if due { Terminal.writeStandardError(Self.render(progress) + "\n") }
        }
    }

    /// Ends the bar's line.
    func finish() {
        if drawn.load(ordering: .relaxed) { Terminal.writeStandardError("\n") }
    }

    static func render(_ progress: SyncProgress) -> String {
        var text = "\(progress.pipeline) \(progress.phase.rawValue): "
        if let total = progress.estimatedTotal, total > 0, progress.phase == .initialLoad || progress.applied < total {
            let fraction = min(1, Double(progress.applied) / Double(total))
            let width = 24
            let filled = Int(fraction * Double(width))
            text += "[" + String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled) + "] "
            text += "\(grouped(progress.applied))/\(grouped(total)) rows"
            if progress.rate > 0 {
                let remaining = Double(max(0, total - progress.applied)) / progress.rate
                text += ", ETA \(duration(remaining))"
            }
        } else {
            text += "\(grouped(progress.applied)) rows applied, \(grouped(progress.produced)) queued"
        }
        text += ", \(grouped(Int(progress.rate))) rows/s"
        return text
    }

    static func grouped(_ value: Int) -> String {
        let digits = String(value)
        var out = ""
        for (index, character) in digits.reversed().enumerated() {
            if index > 0 && index % 3 == 0 { out.append(",") }
            out.append(character)
        }
        return String(out.reversed())
    }

    static func duration(_ seconds: Double) -> String {
        let total = Int(seconds.rounded())
        if total < 60 { return "\(total)s" }
        if total < 3600 { return "\(total / 60)m\(total % 60)s" }
        return "\(total / 3600)h\((total % 3600) / 60)m"
    }
}
