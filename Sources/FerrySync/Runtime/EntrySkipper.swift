package import FerryCore
import FerryPostgres
import FerryRedis
import Foundation
import Logging

/// `ferry sync NAME --skip-entry ID`: takes queue entries out of the way of a stopped pipeline without losing
/// what they carried. The rows of each entry are read again by key from the source under its current schema and
/// applied when the mirror takes that schema; otherwise the entry is only dropped and its keys are left for a
/// `reconcile --repair` once the mirror is fixed. Each entry is acknowledged and deleted from the stream, and the
/// skip is recorded in `ferry_pipeline_events`.
extension TableSyncPipeline {
    package struct SkippedEntry: Sendable {
        package var id: String
        package var keys: Int
        /// Rows read again from the source and applied; nil when the mirror could not take the source's schema.
        package var readAgain: Int?
    }

    package func skip(entries ids: [String]) async throws -> [SkippedEntry] {
        var applier = BatchApplier(context: context, slot: "operator")
        do {
            let skipped = try await skip(ids, applier: &applier)
            await applier.session.close()
            return skipped
        } catch {
            await applier.session.close()
            throw error
        }
    }

    private func skip(_ ids: [String], applier: inout BatchApplier) async throws -> [SkippedEntry] {
        var skipped: [SkippedEntry] = []
        for id in ids {
            guard let raw = try await context.redis.send(XRANGE(context.keys.stream, start: id, end: id)).first, raw.fields != nil else {
                throw FerryError(
                    .invalidInput, "pipelines \(pipeline.name): there is no entry \(id) in \(context.keys.stream)",
                    fix: "use the entry id from the pipeline's error or `XPENDING \(context.keys.stream) \(QueueKeys.group)`")
            }
            let entry = try QueueEntry(raw)
            let layout = try MirrorLayout(pipeline: pipeline, schema: try await applier.registeredSchema(entry.schema))
            let keys = TableSyncApplier.keys(of: [Consumed(id: id, entry: entry)], layout: layout)
            let current = try await context.source.describe()
            var readAgain: Int?
            var detail = "skipped by an operator; \(keys.count) keys"
            do {
                readAgain = try await applier.readAgain(keys: keys, schema: current)
                detail += " read again from the source under schema \(current.fingerprint)"
            } catch let incompatible as IncompatibleMirror {
                detail +=
                    " not read again (\(incompatible.error.message)); run `ferry reconcile \(pipeline.name) --repair` once the mirror takes them"
            }
            _ = try await context.redis.send(XACK(context.keys.stream, group: QueueKeys.group, ids: [id]))
            _ = try await context.redis.send(XDEL(context.keys.stream, ids: [id]))
            try await context.control.recordEvent(
                "skipped", entries: [id], rows: readAgain ?? 0, detail: detail, session: applier.session, logger: context.logger)
            context.logger.notice(
                "queue entry skipped", metadata: ["ferry.pipeline": "\(pipeline.name)", "ferry.entry": "\(id)", "ferry.detail": "\(detail)"])
            skipped.append(SkippedEntry(id: id, keys: keys.count, readAgain: readAgain))
        }
        return skipped
    }
}
