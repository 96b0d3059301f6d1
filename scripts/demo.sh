#!/usr/bin/env bash
# `make demo`: builds Ferry, starts the local sandbox (PostgreSQL + Redis on free loopback ports, ferry.yaml
# written for them) and runs the main job on it: `ferry demo` generates a VW_VENTAS_SYNC source, syncs it
# into datos_vista/datos_seguimiento while a writer changes rows, then drains and reconciles (0 differences).
set -euo pipefail
cd "$(dirname "$0")/.."

swift build --product ferry
ferry=.build/debug/ferry

$ferry sandbox up
echo
$ferry demo "$@"
echo "(ferry is .build/debug/ferry here: add .build/debug to PATH or use the full path)"
