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
if (($#)); then
  swift test --skip-build "$@"
  exit
fi
# The table sync's fault tests run on their own too, for the same reason as the HA suites: they kill `ferry sync` at
# random moments and restart servers, and each kill is meant to land after the process made progress. Beside the
# other suites, on two cores, the processes they kill would mostly still be starting.
ha="HATests|FailoverTests"
faults="TableSyncFaultTests"
swift test --skip-build --skip "$ha|$faults"
swift test --skip-build --filter "$faults"
swift test --skip-build --filter "$ha"
