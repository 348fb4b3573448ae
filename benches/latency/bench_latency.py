"""Interactive-latency benchmark for civlink (issue 19).

Measures, in one run, on one machine, over loopback, against `civlink serve` on the demo's data:

1. **Flight SQL latency** through ADBC (`adbc_driver_flightsql.dbapi`, one connection, reused) as a
   county analyst: `SELECT 1` and a scoped `SELECT count(*)` of a small table. Warm-up, then N
   iterations each; p50 and p99. Targets: p50 <= 5 ms, p99 <= 15 ms.
2. **REST latency** with `http.client` keep-alive on one connection: `GET /api/v1/datasets` and a
   1-row read (`/api/v1/datasets/{dept}/{name}/rows?limit=1`); p50 and p99. Target: p50 <= 3 ms.
3. **Load**: 45 concurrent clients, each its own principal (one analyst per Qinghai county, tokens
   issued with `civlink token create`), each with its own connection, running a mix of small
   scoped queries (a count, a join of two demo tables, a group-by) for a fixed time. The clients are
   benches/load's `civlink-load` (arrow-flight's Flight SQL client, every client a task on one
   thread), or with `--load-client adbc` ADBC connections spread over Python processes; the ADBC
   driver alone spends ~4 ms of CPU per query, which on 2 shared cores caps any server near 500
   queries/s. Queries/s, errors, p50/p99.
   Target: >= 1000 queries/s with 0 errors.
4. **Reference**: PostgreSQL on 127.0.0.1:5432 answering `SELECT 1` under `pgbench -M prepared`, one
   client (latency) and 45 clients (throughput), in the same run.

See README.md next to this file. Usage (normally through run.sh):

    bench_latency.py --civlink target/release/civlink [--iterations 500] [--duration 20]

The markdown report goes to stdout, progress to stderr. Every child process (the server, the client
processes, pgbench) is stopped on exit, on error and on Ctrl-C.
"""

import argparse
import csv
import ctypes
import glob
import http.client
import json
import math
import multiprocessing
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DIVISIONS_CSV = ROOT / "standards/data/divisions/qinghai.csv"
PROVINCE = "630000000000"
DEMO_COUNTY = "630106"  # 湟中区, the demo's county
DEPARTMENT = "minzheng"
TOKEN_RE = re.compile(r"clk_[0-9a-f]{16}_[0-9a-f]{64}")

# The measured queries. Tables are named schema.table in the principal's default catalog `civlink`.
SELECT_ONE = "SELECT 1"
SMALL_TABLE = "minzheng.dibao_households"
SCOPED_COUNT = f"SELECT count(*) FROM {SMALL_TABLE}"
# The load mix: (kind, SQL). Each is small and scoped: every table is confined to the principal's county.
MIX = [
    ("count", SCOPED_COUNT),
    ("join", "SELECT count(*) FROM minzheng.dibao_members m "
             "JOIN minzheng.dibao_households h ON m.household_id = h.household_id"),
    ("group-by", "SELECT status, count(*) AS n FROM gongan.population GROUP BY status ORDER BY status"),
]
# The same, unscoped, per county: what each county's principal must get (run by the province analyst).
EXPECTED_SQL = {
    "count": f"SELECT substr(division_code, 1, 6) AS county, count(*) AS n FROM {SMALL_TABLE} GROUP BY 1",
    "join": "SELECT substr(m.division_code, 1, 6) AS county, count(*) AS n FROM minzheng.dibao_members m "
            "JOIN minzheng.dibao_households h ON m.household_id = h.household_id "
            "WHERE substr(m.division_code, 1, 6) = substr(h.division_code, 1, 6) GROUP BY 1",
    "group-by": "SELECT substr(division_code, 1, 6) AS county, status, count(*) AS n FROM gongan.population "
                "GROUP BY 1, 2",
}
REST_ROWS_DATASET = ("minzheng", "dibao_households")


