import FerryRESP

/// Commands encoded one after another, for ``RedisConnection/transaction(_:)``.
public struct RedisBatch {
    var encoder: RESPCommandEncoder
    /// Names of the added commands, for errors.
    public private(set) var names: [String] = []

    init(encoder: RESPCommandEncoder) {
        self.encoder = encoder
    }

    public var count: Int { names.count }

    public mutating func add<Command: RedisCommand>(_ command: Command) {
        command.encode(into: &encoder)
        names.append(command.name)
    }
}
