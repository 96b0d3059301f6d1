/// What went wrong reading or writing a Parquet file, in words a user can act on: the part of the file (footer,
/// row group, column, page) and what was found there. The reader never traps on a file's content: every length,
/// count and offset is checked before it is used.
package struct ParquetError: Error, Equatable, CustomStringConvertible {
    package var message: String

    package init(_ message: String) { self.message = message }

    package var description: String { message }
}