def say(text):
    print(text, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# Statistics.


def percentile(sorted_values, q):
    """Nearest-rank percentile of an ascending list (q in [0, 1])."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


class Latencies:
    """Latencies in milliseconds, with p50/p99/mean/max."""

    def __init__(self, label, values_ms):
        self.label = label
        self.values = sorted(values_ms)

    @property
    def n(self):
        return len(self.values)

    def p(self, q):
        return percentile(self.values, q)

    @property
    def p50(self):
        return self.p(0.50)

    @property
    def p99(self):
        return self.p(0.99)

    @property
    def mean(self):
        return sum(self.values) / len(self.values) if self.values else float("nan")

    @property
    def max(self):
        return self.values[-1] if self.values else float("nan")


def ms(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if value < 0.1:
        return f"{value:.3f}"
    if value < 10:
        return f"{value:.2f}"
    return f"{value:.1f}"


def ratio(a, b):
    if a is None or b is None or not b or math.isnan(a) or math.isnan(b):
        return "n/a"
    r = a / b
    if r >= 100:
        return f"{r:.0f}×"
    if r >= 10:
        return f"{r:.1f}×"
    if r >= 0.1:
        return f"{r:.2f}×"
    return f"{r:.2g}×"


def cpu_jiffies_machine():
    """(busy, total) clock ticks of the whole machine since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def cpu_seconds_of(pid):
    """User + system CPU seconds of a process (all its threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loadavg():
    try:
        return open("/proc/loadavg").read().split()[0]
    except OSError:
        return "?"


# --------------------------------------------------------------------------------------------------
# civlink: the data directory, tokens and the server, all through the CLI.


def _die_with_parent():
    """In the child, before exec: get SIGTERM if the benchmark dies (Linux), and not Ctrl-C's SIGINT."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Civlink:
    def __init__(self, binary, data_dir, log):
        self.binary = str(binary)
        self.data_dir = str(data_dir)
        self.log = log
        self.server = None

    def run(self, *args, ok=(0,)):
        proc = subprocess.run([self.binary, "--data-dir", self.data_dir, *args], capture_output=True, text=True)
        with open(self.log, "a", encoding="utf-8") as log:
            log.write(f"$ civlink {shlex.join(args)}\n{proc.stdout}{proc.stderr}\n")
        if proc.returncode not in ok:
            raise SystemExit(f"civlink {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def version(self):
        proc = subprocess.run([self.binary, "--version"], capture_output=True, text=True)
        return proc.stdout.strip() or proc.stderr.strip()

    def demo(self, out, people, seed):
        args = ["demo", "--no-serve", "--out", str(out), "--seed", str(seed)]
        if people:
            args += ["--people", str(people)]
        # 1 = the ingest did not match the ground truth: reported, the benchmark goes on.
        proc = self.run(*args, ok=(0, 1))
        if proc.returncode == 1:
            say("WARNING: `civlink demo` reported a ground-truth mismatch (see the log)")
        return proc.stdout

    def token(self, user, role, division):
        out = self.run("token", "create", "--user", user, "--role", role, "--division", division,
                       "--department", DEPARTMENT).stdout
        found = TOKEN_RE.search(out)
        if not found:
            raise SystemExit(f"no token in `civlink token create` output:\n{out}")
        return found.group(0)

    def serve(self):
        log = open(self.log, "ab")
        self.server = subprocess.Popen(
            [self.binary, "--data-dir", self.data_dir, "serve", "--addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True, preexec_fn=_die_with_parent,
        )
        flight_addr = api_addr = None
        lines = []
        deadline = time.monotonic() + 120
        while (flight_addr is None or api_addr is None) and time.monotonic() < deadline:
            line = self.server.stdout.readline()
            if not line:
                break
            lines.append(line)
            if m := re.search(r"Flight SQL listening on (\S+)", line):
                flight_addr = m.group(1)
            if m := re.search(r"REST API listening on http://(\S+)", line):
                api_addr = m.group(1)
        if flight_addr is None or api_addr is None:
            self.stop()
            raise SystemExit(f"civlink serve did not start: {''.join(lines)!r} (log: {self.log})")
        # Drain the rest of stdout so the server never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in self.server.stdout], daemon=True).start()
        host, port = api_addr.rsplit(":", 1)
        return f"grpc://{flight_addr}", (host, int(port))

    def stop(self):
        if self.server and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()


def qinghai_counties():
    """(code6, name) of the 45 county-level divisions of Qinghai, from the shipped table."""
    with open(DIVISIONS_CSV, encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["level"] == "county"]
    return [(r["code"][:6], r["name"]) for r in rows]


# --------------------------------------------------------------------------------------------------
# Flight SQL through ADBC.


def adbc_connect(uri, token):
    import adbc_driver_flightsql
    import adbc_driver_flightsql.dbapi as flight_sql

    return flight_sql.connect(
        uri,
        db_kwargs={adbc_driver_flightsql.DatabaseOptions.AUTHORIZATION_HEADER.value: f"Bearer {token}"},
        autocommit=True,
    )


def fetch(cursor, sql):
    cursor.execute(sql)
    return cursor.fetchall()


def expected_per_county(uri, token):
    """{kind: {county6: result rows}} for the load mix, from the province analyst's unscoped queries."""
    conn = adbc_connect(uri, token)
    try:
        cur = conn.cursor()
        out = {}
        for kind, sql in EXPECTED_SQL.items():
            per = {}
            for row in fetch(cur, sql):
                per.setdefault(row[0], []).append(row[1:])
            out[kind] = per
        totals = {}
        for table in ["minzheng.dibao_households", "minzheng.dibao_members", "gongan.population"]:
            totals[table] = fetch(cur, f"SELECT count(*) FROM {table}")[0][0]
        cur.close()
    finally:
        conn.close()
    expected = {}
    for kind, per in out.items():
        if kind == "group-by":
            expected[kind] = {c: sorted((s, n) for s, n in rows) for c, rows in per.items()}
        else:
            expected[kind] = {c: [(rows[0][0],)] for c, rows in per.items()}
    return expected, totals


def expected_for(expected, county):
    """What each query of the mix must return for a principal of `county`."""
    return {
        "count": expected["count"].get(county, [(0,)]),
        "join": expected["join"].get(county, [(0,)]),
        "group-by": expected["group-by"].get(county, []),
    }


def process_cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def time_queries(cursor, sql, check, warmup, iterations):
    """Warm-up, then `iterations` timed executions (execute + fetch every row); latencies in ms.

    Also returns this process's CPU seconds per timed execution (ADBC's Go driver and Python)."""
    for _ in range(warmup):
        check(fetch(cursor, sql))
    out = []
    clock = time.perf_counter_ns
    cpu = process_cpu()
    for _ in range(iterations):
        started = clock()
        cursor.execute(sql)
        rows = cursor.fetchall()
        out.append((clock() - started) / 1e6)
        check(rows)
    cpu = (process_cpu() - cpu) / max(1, iterations)
    return out, cpu


def equals(expected, label):
    def check(rows):
        if rows != expected:
            raise SystemExit(f"{label}: got {rows!r}, expected {expected!r}")
    return check


# --------------------------------------------------------------------------------------------------
# REST through http.client, one keep-alive connection.


class Rest:
    def __init__(self, addr, token):
        self.conn = http.client.HTTPConnection(addr[0], addr[1], timeout=30)
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self.sockets = set()

    def get(self, path):
        self.conn.request("GET", path, headers=self.headers)
        response = self.conn.getresponse()
        body = response.read()
        self.sockets.add(id(self.conn.sock))
        if response.status != 200:
            raise SystemExit(f"GET {path}: HTTP {response.status}: {body[:500]!r}")
        if response.getheader("Connection", "").lower() == "close":
            raise SystemExit(f"GET {path}: the server closed the keep-alive connection")
        return body

    def time(self, path, warmup, iterations):
        for _ in range(warmup):
            self.get(path)
        out = []
        clock = time.perf_counter_ns
        for _ in range(iterations):
            started = clock()
            self.get(path)
            out.append((clock() - started) / 1e6)
        return out

    def close(self):
        self.conn.close()


# --------------------------------------------------------------------------------------------------
# The load: client processes, each with threads, one principal and one ADBC connection per thread.


def load_process(index, clients, uri, warmup_rounds, start_at, duration, ready, go, results, setup_failed,
                 setup_errors):
    """One client process: a thread per client; results (latencies, errors, CPU) put on `results`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    out = {"index": index, "clients": len(clients), "lat": {k: [] for k, _ in MIX}, "errors": 0,
           "first_error": None, "setup_error": None, "cpu": None, "per_client": {}}
    lock = threading.Lock()
    conns = []

    def error(text, setup=False):
        with lock:
            if setup:
                out["setup_error"] = out["setup_error"] or text
            else:
                out["errors"] += 1
                out["first_error"] = out["first_error"] or text

    def run_client(slot, client):
        county, token, expected = client["county"], client["token"], client["expected"]
        try:
            conn = adbc_connect(uri, token)
            conns.append(conn)
            cur = conn.cursor()
            # Verify every query of the mix against the province's unscoped figure, then warm up.
            for _ in range(1 + warmup_rounds):
                for kind, sql in MIX:
                    rows = fetch(cur, sql)
                    if rows != expected[kind]:
                        raise RuntimeError(f"{kind} as county {county}: got {rows!r}, expected {expected[kind]!r}")
        except Exception as e:  # noqa: BLE001 - reported to the parent, which aborts
            text = f"county {county}: {type(e).__name__}: {e}"
            error(text, setup=True)
            setup_errors.put(text)
            with setup_failed.get_lock():
                setup_failed.value += 1
            return
        finally:
            ready.release()
        go.wait()
        begin = start_at.value
        end = begin + duration
        lat = {k: [] for k, _ in MIX}
        clock = time.perf_counter
        i = slot  # clients start at different points of the mix
        done = 0
        while clock() < begin:
            time.sleep(min(0.01, max(0.0, begin - clock())))
        while True:
            kind, sql = MIX[i % len(MIX)]
            i += 1
            started = clock()
            if started >= end:
                break
            try:
                cur.execute(sql)
                rows = cur.fetchall()
            except Exception as e:  # noqa: BLE001 - counted and reported
                error(f"{kind} as county {county}: {type(e).__name__}: {e}")
                continue
            finished = clock()
            if rows != expected[kind]:
                error(f"{kind} as county {county}: wrong result {rows!r}, expected {expected[kind]!r}")
                continue
            if finished <= end:
                lat[kind].append((finished - started) * 1e3)
                done += 1
        with lock:
            for k, values in lat.items():
                out["lat"][k].extend(values)
            out["per_client"][county] = done

    def measure_cpu():
        go.wait()
        begin = start_at.value
        while time.perf_counter() < begin:
            time.sleep(0.001)
        a = resource.getrusage(resource.RUSAGE_SELF)
        time.sleep(max(0.0, begin + duration - time.perf_counter()))
        b = resource.getrusage(resource.RUSAGE_SELF)
        out["cpu"] = (b.ru_utime - a.ru_utime) + (b.ru_stime - a.ru_stime)

    threads = [threading.Thread(target=run_client, args=(slot, c)) for slot, c in enumerate(clients)]
    threads.append(threading.Thread(target=measure_cpu))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for conn in conns:
        try:
            conn.close()
        except Exception:  # noqa: BLE001
            pass
    results.put(out)


def run_load_rust(args, uri, clients, server_pid):
    """The load from benches/load's `civlink-load`: every client a task on one thread, own connection and token."""
    binary = Path(args.load_bin) if args.load_bin else Path(args.civlink).with_name("civlink-load")
    if not binary.exists():
        raise SystemExit(f"{binary} is missing: cargo build --release -p civlink -p civlink-bench-load")
    plan = {
        "uri": uri.replace("grpc://", "http://", 1).replace("grpc+tcp://", "http://", 1),
        "duration": args.duration,
        "warmup_rounds": args.load_warmup,
        "mix": [[kind, sql] for kind, sql in MIX],
        "clients": [{"county": c["county"], "token": c["token"],
                     "expected": {k: [list(row) for row in rows] for k, rows in c["expected"].items()}}
                    for c in clients],
    }
    proc = subprocess.Popen([str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    proc.stdin.write(json.dumps(plan))
    proc.stdin.close()
    started = time.perf_counter()
    stderr_lines = []
    # It starts its window 0.2 s after saying every client is ready.
    for line in proc.stderr:
        stderr_lines.append(line)
        if "warmed up" in line:
            break
    else:
        proc.wait()
        raise SystemExit("civlink-load failed before the load window:\n" + "".join(stderr_lines))
    say(f"  {len(clients)} clients (civlink-load, one thread) connected, verified and warmed up "
        f"in {time.perf_counter() - started:.1f}s")
    time.sleep(0.2)
    machine_a, server_a = cpu_jiffies_machine(), cpu_seconds_of(server_pid)
    time.sleep(args.duration)
    machine_b, server_b = cpu_jiffies_machine(), cpu_seconds_of(server_pid)
    # stdin is closed already: read both pipes to the end rather than communicate().
    rest_reader = threading.Thread(target=lambda: stderr_lines.append(proc.stderr.read()))
    rest_reader.start()
    out = proc.stdout.read()
    proc.wait(timeout=600)
    rest_reader.join()
    rest = ""
    if proc.returncode not in (0,):
        raise SystemExit(f"civlink-load exited with {proc.returncode}:\n{''.join(stderr_lines)}{rest}")
    report = json.loads(out)
    if report.get("setup_error"):
        raise SystemExit(f"load client verification failed: {report['setup_error']}")
    for kind, _ in MIX:
        report["lat"].setdefault(kind, [])
    busy = machine_b[0] - machine_a[0]
    total = machine_b[1] - machine_a[1]
    return {
        "outs": [report],
        "procs": 1,
        "client": "civlink-load (Rust, arrow-flight FlightSqlServiceClient, one tokio thread)",
        "server_cpu": server_b - server_a,
        "machine_busy": busy / total if total else float("nan"),
    }


def run_load(args, uri, clients, server_pid):
    """Start the client processes, wait until every client verified and warmed up, run the window."""
    ctx = multiprocessing.get_context("spawn")
    procs_n = max(1, min(args.procs, len(clients)))
    groups = [clients[i::procs_n] for i in range(procs_n)]
    ready = ctx.Semaphore(0)
    go = ctx.Event()
    start_at = ctx.Value("d", 0.0)
    results = ctx.Queue()
    setup_failed = ctx.Value("i", 0)
    setup_errors = ctx.Queue()
    procs = [ctx.Process(target=load_process, daemon=True,
                         args=(i, g, uri, args.load_warmup, start_at, args.duration, ready, go, results,
                               setup_failed, setup_errors))
             for i, g in enumerate(groups)]
    try:
        started = time.perf_counter()
        for p in procs:
            p.start()
        for n in range(len(clients)):
            while not ready.acquire(timeout=1):
                if any(p.exitcode not in (None, 0) for p in procs):
                    raise SystemExit("a load client process died while connecting")
                if time.perf_counter() - started > 600:
                    raise SystemExit("load clients did not get ready within 600 s")
        if setup_failed.value:
            texts = []
            for _ in range(min(5, setup_failed.value)):
                try:
                    texts.append(setup_errors.get(timeout=5))
                except Exception:  # noqa: BLE001 - queue.Empty
                    break
            raise SystemExit(f"{setup_failed.value} load client(s) failed to connect or verify:\n  "
                             + "\n  ".join(texts))
        say(f"  {len(clients)} clients in {procs_n} processes connected, verified and warmed up "
            f"in {time.perf_counter() - started:.1f}s")
        # perf_counter is CLOCK_MONOTONIC on Linux: the same clock in every process.
        begin = time.perf_counter() + 0.5
        start_at.value = begin
        machine_a = server_a = None
        go.set()
        while time.perf_counter() < begin:
            time.sleep(0.001)
        machine_a, server_a = cpu_jiffies_machine(), cpu_seconds_of(server_pid)
        time.sleep(max(0.0, begin + args.duration - time.perf_counter()))
        machine_b, server_b = cpu_jiffies_machine(), cpu_seconds_of(server_pid)
        outs = []
        for _ in procs:
            outs.append(results.get(timeout=600))
        for p in procs:
            p.join(timeout=60)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
                p.join(timeout=10)
            if p.is_alive():
                p.kill()
                p.join()
    setup_errors = [o["setup_error"] for o in outs if o["setup_error"]]
    if setup_errors:
        raise SystemExit("load client verification failed:\n  " + "\n  ".join(setup_errors[:5]))
    busy = machine_b[0] - machine_a[0]
    total = machine_b[1] - machine_a[1]
    return {
        "outs": outs,
        "procs": procs_n,
        "client": f"ADBC connections in {procs_n} Python processes",
        "server_cpu": server_b - server_a,
        "machine_busy": busy / total if total else float("nan"),
    }


# --------------------------------------------------------------------------------------------------
# PostgreSQL through pgbench.


def pgbench(args, workdir, clients, threads, log_prefix=None):
    script = workdir / "select1.sql"
    script.write_text("SELECT 1;\n")
    cmd = ["pgbench", "-h", args.pg_host, "-p", str(args.pg_port), "-U", args.pg_user, "-n", "-M", "prepared",
           "-f", str(script), "-c", str(clients), "-j", str(threads), "-T", str(args.pg_duration)]
    if log_prefix:
        cmd += ["--log", f"--log-prefix={log_prefix}"]
    cmd.append(args.pg_db)
    machine_a = cpu_jiffies_machine()
    children_a = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir, timeout=args.pg_duration + 120)
    children_b = resource.getrusage(resource.RUSAGE_CHILDREN)
    machine_b = cpu_jiffies_machine()
    if proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[:500]}")
    out = proc.stdout
    tps = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", out)
    avg = re.search(r"latency average = ([0-9.]+) ms", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    txns = re.search(r"number of transactions actually processed: (\d+)", out)
    result = {
        "cmd": shlex.join(cmd),
        "tps": float(tps.group(1)) if tps else None,
        "avg": float(avg.group(1)) if avg else None,
        "failed": int(failed.group(1)) if failed else 0,
        "transactions": int(txns.group(1)) if txns else None,
        "client_cpu": (children_b.ru_utime - children_a.ru_utime) + (children_b.ru_stime - children_a.ru_stime),
        "machine_busy": (machine_b[0] - machine_a[0]) / max(1, machine_b[1] - machine_a[1]),
        "latencies": None,
    }
    if log_prefix:
        values = []
        for path in glob.glob(f"{workdir / log_prefix}.*"):
            with open(path) as f:
                for line in f:
                    fields = line.split()
                    if len(fields) >= 3:
                        values.append(int(fields[2]) / 1e3)  # the transaction's latency, µs
            os.unlink(path)
        result["latencies"] = Latencies("pgbench", values)
    return result


def postgres_reference(args, workdir):
    if args.no_postgres:
        return None, "skipped (--no-postgres)"
    if not shutil.which("pgbench"):
        return None, "pgbench is not installed"
    try:
        say(f"PostgreSQL reference: pgbench SELECT 1, 1 client, {args.pg_duration}s (per-transaction log) ...")
        single = pgbench(args, workdir, 1, 1, log_prefix="pgbench_c1")
        say(f"  p50 {ms(single['latencies'].p50)} ms, p99 {ms(single['latencies'].p99)} ms, "
            f"avg {single['avg']} ms, {single['tps']:.0f} tps")
        say(f"PostgreSQL reference: pgbench SELECT 1, {args.clients} clients, 2 threads, {args.pg_duration}s ...")
        load = pgbench(args, workdir, args.clients, 2)
        say(f"  {load['tps']:.0f} tps, avg {load['avg']} ms")
        return {"single": single, "load": load}, None
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        return None, str(e)


# --------------------------------------------------------------------------------------------------
# The run.


def git_commit():
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except OSError:
        return "?"


def command_line():
    return os.environ.get("CIVLINK_BENCH_COMMAND") or shlex.join([sys.executable, *sys.argv])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--civlink", default=str(ROOT / "target/release/civlink"), help="the civlink binary")
    parser.add_argument("--iterations", type=int, default=500, help="timed iterations per latency query")
    parser.add_argument("--warmup", type=int, default=50, help="untimed iterations before each latency query")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of the load window")
    parser.add_argument("--clients", type=int, default=45, help="concurrent load clients (one county each, <= 45)")
    parser.add_argument("--procs", type=int, default=min(9, max(2, 2 * (os.cpu_count() or 1))),
                        help="client processes the load clients are spread over (threads inside)")
    parser.add_argument("--load-warmup", type=int, default=2, help="untimed rounds of the mix per load client")
    parser.add_argument("--load-client", choices=["rust", "adbc"], default="rust",
                        help="rust: benches/load's civlink-load (one tokio thread, arrow-flight's client); "
                             "adbc: ADBC connections in Python processes")
    parser.add_argument("--load-bin", help="the civlink-load binary (default: next to --civlink)")
    parser.add_argument("--county", default=DEMO_COUNTY, help="6-digit county of the latency principal")
    parser.add_argument("--people", type=int, help="people in the demo data (default: the demo's small scale)")
    parser.add_argument("--seed", type=int, default=42, help="the demo generator's seed")
    parser.add_argument("--pg-host", default="127.0.0.1")
    parser.add_argument("--pg-port", type=int, default=5432)
    parser.add_argument("--pg-user", default="postgres")
    parser.add_argument("--pg-db", default="test")
    parser.add_argument("--pg-duration", type=int, default=10, help="seconds of each pgbench run")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL reference")
    parser.add_argument("--workdir", help="where data and logs go (default: a fresh temp dir, removed afterwards)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    args = parser.parse_args()

    binary = Path(args.civlink)
    if not os.access(binary, os.X_OK):
        raise SystemExit(f"{binary}: not an executable civlink binary (set CIVLINK or build it)")
    counties = qinghai_counties()
    if not 1 <= args.clients <= len(counties):
        raise SystemExit(f"--clients must be between 1 and {len(counties)} (one Qinghai county each)")
    if args.county not in {c for c, _ in counties}:
        raise SystemExit(f"--county {args.county} is not a Qinghai county")

    # SIGTERM and SIGHUP end the run like Ctrl-C: through the finally blocks below.
    def terminate(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)
    # Ctrl-C raises KeyboardInterrupt even when started with SIGINT ignored (a background job of a script).
    signal.signal(signal.SIGINT, signal.default_int_handler)

    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="civlink-bench-latency-"))
    workdir.mkdir(parents=True, exist_ok=True)
    civlink = Civlink(binary.resolve(), workdir / "civlink-data", workdir / "civlink.log")
    failed = False
    try:
        run(args, workdir, civlink, counties)
    except KeyboardInterrupt:
        failed = True
        say("interrupted: stopping the server and the clients")
        raise SystemExit(130)
    except BaseException:
        failed = True
        raise
    finally:
        civlink.stop()
        if args.workdir or args.keep or failed:
            say(f"work dir kept: {workdir} (server and CLI output in {civlink.log})")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def run(args, workdir, civlink, counties):
    started_at = time.strftime("%Y-%m-%d %H:%M")
    load_before = loadavg()
    # ---- data and principals, all through the CLI
    t = time.perf_counter()
    say(f"civlink demo --no-serve (generate, register standards, ingest, grant) into {civlink.data_dir} ...")
    civlink.demo(workdir / "demo", args.people, args.seed)
    say(f"  done in {time.perf_counter() - t:.1f}s")
    t = time.perf_counter()
    province_token = civlink.token("bench-latency-province", "analyst", PROVINCE)
    chosen = counties[:args.clients]
    if args.county not in {c for c, _ in chosen}:
        chosen = [c for c in counties if c[0] == args.county] + chosen[:-1]
    tokens = {}
    for code in sorted({c for c, _ in chosen} | {args.county}):
        tokens[code] = civlink.token(f"bench-latency-county-{code}", "analyst", f"{code}000000")
    say(f"  {len(tokens) + 1} tokens issued (`civlink token create`) in {time.perf_counter() - t:.1f}s")

    uri, api = civlink.serve()
    server_pid = civlink.server.pid
    say(f"civlink serve: Flight SQL {uri}, REST http://{api[0]}:{api[1]} (pid {server_pid})")

    expected, totals = expected_per_county(uri, province_token)
    county_names = dict(counties)
    mine = expected_for(expected, args.county)
    say("  demo rows: " + ", ".join(f"{t} {n:,}" for t, n in totals.items())
        + f"; county {args.county} sees {mine['count'][0][0]} households")
    if mine["count"][0][0] == 0:
        raise SystemExit(f"county {args.county} has no rows in {SMALL_TABLE}: pick another --county")

    # ---- 1. Flight SQL latency, one ADBC connection
    say(f"Flight SQL latency (ADBC, one connection, county {args.county}): "
        f"{args.warmup} warm-up + {args.iterations} iterations per query ...")
    conn = adbc_connect(uri, tokens[args.county])
    try:
        cur = conn.cursor()
        values, cpu_one = time_queries(cur, SELECT_ONE, equals([(1,)], SELECT_ONE), args.warmup, args.iterations)
        flight_one = Latencies("select1", values)
        flight_one.client_cpu = cpu_one
        say(f"  SELECT 1: p50 {ms(flight_one.p50)} ms, p99 {ms(flight_one.p99)} ms")
        values, cpu_count = time_queries(cur, SCOPED_COUNT, equals(mine["count"], SCOPED_COUNT), args.warmup,
                                         args.iterations)
        flight_count = Latencies("count", values)
        flight_count.client_cpu = cpu_count
        say(f"  scoped count: p50 {ms(flight_count.p50)} ms, p99 {ms(flight_count.p99)} ms")
        cur.close()
    finally:
        conn.close()

    # ---- 2. REST latency, one keep-alive connection
    say(f"REST latency (http.client keep-alive, county {args.county}) ...")
    rest = Rest(api, tokens[args.county])
    try:
        listing = json.loads(rest.get("/api/v1/datasets"))
        datasets = listing.get("datasets", [])
        if not datasets or any((d.get("scope") or {}).get("row_prefix") != args.county for d in datasets
                               if (d.get("scope") or {}).get("division_column")):
            raise SystemExit(f"GET /api/v1/datasets: unexpected listing for county {args.county}: {str(listing)[:500]}")
        rows_path = f"/api/v1/datasets/{REST_ROWS_DATASET[0]}/{REST_ROWS_DATASET[1]}/rows?limit=1"
        page = json.loads(rest.get(rows_path))
        if page.get("returned") != 1 or len(page.get("rows", [])) != 1 \
                or not str(page["rows"][0].get("division_code", "")).startswith(args.county):
            raise SystemExit(f"GET {rows_path}: unexpected page: {str(page)[:500]}")
        rest_list = Latencies("list", rest.time("/api/v1/datasets", args.warmup, args.iterations))
        say(f"  GET /api/v1/datasets ({len(datasets)} datasets): p50 {ms(rest_list.p50)} ms, "
            f"p99 {ms(rest_list.p99)} ms")
        rest_row = Latencies("row", rest.time(rows_path, args.warmup, args.iterations))
        say(f"  GET .../rows?limit=1: p50 {ms(rest_row.p50)} ms, p99 {ms(rest_row.p99)} ms")
        reconnects = len(rest.sockets) - 1
    finally:
        rest.close()

    # ---- 3. load: 45 principals, own connections, mixed queries
    clients = [{"county": code, "token": tokens[code], "expected": expected_for(expected, code)}
               for code, _ in chosen]
    say(f"load: {len(clients)} clients (one county principal each) in {min(args.procs, len(clients))} processes, "
        f"{args.duration:g}s of {', '.join(k for k, _ in MIX)} ...")
    if args.load_client == "rust":
        load = run_load_rust(args, uri, clients, server_pid)
    else:
        load = run_load(args, uri, clients, server_pid)
    outs = load["outs"]
    per_kind = {k: Latencies(k, [v for o in outs for v in o["lat"][k]]) for k, _ in MIX}
    everything = Latencies("all", [v for o in outs for k in o["lat"] for v in o["lat"][k]])
    errors = sum(o["errors"] for o in outs)
    first_error = next((o["first_error"] for o in outs if o["first_error"]), None)
    qps = everything.n / args.duration
    per_client = sorted(n for o in outs for n in o["per_client"].values())
    client_cpu = [o["cpu"] or 0.0 for o in outs]
    say(f"  {qps:,.0f} queries/s, {errors} errors, p50 {ms(everything.p50)} ms, p99 {ms(everything.p99)} ms")
    if first_error:
        say(f"  first error: {first_error}")

    civlink.stop()
    say("civlink serve stopped")

    # ---- 4. PostgreSQL reference
    pg, pg_note = postgres_reference(args, workdir)

    report(args, civlink, started_at, load_before, totals, mine, county_names, flight_one, flight_count,
           rest_list, rest_row, len(datasets), reconnects, load, per_kind, everything, errors, first_error, qps,
           per_client, client_cpu, pg, pg_note)


def report(args, civlink, started_at, load_before, totals, mine, county_names, flight_one, flight_count,
           rest_list, rest_row, n_datasets, reconnects, load, per_kind, everything, errors, first_error, qps,
           per_client, client_cpu, pg, pg_note):
    cores = os.cpu_count() or 1
    commit = git_commit()
    binary = civlink.binary
    profile = "debug" if "/debug/" in binary else "release" if "/release/" in binary else "?"
    pg1 = pg["single"]["latencies"] if pg else None
    pg_load = pg["load"] if pg else None
    ref_lat = f"{ms(pg1.p50)} / {ms(pg1.p99)} ms" if pg1 else "n/a"
    ref_tps = f"{pg_load['tps']:,.0f} tps ({args.clients} clients)" if pg_load else "n/a"

    def lat_row(label, lat, target, target_ok):
        ratio_text = f"{ratio(lat.p50, pg1.p50)} / {ratio(lat.p99, pg1.p99)}" if pg1 else "n/a"
        verdict = "met" if target_ok(lat) else "**not met**"
        return (f"| {label} | {ms(lat.p50)} / {ms(lat.p99)} ms | {target} | {verdict} | {ref_lat} | "
                f"{ratio_text} |")

    county_name = county_names.get(args.county, "")
    load_ok = qps >= 1000 and errors == 0
    rows = [
        lat_row(f"Flight SQL `SELECT 1` (ADBC, one connection, {flight_one.n} iterations)", flight_one,
                "p50 ≤ 5 ms, p99 ≤ 15 ms", lambda l: l.p50 <= 5 and l.p99 <= 15),
        lat_row(f"Flight SQL scoped `SELECT count(*) FROM {SMALL_TABLE}` (county {args.county}, "
                f"{mine['count'][0][0]} rows)", flight_count, "p50 ≤ 5 ms, p99 ≤ 15 ms",
                lambda l: l.p50 <= 5 and l.p99 <= 15),
        lat_row(f"REST `GET /api/v1/datasets` (keep-alive, {n_datasets} datasets)", rest_list, "p50 ≤ 3 ms",
                lambda l: l.p50 <= 3),
        lat_row("REST `GET /api/v1/datasets/minzheng/dibao_households/rows?limit=1`", rest_row, "p50 ≤ 3 ms",
                lambda l: l.p50 <= 3),
    ]
    load_ratio = ratio(qps, pg_load["tps"]) if pg_load else "n/a"
    rows.append(
        f"| Load: {len(per_client)} county principals, own connections ({load['client']}), mix for {args.duration:g} s "
        f"| {qps:,.0f} q/s, {errors} errors (p50 {ms(everything.p50)} / p99 {ms(everything.p99)} ms) "
        f"| ≥ 1000 q/s, 0 errors | {'met' if load_ok else '**not met**'} | {ref_tps} | {load_ratio} |")

    print(f"\n## Interactive latency (issue 19): commit {commit}, {started_at}, {profile} binary\n")
    built = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.stat(binary).st_mtime))
    print(f"civlink `{binary}` ({civlink.version()}, built {built}); {cores} cores, load average {load_before} before the run, "
          f"{loadavg()} after; client, server and PostgreSQL on the same machine over loopback.\n")
    print("| measurement | civlink p50 / p99 (or q/s) | target | result | reference: PostgreSQL `SELECT 1` "
          "(pgbench, prepared) p50 / p99 | ratio civlink / reference |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(row)
    if pg_note:
        print(f"\nPostgreSQL reference: {pg_note}")

    print("\n### Details\n")
    print(f"- Data: `civlink demo --no-serve` (seed {args.seed}"
          + (f", {args.people} people" if args.people else ", the demo's small scale") + "): "
          + ", ".join(f"`{t}` {n:,} rows" for t, n in totals.items())
          + f". Latency principal: analyst of county {args.county} {county_name} (department minzheng).")
    print(f"- Latency queries: {args.warmup} warm-up then {args.iterations} timed runs each, one after the other; "
          "a Flight SQL run is `cursor.execute` (GetFlightInfo) + `fetchall` (DoGet), a REST run is one "
          "request with the whole body read. Means: "
          f"`SELECT 1` {ms(flight_one.mean)} ms, count {ms(flight_count.mean)} ms, list {ms(rest_list.mean)} ms, "
          f"1-row read {ms(rest_row.mean)} ms; maxima {ms(flight_one.max)}, {ms(flight_count.max)}, "
          f"{ms(rest_list.max)}, {ms(rest_row.max)} ms. REST reconnections: {reconnects}. ADBC client CPU "
          f"(Go driver + Python) per timed query: `SELECT 1` {flight_one.client_cpu * 1e6:,.0f} µs, count "
          f"{flight_count.client_cpu * 1e6:,.0f} µs.")
    print(f"- Load mix (each client cycles through it, every result checked against the province analyst's "
          f"unscoped figure for its county):")
    for kind, sql in MIX:
        lat = per_kind[kind]
        print(f"  - {kind}: `{sql}`: {lat.n:,} queries, p50 {ms(lat.p50)} ms, p99 {ms(lat.p99)} ms")
    if per_client:
        print(f"- Queries per client in the window: min {per_client[0]:,}, median "
              f"{per_client[len(per_client) // 2]:,}, max {per_client[-1]:,}.")
    if first_error:
        print(f"- First error: `{first_error}`")
    window = args.duration
    busiest = max(client_cpu) / window if client_cpu else float("nan")
    client_total = sum(client_cpu) / window
    server_total = load["server_cpu"] / window
    print(f"- CPU during the load window ({cores} cores): server {server_total:.2f} cores, client processes "
          f"{client_total:.2f} cores in all ({load['procs']} processes, the busiest {busiest:.2f} of a core), "
          f"machine {load['machine_busy'] * 100:.0f} % busy; per query: server "
          f"{load['server_cpu'] / max(1, everything.n) * 1e6:,.0f} µs, client "
          f"{sum(client_cpu) / max(1, everything.n) * 1e6:,.0f} µs.")
    if busiest >= 0.85:
        verdict = ("a client process was near one core: the client may be the bottleneck "
                   "(raise --procs)")
    elif load["machine_busy"] >= 0.9 and client_total >= server_total:
        verdict = "the machine was saturated and the client took at least the server's share: client-bound"
    elif load["machine_busy"] >= 0.9:
        verdict = (f"the machine was saturated; the client took {client_total / cores * 100:.0f} % of it, "
                   "which the server could not use")
    else:
        verdict = "no client process was saturated and the machine had idle CPU: the client was not the bottleneck"
    print(f"- Client check: {verdict}.")
    if pg:
        s, l = pg["single"], pg["load"]
        print(f"- PostgreSQL: `{s['cmd']}`: {s['transactions']:,} transactions, p50 {ms(s['latencies'].p50)} ms, "
              f"p99 {ms(s['latencies'].p99)} ms (per-transaction log), average {s['avg']} ms; "
              f"`{l['cmd']}`: {l['tps']:,.0f} tps, average {l['avg']} ms, {l['failed']} failed, machine "
              f"{l['machine_busy'] * 100:.0f} % busy, pgbench {l['client_cpu'] / args.pg_duration:.2f} cores.")

    today = time.strftime("%Y-%m-%d")
    print("\nBENCHMARKS.md rows:\n")
    print("| run | measurement | civlink | target | PostgreSQL `SELECT 1` (same run) | ratio |")
    print("|---|---|---|---|---|---|")
    run_label = f"{today}, commit {commit}, {profile} binary, {cores} cores"
    bench_rows = [
        ("Flight SQL `SELECT 1` p50 / p99", flight_one, "≤ 5 / ≤ 15 ms"),
        ("Flight SQL scoped count p50 / p99", flight_count, "≤ 5 / ≤ 15 ms"),
        ("REST list p50 / p99", rest_list, "p50 ≤ 3 ms"),
        ("REST 1-row read p50 / p99", rest_row, "p50 ≤ 3 ms"),
    ]
    for label, lat, target in bench_rows:
        ratio_text = f"{ratio(lat.p50, pg1.p50)} / {ratio(lat.p99, pg1.p99)}" if pg1 else "n/a"
        print(f"| {run_label} | {label} | **{ms(lat.p50)}** / {ms(lat.p99)} ms | {target} | {ref_lat} "
              f"| {ratio_text} |")
    print(f"| {run_label} | load, {len(per_client)} principals, {args.duration:g} s | **{qps:,.0f} q/s**, "
          f"{errors} errors, p50 {ms(everything.p50)} / p99 {ms(everything.p99)} ms | ≥ 1000 q/s, 0 errors "
          f"| {ref_tps} | {load_ratio} |")
    print(f"\ncommit {commit}; command: `{command_line()}`")


if __name__ == "__main__":
    main()
