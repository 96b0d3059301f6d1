/// How a ``ParquetWriter`` lays a file out. The defaults are pyarrow's: Snappy, dictionary encoding with a 1 MiB
/// dictionary page limit (PLAIN after it), 1 MiB data pages, row groups of at most 1,048,576 rows; and, so memory stays
/// bounded whatever the rows, a row group also ends when its compressed pages reach `rowGroupBytes`.
package struct ParquetWriterOptions: Sendable, Equatable {
    package var compression: ParquetCodec = .snappy
    /// The codec's level (zstd 1…22, gzip 1…9); nil: the codec's default as pyarrow uses it.
    package var compressionLevel: Int?
    package var rowGroupRows = 1_048_576
    package var rowGroupBytes = 64 << 20
    package var pageBytes = 1 << 20
    package var dictionary = true
    package var dictionaryPageBytes = 1 << 20
    /// Min, max and null count per column chunk.
    package var statistics = true
    /// Statistics of byte arrays longer than this are left out (readers would copy them into every footer read).
    package var statisticsMaxBytes = 4096
    package var createdBy = "ferry"
    /// Key-value metadata written into the footer.
    package var metadata: [(key: String, value: String)] = []

    package init() {}

    package static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.compression == rhs.compression && lhs.compressionLevel == rhs.compressionLevel && lhs.rowGroupRows == rhs.rowGroupRows
            && lhs.rowGroupBytes == rhs.rowGroupBytes && lhs.pageBytes == rhs.pageBytes && lhs.dictionary == rhs.dictionary
            && lhs.dictionaryPageBytes == rhs.dictionaryPageBytes && lhs.statistics == rhs.statistics
            && lhs.statisticsMaxBytes == rhs.statisticsMaxBytes && lhs.createdBy == rhs.createdBy
            && lhs.metadata.map(\.key) == rhs.metadata.map(\.key) && lhs.metadata.map(\.value) == rhs.metadata.map(\.value)
    }
}
