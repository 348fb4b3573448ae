#!/usr/bin/env bash
# Household-check (核对) latency benchmark (issue 10): POST /api/v1/checks against `civlink serve`
# on a demo catalog, with GET /api/v1/health on the same connection as the reference.
#
#   target/release/civlink --data-dir D demo --people 6000000 --no-serve --out O   # province scale
#   benches/checks/run.sh D O [--iterations N]
#
# CIVLINK: the civlink binary (default target/release/civlink).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
civlink=${CIVLINK:-target/release/civlink}
case $civlink in /*) ;; *) civlink=$root/$civlink ;; esac
data=$1 out=$2
shift 2
cd "$root"
exec .venv/bin/python benches/checks/bench_checks.py --civlink "$civlink" --data-dir "$data" --out "$out" "$@"
