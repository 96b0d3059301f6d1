/// A configuration value that must never be printed: passwords, tokens.
///
/// Its `description` is `***`, so string interpolation, logging and `dump` cannot leak it; code that needs the
/// value reads ``value`` explicitly.
public struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The secret itself. Pass it to a connection; never to a log or an error.
    public let value: String

    public init(_ value: String) { self.value = value }

    public var description: String { "***" }
    public var debugDescription: String { "***" }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}
