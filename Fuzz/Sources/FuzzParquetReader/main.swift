import FerryParquet

/// libFuzzer entry point: the bytes are a Parquet file; reading it must give rows or an error, never a crash, a hang
/// or a huge allocation (libFuzzer's -rss_limit_mb catches those).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzParquetReader(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    _ = FerryParquetFuzzEntry.readAll(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
