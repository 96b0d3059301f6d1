import FerryCore

/// libFuzzer entry point: any bytes as a cluster API request body give a range-checked body or an error that says
/// what to send (a 4xx), never a crash (`timeout_seconds: 9223372036854775807` once crashed the daemon).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzClusterRequest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FerryFuzzEntry.clusterRequestBody(UnsafeBufferPointer(start: data, count: size))
    return 0
}
