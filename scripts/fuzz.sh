#!/usr/bin/env bash
# Builds the libFuzzer targets in Fuzz/ with the fuzzer and address sanitizers and runs each for a bounded time:
#   FuzzRESPDecoder     the RESP frame scanner and token decoder (any bytes, split anywhere)
#   FuzzConfigLoader    the YAML loader and configuration reader (any ferry.yaml)
#   FuzzClusterRequest  the cluster API's request bodies
#   FuzzTDSReply        the SQL Server client (FreeTDS) against a server whose replies are the fuzz bytes
#   FuzzParquetReader   the Parquet reader (any file)
#   scripts/fuzz.sh [seconds per target, default 60]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}

run() {
  local product=$1 corpus=$2 max_len=$3
  shift 3
  # SwiftPM passes each --sanitize as its own -sanitize= flag and swiftc keeps only the last one, so the fuzzer
  # and address sanitizers are given together through -Xswiftc.
  swift build --package-path Fuzz --scratch-path .build-fuzz -c debug --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address \
    -Xswiftc -parse-as-library --product "$product"
  mkdir -p ".build-fuzz/corpus/$corpus" fuzz-artifacts
  cp -n Fuzz/corpus/"$corpus"/* ".build-fuzz/corpus/$corpus/" 2>/dev/null || true
  ".build-fuzz/debug/$product" ".build-fuzz/corpus/$corpus" \
    -max_total_time="$seconds" -max_len="$max_len" -rss_limit_mb=2048 -timeout=10 -artifact_prefix=fuzz-artifacts/ -print_final_stats=1 "$@"
  echo "fuzz: $product ran ${seconds}s without a crash"
}

run FuzzRESPDecoder resp 4096
run FuzzConfigLoader config 8192
run FuzzClusterRequest cluster-request 1024
run FuzzParquetReader parquet 65536
# DB-Library's thread pool lives as long as the process, by design: LeakSanitizer would report it at exit.
export ASAN_OPTIONS=detect_leaks=0
run FuzzTDSReply tds-reply 8192
