#!/usr/bin/env bash
# REST benchmark (issue 12): cursor pages under 50 clients (wrk), Arrow IPC pull vs Flight SQL,
# CSV pull vs DuckDB COPY TO.
#
#   benches/rest/run.sh [ROWS] [bench_rest.py options...]
#
# CIVLINK: the civlink binary (default target/release/civlink; `cargo build --release -p civlink`).
# Needs wrk (Debian: apt-get install wrk) and the venv of tests/python/requirements.txt.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
civlink=${CIVLINK:-target/release/civlink}
case $civlink in /*) ;; *) civlink=$root/$civlink ;; esac
rows=${ROWS:-1000000}
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
    rows=$1
    shift
fi
cd "$root"
if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
    .venv/bin/pip install -q -r tests/python/requirements.txt
fi
exec .venv/bin/python benches/rest/bench_rest.py --civlink "$civlink" --rows "$rows" "$@"
