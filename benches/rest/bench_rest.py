#!/usr/bin/env python3
"""REST benchmark (issue 12), everything measured in one run on one machine:

1. 50 concurrent clients (wrk, Debian's package; one principal each) pulling 1,000-row JSON pages by cursor from a
   1,000,000-row dataset: p50/p99 latency and requests/s. Target: p99 < 100 ms.
2. A full-table Arrow IPC pull over REST against the Flight SQL full scan of the same rows.
   Target: >= 0.7x Flight.
3. A full CSV pull over REST against DuckDB's `COPY ... TO` CSV of the same rows (from the Parquet
   file the dataset was ingested from). Target: >= 0.5x.

The rows are bench_flight.py's generated people, ingested into civlink without masks (as its full
scan is); the principal is the province administrator. The report (markdown) is on stdout.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "flight"))
import bench_flight as bf  # noqa: E402

import duckdb  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.flight as flight  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

ROWS_PATH = f"/api/v1/datasets/{bf.DEPARTMENT}/{bf.TABLE_CLEAR}/rows"


def pull(addr, path, token, accept, sink=None):
    """GET path streamed to the end; (bytes, seconds). `sink`: a file to write the body to."""
    host, port = addr.rsplit(":", 1)
    started = time.perf_counter()
    conn = http.client.HTTPConnection(host, int(port), timeout=600)
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}", "Accept": accept})
    response = conn.getresponse()
    if response.status != 200:
        raise SystemExit(f"GET {path} ({accept}): {response.status} {response.read()[:500]!r}")
    total = 0
    chunks = []
    while True:
        chunk = response.read(1 << 20)
        if not chunk:
            break
        total += len(chunk)
        if sink is not None:
            sink.write(chunk)
        else:
            chunks.append(chunk)
    conn.close()
    return total, time.perf_counter() - started, b"".join(chunks) if sink is None else None


def arrow_pull(addr, token, rows):
    """The whole dataset as an Arrow IPC stream, received and decoded (as the Flight client decodes)."""
    started = time.perf_counter()
    total, _, body = pull(addr, ROWS_PATH, token, "application/vnd.apache.arrow.stream")
    table = pa.ipc.open_stream(body).read_all()
    seconds = time.perf_counter() - started
    if table.num_rows != rows:
        raise SystemExit(f"Arrow IPC pull: {table.num_rows} rows, expected {rows}")
    return total, seconds


def csv_pull(addr, token, out):
    with open(out, "wb") as sink:
        total, seconds, _ = pull(addr, ROWS_PATH, token, "text/csv", sink)
    return total, seconds


def duckdb_copy(parquet, out):
    con = duckdb.connect()
    started = time.perf_counter()
    con.execute(f"COPY (SELECT * FROM read_parquet('{parquet}')) TO '{out}' (HEADER, DELIMITER ',')")
    seconds = time.perf_counter() - started
    con.close()
    return os.path.getsize(out), seconds


def wrk(addr, tokens, seconds, connections):
    env = dict(os.environ, CIVLINK_TOKENS=",".join(tokens), CIVLINK_ROWS_PATH=ROWS_PATH)
    script = Path(__file__).resolve().parent / "pages.lua"
    done = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s", "-s", str(script),
         f"http://{addr}"],
        capture_output=True, text=True, env=env,
    )
    if done.returncode != 0:
        raise SystemExit(f"wrk failed:\n{done.stdout}\n{done.stderr}")
    out = done.stdout

    def percentile(p):
        found = re.search(rf"^\s*{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not found:
            raise SystemExit(f"no {p}% latency in wrk output:\n{out}")
        value, unit = float(found.group(1)), found.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non200 = int(re.search(r"non-200: (\d+)", out).group(1))
    errors = re.search(r"Socket errors: (.*)", out)
    return {"p50": percentile(50), "p90": percentile(90), "p99": percentile(99), "rps": rps, "non200": non200,
            "socket_errors": errors.group(1) if errors else "none", "raw": out}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--civlink", required=True)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk (Debian)")
    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    workdir = Path(tempfile.mkdtemp(prefix="civlink-bench-rest-"))
    civlink = bf.Civlink(args.civlink, workdir / "data", workdir / "serve.log")
    try:
        table = bf.generate(args.rows)
        parquet = workdir / "persons.parquet"
        pq.write_table(table, parquet, row_group_size=1 << 20)
        del table
        clear = workdir / "person_clear.standard.json"
        clear.write_text(json.dumps(bf.clear_standard(), ensure_ascii=False, indent=1), encoding="utf-8")
        civlink.ingest(workdir, bf.TABLE_CLEAR, clear, parquet)
        admin = civlink.token("bench_admin", "admin", bf.PROVINCE)
        # The paging clients: one principal each, as departmental systems are.
        clients = [civlink.token(f"bench_client_{i}", "admin", bf.PROVINCE) for i in range(args.connections)]
        flight_uri = civlink.serve()
        line = civlink.server.stdout.readline()
        found = re.search(r"REST API listening on http://(\S+)", line)
        if not found:
            raise SystemExit(f"no REST address from civlink serve: {line!r}")
        api = found.group(1)
        say(f"{args.rows:,} rows; Flight at {flight_uri}, REST at {api}")

        client = flight.FlightClient(flight_uri)
        scan = bf.Scan("flight", client, bf.statement_descriptor(
            f"SELECT * FROM civlink.{bf.DEPARTMENT}.{bf.TABLE_CLEAR}"), bf.bearer(admin), args.rows)
        # Warm: the table cache, the sessions.
        scan.once()
        arrow_pull(api, admin, args.rows)
        flight_s, arrow_s, arrow_bytes, csv_s, csv_bytes, duck_s, duck_bytes = [], [], 0, [], 0, [], 0
        for rep in range(args.reps):
            flight_s.append(scan.once())
            arrow_bytes, t = arrow_pull(api, admin, args.rows)
            arrow_s.append(t)
            csv_bytes, t = csv_pull(api, admin, workdir / "rest.csv")
            csv_s.append(t)
            duck_bytes, t = duckdb_copy(parquet, workdir / "duck.csv")
            duck_s.append(t)
            say(f"  pass {rep + 1}/{args.reps}: flight {flight_s[-1]:.2f}s, REST arrow {arrow_s[-1]:.2f}s, "
                f"REST csv {csv_s[-1]:.2f}s, duckdb csv {duck_s[-1]:.2f}s")
        say(f"wrk: {args.connections} connections for {args.duration}s")
        pages = wrk(api, clients, args.duration, args.connections)
    finally:
        civlink.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            say(f"work dir kept: {workdir}")

    med = statistics.median
    flight_mbs = scan.bytes / 1e6 / med(flight_s)
    arrow_mbs = arrow_bytes / 1e6 / med(arrow_s)
    print(f"## REST benchmark ({args.rows:,} rows, commit {bf.git_commit()}, {time.strftime('%Y-%m-%d')})\n")
    print("| measurement | civlink REST | reference | ratio | target |")
    print("|---|---|---|---|---|")
    print(f"| full Arrow IPC pull vs Flight SQL full scan (median of {args.reps}) | {med(arrow_s):.2f} s "
          f"({arrow_mbs:.0f} MB/s of IPC) | {med(flight_s):.2f} s ({flight_mbs:.0f} MB/s of Arrow) | "
          f"{med(flight_s) / med(arrow_s):.2f}x | >= 0.7x |")
    print(f"| full CSV pull vs DuckDB COPY TO CSV (median of {args.reps}) | {med(csv_s):.2f} s "
          f"({csv_bytes / 1e6 / med(csv_s):.0f} MB/s) | {med(duck_s):.2f} s ({duck_bytes / 1e6 / med(duck_s):.0f} MB/s) | "
          f"{med(duck_s) / med(csv_s):.2f}x | >= 0.5x |")
    print(f"| {args.connections} clients, 1,000-row JSON pages by cursor, {args.duration} s (wrk) | "
          f"p50 {pages['p50']:.1f} ms, p90 {pages['p90']:.1f} ms, p99 {pages['p99']:.1f} ms, "
          f"{pages['rps']:.0f} req/s, non-200 {pages['non200']}, socket errors {pages['socket_errors']} | | | p99 < 100 ms |")
    print("\nRatios are reference time / civlink time (higher is better for civlink).")


if __name__ == "__main__":
    main()
