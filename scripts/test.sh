#!/usr/bin/env bash
# Runs every test. Test servers come from Ferry's own sandbox; sandboxes left by a test process that died are
# stopped before and after the run.
set -euo pipefail
cd "$(dirname "$0")/.."

reap() { .build/debug/ferry sandbox reap --under .ferry/test || true; }
reap
trap reap EXIT
swift test --skip-build "$@"
