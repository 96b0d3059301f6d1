#!/usr/bin/env bash
# Runs every test. Test servers come from Ferry's own sandbox; sandboxes left by a test process that died are
# stopped before and after the run.
#
# The HA suites (three PostgreSQL nodes, agents and watchdogs each, crashes and failovers) run after the others,
# not beside them: on a 2-core machine their load would starve the timing of the sync fault tests (a `ferry sync`
# killed at a random moment must have had the CPU to make progress before it).
set -euo pipefail
cd "$(dirname "$0")/.."

# HA test clusters (.ferry/test/ha-*) and scratch directories (cli-*) have no owner record: between runs every one
# is left over from a killed run.
reap() {
  .build/debug/ferry sandbox reap --under .ferry/test || true
  for dir in .ferry/test/ha-*; do
    [[ -d $dir ]] || continue
    pkill -9 -f "ferry (agent|watchdog) .*$(realpath "$dir")" || true
    .build/debug/ferry cluster down --dir "$dir" >/dev/null 2>&1 || rm -rf "$dir"
  done
  rm -rf .ferry/test/cli-*
}
reap
trap reap EXIT
# One phase of `swift test`, bounded: a test that hangs fails the run within LIMIT seconds (CI would otherwise wait
# out its own deadline and report nothing), naming the tests that started and never ended and where every thread of
# the test process stood.
phase() {
  local name=$1 limit=$2
  shift 2
  local log
  log=$(mktemp /tmp/ferry-test-XXXXXX.log)
  echo "== $name (at most ${limit}s)"
  # Line-buffered (stdbuf reaches the test process too): through a pipe its output would come in blocks, and a
  # hang would hide which tests had started.
  stdbuf -oL -eL swift test --skip-build "$@" > >(tee "$log") 2>&1 &
  local runner=$! waited=0
  while kill -0 "$runner" 2>/dev/null; do
    if ((waited >= limit)); then
      # Where every thread stood first, then (last, where a CI log's tail shows it) which tests never ended.
      local pid
      for pid in $(pgrep -f "$PWD/.build/.*ferryPackageTests" || true); do
        echo "== threads of test process $pid:" >&2
        timeout 120 gdb -p "$pid" -batch -ex 'thread apply all bt 12' 2>/dev/null | grep -E '^(Thread|#)' | cut -c1-200 | head -300 >&2 || true
      done
      pkill -9 -f "$PWD/.build/.*ferryPackageTests" || true
      kill "$runner" 2>/dev/null || true
      wait "$runner" 2>/dev/null || true
      { sed -n 's/^[^ ]* Test \(.*\) started\.$/\1/p' "$log" | grep -vx run | sort >"$log.started"; } || true
      { sed -n -E 's/^[^ ]* Test (.*) (passed|failed)( after .*)?\.?$/\1/p' "$log" | sed -E 's/ with [0-9]+ test cases?$//' |
        sort >"$log.ended"; } || true
      echo "== $name did not finish within ${limit}s. Tests that started and never ended:" >&2
      comm -23 "$log.started" "$log.ended" | sed 's/^/  /' >&2
      return 1
    fi
    sleep 5
    waited=$((waited + 5))
  done
  wait "$runner"
}

if (($#)); then
  swift test --skip-build "$@"
  exit
fi
# The table sync's fault tests run on their own too, for the same reason as the HA suites: they kill `ferry sync` at
# random moments and restart servers, and each kill is meant to land after the process made progress. Beside the
# other suites, on two cores, the processes they kill would mostly still be starting.
ha="HATests|FailoverTests"
faults="TableSyncFaultTests"
phase "all but the fault and HA suites" 1500 --skip "$ha|$faults"
phase "the table sync fault suite" 900 --filter "$faults"
phase "the HA suites" 1200 --filter "$ha"
