import FerryRESP

/// Commands encoded one after another, for ``RedisConnection/transaction(_:)``.
package struct RedisBatch {
    var encoder: RESPCommandEncoder
    /// Names of the added commands, for errors.
    package private(set) var names: [String] = []

    init(encoder: RESPCommandEncoder) {
        self.encoder = encoder
    }

    package var count: Int { names.count }

    package mutating func add<Command: RedisCommand>(_ command: Command) {
        command.encode(into: &encoder)
        names.append(command.name)
    }
}
