#!/usr/bin/env bash
# Flight SQL throughput benchmark (issue 4): civlink vs a pyarrow.flight reference, and scoping overhead.
#
#   benches/flight/run.sh [ROWS] [bench_flight.py options...]
#
# CIVLINK: the civlink binary (default target/release/civlink; build it with `cargo build --release -p civlink`).
# ROWS:    rows in the generated person table (default 5000000; also the ROWS environment variable).
# Extra options go to bench_flight.py, e.g. --reps 7, --county 630121, --no-masked, --keep.
# The report (markdown) is on stdout; progress on stderr.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
civlink=${CIVLINK:-target/release/civlink}
case $civlink in /*) ;; *) civlink=$root/$civlink ;; esac
rows=${ROWS:-5000000}
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
    rows=$1
    shift
fi

cd "$root"
if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
    .venv/bin/pip install -q -r tests/python/requirements.txt
fi
exec .venv/bin/python benches/flight/bench_flight.py --civlink "$civlink" --rows "$rows" "$@"
