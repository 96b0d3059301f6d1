#!/usr/bin/env bash
# `make demo`: builds Ferry, starts the local sandbox (PostgreSQL + Redis on free loopback ports) and checks
# every endpoint. The table-sync demo replaces the check once that job lands.
set -euo pipefail
cd "$(dirname "$0")/.."

swift build --product ferry
ferry=.build/debug/ferry

$ferry sandbox up
echo
$ferry check
echo
echo "The sandbox keeps running; stop it with: $ferry sandbox down"
