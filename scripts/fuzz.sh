#!/usr/bin/env bash
# Builds the libFuzzer targets in Fuzz/ with the fuzzer and address sanitizers and runs each for a bounded time.
#   scripts/fuzz.sh [seconds per target, default 60]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}

# SwiftPM passes each --sanitize as its own -sanitize= flag and swiftc keeps only the last one, so the fuzzer
# and address sanitizers are given together through -Xswiftc.
swift build --package-path Fuzz --scratch-path .build-fuzz -c debug --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address \
  -Xswiftc -parse-as-library --product FuzzRESPDecoder

mkdir -p .build-fuzz/corpus/resp fuzz-artifacts
cp -n Fuzz/corpus/resp/* .build-fuzz/corpus/resp/ 2>/dev/null || true
.build-fuzz/debug/FuzzRESPDecoder .build-fuzz/corpus/resp \
  -max_total_time="$seconds" -max_len=4096 -artifact_prefix=fuzz-artifacts/ -print_final_stats=1
echo "fuzz: FuzzRESPDecoder ran ${seconds}s without a crash"
