#!/usr/bin/env bash
# Interactive-latency benchmark (issue 19): Flight SQL and REST latency, 45-principal load, PostgreSQL reference.
#
#   benches/latency/run.sh [bench_latency.py options...]
#
# CIVLINK: the civlink binary (default target/release/civlink; build it with `cargo build --release -p civlink`).
# Options go to bench_latency.py, e.g. --iterations 500, --duration 20, --procs 9, --no-postgres, --keep.
# The report (markdown) is on stdout; progress on stderr.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
civlink=${CIVLINK:-target/release/civlink}
case $civlink in /*) ;; *) civlink=$root/$civlink ;; esac

cd "$root"
if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
    .venv/bin/pip install -q -r tests/python/requirements.txt
fi
# The command line as typed, for the report.
quoted=""
if [[ $# -gt 0 ]]; then printf -v quoted ' %q' "$@"; fi
CIVLINK_BENCH_COMMAND="CIVLINK=${CIVLINK:-target/release/civlink} benches/latency/run.sh$quoted"
export CIVLINK_BENCH_COMMAND
exec .venv/bin/python benches/latency/bench_latency.py --civlink "$civlink" "$@"
