/// The Parquet reader's public surface for `Fuzz/` only: any bytes give rows or a ``ParquetError``, never a trap, a
/// hang or an allocation the bytes do not justify.
public enum FerryParquetFuzzEntry {
    /// Opens `bytes` as a Parquet file and reads every row group and every value; returns the rows read, or -1 when
    /// the file was refused.
    public static func readAll(_ bytes: [UInt8]) -> Int {
        do {
            let reader = try ParquetFileReader(ParquetBytes(bytes))
            var rows = 0
            for index in 0..<reader.rowGroupCount {
                for column in try reader.readRowGroup(index) {
                    rows += column.rowValues().count
                }
            }
            return rows
        } catch {
            return -1
        }
    }
}
