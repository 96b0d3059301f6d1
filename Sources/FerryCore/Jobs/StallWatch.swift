/// Tells when a job stopped making progress: work is waiting (`backlog` > 0) and the job's progress counter has
/// not moved for `after`. A pure rule, fed by the job every time it looks (the Redis sync after each discovery).
package struct StallWatch: Sendable {
    package let after: Duration
    private var lastProgress: Int?
    private var lastChange: ContinuousClock.Instant?

    package init(after: Duration) { self.after = after }

    /// The stall, described for `/health/ready` ("no entry applied for 2m while 1,234 wait"), or nil when the job is
    /// making progress or has nothing to do.
    package mutating func observe(
        progress: Int, backlog: Int, what: String, countsBacklog: Bool = true, now: ContinuousClock.Instant = .now
    ) -> String? {
        if progress != lastProgress || lastChange == nil || backlog <= 0 {
            lastProgress = progress
            lastChange = now
            return nil
        }
        guard let since = lastChange, now - since >= after else { return nil }
        let waiting = countsBacklog ? " while \(backlog) wait" : ""
        return
            "no \(what) for \(DurationParser.format(.seconds((now - since).components.seconds)))\(waiting) — the job is not making progress; read its log"
    }
}
