/// A configuration value that must never be printed: passwords, tokens.
///
/// Its `description` is `***`, so string interpolation, logging and `dump` cannot leak it; code that needs the
/// value reads ``value`` explicitly.
package struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The secret itself. Pass it to a connection; never to a log or an error.
    package let value: String

    package init(_ value: String) { self.value = value }

    package var description: String { "***" }
    package var debugDescription: String { "***" }
    package var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}
