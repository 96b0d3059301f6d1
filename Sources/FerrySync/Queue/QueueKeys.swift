/// Redis keys of one pipeline. All share the `ferry:{name}:` prefix (the braces keep them in one cluster slot).
package struct QueueKeys: Sendable, Hashable {
    package let pipeline: String

    package init(pipeline: String) {
        self.pipeline = pipeline
    }

    /// The stream of change entries.
    package var stream: String { "ferry:{\(pipeline)}:changes" }
    /// The producer's checkpoint (hash: position, seq, null_position, schema).
    package var checkpoint: String { "ferry:{\(pipeline)}:checkpoint" }
    /// Schema definitions by fingerprint (hash: fingerprint → JSON).
    package var schemas: String { "ferry:{\(pipeline)}:schemas" }
    /// Rows that could not be applied, with the reason.
    package var deadLetters: String { "ferry:{\(pipeline)}:dead" }
    /// Entries applied on their own after many deliveries (hash: entry id → attempts begun). An entry whose
    /// attempts keep ending with the consumer stopped is a poison entry; see `Consumer`.
    package var attempts: String { "ferry:{\(pipeline)}:attempts" }
    /// Set while a process runs the pipeline (its host and pid), with a short expiry it keeps renewing: `ferry
    /// pipeline reset` refuses while it exists.
    package var running: String { "ferry:{\(pipeline)}:running" }
    /// The consumer group every Ferry consumer of this pipeline joins.
    package static let group = "ferry"
}
