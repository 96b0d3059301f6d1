import FerryPostgres

/// Finds the rows PostgreSQL rejects in a batch it refused, by applying halves: every half that applies is kept,
/// every half that fails with a data error is split again, down to single rows, which are rejected with the error.
/// Errors that are not about the data (a lost connection) end the search and are thrown.
enum Bisection {
    static func isolate(
        _ range: Range<Int>,
        apply: (Range<Int>) async throws -> Void,
        reject: (Int, any Error) async throws -> Void,
        beat: () async throws -> Void = {}
    ) async throws -> (applied: Int, rejected: Int) {
        try await beat()
        if range.count == 1 {
            do {
                try await apply(range)
                return (1, 0)
            } catch let error where PostgresDiagnosis.isDataError(error) {
                try await reject(range.lowerBound, error)
                return (0, 1)
            }
        }
        let middle = range.lowerBound + range.count / 2
        var applied = 0
        var rejected = 0
        for half in [range.lowerBound..<middle, middle..<range.upperBound] where !half.isEmpty {
            do {
                try await apply(half)
                applied += half.count
            } catch let error where PostgresDiagnosis.isDataError(error) {
                let result = try await isolate(half, apply: apply, reject: reject, beat: beat)
                applied += result.applied
                rejected += result.rejected
            }
        }
        return (applied, rejected)
    }
}
