import FerrySync
import Foundation
import Synchronization

/// Draws sync progress on standard error: a bar with rows, rows/s and ETA on a terminal, a plain line every 5 seconds
/// at most otherwise (a log file or a CI job), nothing when quiet.
final class ProgressBar: Sendable {
    private let lastLine = Mutex<ContinuousClock.Instant?>(nil)
    private let drawn = Atomic(false)
    private let quiet: Bool

    init(quiet: Bool = false) { self.quiet = quiet }

    func update(_ progress: SyncProgress) { draw(Self.render(progress)) }

    /// Draws `line` in place on a terminal; elsewhere prints it at most every 5 seconds.
    func draw(_ line: @autoclosure () -> String) {
        if quiet { return }
        if Terminal.stderrIsTTY {
            drawn.store(true, ordering: .relaxed)
            Terminal.writeStandardError("\r\u{1B}[K" + line())
        } else {
            let now = ContinuousClock.now
            let due = lastLine.withLock { last -> Bool in
                guard last.map({ now - $0 >= .seconds(5) }) ?? true else { return false }
                last = now
                return true
            }
            if due { Terminal.writeStandardError(line() + "\n") }
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

    /// `label: [████····] 1.2 GB/1.5 GB, 310 MB/s, ETA 1s`
    static func renderBytes(_ label: String, done: Int64, total: Int64, since start: ContinuousClock.Instant) -> String {
        let elapsed = (ContinuousClock.now - start).components
        let seconds = max(0.001, Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18)
        let rate = Double(done) / seconds
        var text = "\(label): "
        if total > 0 {
            let width = 24
            let filled = Int(min(1, Double(done) / Double(total)) * Double(width))
            text += "[" + String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled) + "] "
            text += "\(bytes(done))/\(bytes(total))"
        } else {
            text += bytes(done)
        }
        text += ", \(bytes(Int64(rate)))/s"
        if total > done, rate > 0 { text += ", ETA \(duration(Double(total - done) / rate))" }
        return text
    }

    /// `1.5 GB`, `310 MB`, `12 kB`, `512 B` (powers of 1000, as `df -H`).
    static func bytes(_ value: Int64) -> String {
        let units: [(Double, String)] = [(1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")]
        for (scale, unit) in units where Double(value) >= scale {
            let scaled = Double(value) / scale
            return (scaled >= 100 ? String(Int(scaled.rounded())) : String(format: "%.1f", scaled)) + " " + unit
        }
        return "\(value) B"
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
