"""Flight SQL throughput benchmark for civlink (issue 4).

Measures, in one run, on one machine, over loopback:

1. **Full scan.** `SELECT * FROM civlink.minzheng.bench_person` (N person rows, 14 columns) as the
   province administrator, streamed from `civlink serve` to a `pyarrow.flight` client; against a
   reference `pyarrow.flight.FlightServerBase` (Arrow's C++ Flight server) serving the same rows from
   memory. Target: civlink >= 0.8x the reference throughput.
2. **Scoping overhead.** A county analyst's `SELECT *` (row scope enforced in civlink's table provider)
   against the administrator's unscoped `SELECT * ... WHERE division_code LIKE '<county>%'` over the
   same rows. Target: scoped time <= 1.05x the unscoped time.

Both sides are read by the same client: `pyarrow.flight.FlightClient` (Arrow C++), batch by batch,
nothing materialised. civlink is spoken to in Flight SQL by hand: the `CommandStatementQuery` is a
two-field protobuf message, encoded here, wrapped in a `google.protobuf.Any` and sent as the
FlightDescriptor's command; `GetFlightInfo` then `DoGet` on its ticket, exactly what a Flight SQL
client does. The reference gets the same two calls (its `GetFlightInfo` hands out a fixed ticket), so
each timed scan is `GetFlightInfo + DoGet + read every batch` on both sides.

See README.md next to this file. Usage (normally through run.sh):

    bench_flight.py --civlink target/release/civlink --rows 5000000 [--reps 5]

Internal mode, started by the benchmark itself in a child process:

    bench_flight.py --reference-server PARQUET --batch-rows 8192
"""

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.flight as flight
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[2]
DIVISIONS_CSV = ROOT / "standards/data/divisions/qinghai.csv"
PERSON_STANDARD = ROOT / "standards/tests/data/person.standard.json"
DEPARTMENT = "minzheng"
TABLE_CLEAR = "bench_person"
TABLE_MASKED = "bench_person_masked"
PROVINCE = "630000000000"
MAX_ROWS = 30_000 * 1000  # birth day x order code: every generated ID number is unique below this


# --------------------------------------------------------------------------------------------------
# Flight SQL by hand: CommandStatementQuery { string query = 1; optional bytes transaction_id = 2; }
# packed into google.protobuf.Any { string type_url = 1; bytes value = 2; }.

STATEMENT_QUERY_TYPE = b"type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery"


def _varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _length_delimited(field, payload):
    return _varint((field << 3) | 2) + _varint(len(payload)) + payload


def statement_descriptor(sql):
    """The FlightDescriptor a Flight SQL client sends for `sql`."""
    command = _length_delimited(1, sql.encode("utf-8"))
    any_message = _length_delimited(1, STATEMENT_QUERY_TYPE) + _length_delimited(2, command)
    return flight.FlightDescriptor.for_command(any_message)


# --------------------------------------------------------------------------------------------------
# Data: realistic person rows over the real Qinghai villages, generated with Arrow compute kernels.

SURNAMES = ["王", "李", "张", "刘", "陈", "马", "韩", "赵", "杨", "祁", "鲁", "冶", "才让", "卓玛", "索南", "多杰",
            "扎西", "拉毛", "周", "孙", "胡", "朱", "郭", "何", "罗", "谢", "徐", "星", "晁", "铁"]
GIVEN = ["秀英", "建国", "德吉", "明", "海", "玉兰", "措", "强", "芳", "永福", "卓玛", "才让", "文华", "桂兰", "志强",
         "尕藏", "英", "国庆", "学军", "拉姆", "丽", "平", "忠", "成林", "红梅", "东", "春花", "宝", "龙", "燕"]
# GB 3304 codes, weighted roughly like Qinghai's population (汉, 藏, 回, 土, 撒拉, 蒙古).
ETHNIC = ["01"] * 10 + ["04"] * 5 + ["03"] * 3 + ["30", "35", "02"]
RELATIONSHIP = ["02", "10", "20", "30", "01"]
ASSISTANCE = ["A", "B", "DB1", "DB2"]
STATUS = ["normal"] * 8 + ["suspended", "terminated"]
ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
ID_CHECK = list("10X98765432")
DAYS_1930 = -14610  # 1930-01-01 as days since 1970-01-01
DAYS_2010 = 14610  # 2010-01-01


def _mod(values, m):
    return pc.subtract(values, pc.multiply(pc.divide(values, m), m))


def _pick(choices, rng):
    """`choices[floor(rng * len)]` for every row."""
    idx = pc.cast(pc.floor(pc.multiply(rng, len(choices))), pa.int32())
    return pc.take(pa.array(choices, pa.string()), idx)


def _uniform_int(rng, low, high):
    """Integers in [low, high) from uniform doubles."""
    return pc.add(pc.cast(pc.floor(pc.multiply(rng, high - low)), pa.int64()), low)


def _digits_weighted(values, width, weights):
    """sum(digit_i * weight_i) over the `width` decimal digits of each value, most significant first."""
    total = None
    for i, weight in enumerate(weights):
        digit = _mod(pc.divide(values, 10 ** (width - 1 - i)), 10)
        term = pc.multiply(digit, weight)
        total = term if total is None else pc.add(total, term)
    return total


def villages():
    table = pacsv.read_csv(
        DIVISIONS_CSV,
        convert_options=pacsv.ConvertOptions(column_types={"code": pa.string(), "parent_code": pa.string()}),
    )
    return table.filter(pc.equal(table["level"], "village"))["code"].combine_chunks()


def generate(rows, seed=20261128):
    """N valid person rows (unique ID numbers consistent with birth date, sex and county)."""
    if not 0 < rows <= MAX_ROWS:
        raise SystemExit(f"--rows must be between 1 and {MAX_ROWS}")
    rng = iter(range(seed, seed + 100))

    def uniform():
        return pc.random(rows, initializer=next(rng))

    serial = pa.array(range(rows), pa.int64())
    village_codes = villages()
    division = pc.take(village_codes, pc.cast(pc.floor(pc.multiply(uniform(), len(village_codes))), pa.int32()))
    county = pc.utf8_slice_codeunits(division, 0, 6)
    # (birth day, order) is a bijection of the serial: ID numbers are unique whatever the county.
    day = _mod(pc.multiply(serial, 7919), 30_000)
    order = pc.divide(serial, 30_000)
    birth = pc.cast(pc.cast(pc.add(day, DAYS_1930), pa.int32()), pa.date32())
    ymd = pc.add(pc.add(pc.multiply(pc.year(birth), 10_000), pc.multiply(pc.month(birth), 100)), pc.day(birth))
    weighted = pc.add(
        pc.add(
            _digits_weighted(pc.cast(county, pa.int64()), 6, ID_WEIGHTS[:6]),
            _digits_weighted(ymd, 8, ID_WEIGHTS[6:14]),
        ),
        _digits_weighted(order, 3, ID_WEIGHTS[14:]),
    )
    check = pc.take(pa.array(ID_CHECK), _mod(weighted, 11))
    id_number = pc.binary_join_element_wise(
        county, pc.cast(ymd, pa.string()), pc.utf8_lpad(pc.cast(order, pa.string()), 3, "0"), check, ""
    )
    sex = pc.if_else(pc.equal(_mod(order, 2), 1), "1", "2")
    name = pc.binary_join_element_wise(_pick(SURNAMES, uniform()), _pick(GIVEN, uniform()), "")
    phone = pc.binary_join_element_wise(
        "1",
        _pick(list("3456789"), uniform()),
        pc.utf8_lpad(pc.cast(_uniform_int(uniform(), 0, 10**9), pa.string()), 9, "0"),
        "",
    )
    account = pc.binary_join_element_wise(
        "6228", pc.utf8_lpad(pc.cast(_uniform_int(uniform(), 0, 10**15), pa.string()), 15, "0"), ""
    )
    bank_account = pc.if_else(pc.less(uniform(), 0.3), pa.scalar(None, pa.string()), account)
    start = pc.cast(pc.cast(_uniform_int(uniform(), DAYS_2010, DAYS_2010 + 5_800), pa.int32()), pa.date32())
    amount = pc.divide(pc.cast(_uniform_int(uniform(), 0, 200_000), pa.float64()), 100.0)
    return pa.table(
        {
            "id_number": id_number,
            "name": name,
            "sex": sex,
            "ethnic_group": _pick(ETHNIC, uniform()),
            "birth_date": birth,
            "division_code": division,
            "phone": phone,
            "relationship": _pick(RELATIONSHIP, uniform()),
            "household_size": _uniform_int(uniform(), 1, 9),
            "monthly_amount": amount,
            "assistance_category": _pick(ASSISTANCE, uniform()),
            "start_date": start,
            "status": _pick(STATUS, uniform()),
            "bank_account": bank_account,
        }
    )


def clear_standard():
    """person.standard.json without masks or sensitivity: every principal reads every column in clear."""
    doc = json.loads(PERSON_STANDARD.read_text(encoding="utf-8"))
    doc["x-civlink-id"] = "bench.person_clear"
    doc["title"] = "人员基本信息(基准测试, 无脱敏)"
    doc["description"] = "person.standard.json with no masks: the Flight benchmark's full scan measures streaming."
    for prop in doc["properties"].values():
        for key in ("x-civlink-mask", "x-civlink-sensitivity", "x-civlink-pii"):
            prop.pop(key, None)
    return doc


# --------------------------------------------------------------------------------------------------
# The civlink side.


class Civlink:
    """The civlink binary on one data directory."""

    def __init__(self, binary, data_dir, log):
        self.binary = str(binary)
        self.data_dir = str(data_dir)
        self.log = log
        self.server = None

    def run(self, *args):
        cmd = [self.binary, "--data-dir", self.data_dir, *args]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def ingest(self, workdir, table, standard_path, parquet):
        job = workdir / f"{table}.job.toml"
        job.write_text(
            f'name = "bench-flight-{table}"\n'
            f'dataset = "{DEPARTMENT}.{table}"\n'
            f"standard = {json.dumps(str(standard_path))}\n"
            'mode = "overwrite"\n'
            "[dataset_info]\n"
            'sharing = "conditional"\n'
            'update_cycle = "daily"\n'
            "[source]\n"
            f"location = {json.dumps(str(parquet))}\n"
            'format = "parquet"\n',
            encoding="utf-8",
        )
        return self.run("ingest", str(job))

    def token(self, user, role, division):
        out = self.run("token", "create", "--user", user, "--role", role, "--division", division,
                       "--department", DEPARTMENT)
        found = re.search(r"clk_[0-9a-f]{16}_[0-9a-f]{64}", out)
        if not found:
            raise SystemExit(f"no token in `civlink token create` output:\n{out}")
        return found.group(0)

    def serve(self):
        log = open(self.log, "ab")
        self.server = subprocess.Popen(
            [self.binary, "--data-dir", self.data_dir, "serve", "--addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=log, text=True,
        )
        line = self.server.stdout.readline()
        found = re.search(r"Flight SQL listening on (\S+)", line)
        if not found:
            self.stop()
            raise SystemExit(f"civlink serve did not start: {line!r} (log: {self.log})")
        return f"grpc://{found.group(1)}"

    def stop(self):
        if self.server and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()


# --------------------------------------------------------------------------------------------------
# The reference: Arrow's C++ Flight server (through pyarrow) serving the table from memory.


class ReferenceServer(flight.FlightServerBase):
    TICKET = b"bench_person"

    def __init__(self, table, batch_rows):
        super().__init__("grpc://127.0.0.1:0")
        # Re-chunked to civlink's batch size: the same rows and bytes in the same number of messages.
        self.batches = table.combine_chunks().to_batches(max_chunksize=batch_rows)
        self.schema = table.schema

    def get_flight_info(self, context, descriptor):
        endpoint = flight.FlightEndpoint(self.TICKET, [])
        rows = sum(b.num_rows for b in self.batches)
        return flight.FlightInfo(self.schema, descriptor, [endpoint], rows, -1)

    def do_get(self, context, ticket):
        if ticket.ticket != self.TICKET:
            raise flight.FlightServerError(f"unknown ticket {ticket.ticket!r}")
        return flight.RecordBatchStream(pa.RecordBatchReader.from_batches(self.schema, self.batches))


def reference_main(parquet, batch_rows):
    table = pq.read_table(parquet)
    server = ReferenceServer(table, batch_rows)
    print(f"reference listening on grpc://127.0.0.1:{server.port}", flush=True)
    server.serve()  # until the benchmark terminates this process


def start_reference(parquet, batch_rows, log):
    proc = subprocess.Popen(
        [sys.executable, __file__, "--reference-server", str(parquet), "--batch-rows", str(batch_rows)],
        stdout=subprocess.PIPE, stderr=open(log, "ab"), text=True,
    )
    line = proc.stdout.readline()
    found = re.search(r"reference listening on (\S+)", line)
    if not found:
        proc.kill()
        raise SystemExit(f"reference server did not start: {line!r} (log: {log})")
    return proc, found.group(1)


# --------------------------------------------------------------------------------------------------
# Measurement.


class Scan:
    """One measured query: where it goes, as whom, and what it must return."""

    def __init__(self, label, client, descriptor, options, expect_rows):
        self.label = label
        self.client = client
        self.descriptor = descriptor
        self.options = options
        self.expect_rows = expect_rows
        self.seconds = []
        self.rows = self.bytes = self.batches = self.max_batch_rows = 0
        self.schema = None

    def once(self):
        """GetFlightInfo + DoGet of every endpoint, reading every batch; returns seconds."""
        rows = nbytes = batches = max_batch_rows = 0
        started = time.perf_counter()
        info = self.client.get_flight_info(self.descriptor, self.options)
        for endpoint in info.endpoints:
            reader = self.client.do_get(endpoint.ticket, self.options)
            while True:
                try:
                    chunk = reader.read_chunk()
                except StopIteration:
                    break
                rows += chunk.data.num_rows
                max_batch_rows = max(max_batch_rows, chunk.data.num_rows)
                nbytes += chunk.data.nbytes
                batches += 1
            self.schema = reader.schema
        elapsed = time.perf_counter() - started
        if self.expect_rows is not None and rows != self.expect_rows:
            raise SystemExit(f"{self.label}: {rows} rows, expected {self.expect_rows}")
        self.rows, self.bytes, self.batches, self.max_batch_rows = rows, nbytes, batches, max_batch_rows
        return elapsed

    def best(self):
        return min(self.seconds)

    def median(self):
        return statistics.median(self.seconds)


def bearer(token):
    return flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {token}".encode())])


def measure(scans, reps):
    """One warm-up pass, then `reps` passes; within a pass every scan runs once (interleaved)."""
    for scan in scans:
        scan.once()
    for rep in range(reps):
        for scan in scans:
            scan.seconds.append(scan.once())
        print(f"  pass {rep + 1}/{reps}: " + ", ".join(f"{s.label} {s.seconds[-1]:.3f}s" for s in scans),
              file=sys.stderr)


def same_types(a, b):
    return [f.type for f in a] == [f.type for f in b] and a.names == b.names


def git_commit():
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except OSError:
        return "?"


def fmt_int(n):
    return f"{n:,.0f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--civlink", default=str(ROOT / "target/release/civlink"), help="the civlink binary")
    parser.add_argument("--rows", type=int, default=5_000_000, help="rows in the person table")
    parser.add_argument("--reps", type=int, default=5, help="timed passes (after one warm-up pass)")
    parser.add_argument("--county", help="6-digit county for the scoping measurement (default: the largest)")
    parser.add_argument("--batch-rows", type=int,
                        help="rows per batch the reference sends (default: civlink's largest batch in the warm-up)")
    parser.add_argument("--no-masked", action="store_true", help="skip the extra masked-dataset scan")
    parser.add_argument("--workdir", help="where data and logs go (default: a fresh temp dir, removed afterwards)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    parser.add_argument("--reference-server", metavar="PARQUET", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.reference_server:
        reference_main(args.reference_server, args.batch_rows)
        return

    binary = Path(args.civlink)
    if not os.access(binary, os.X_OK):
        raise SystemExit(f"{binary}: not an executable civlink binary (set CIVLINK or build it)")
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="civlink-bench-flight-"))
    workdir.mkdir(parents=True, exist_ok=True)
    civlink = Civlink(binary, workdir / "civlink-data", workdir / "civlink-serve.log")
    children = []
    try:
        run(args, workdir, civlink, children)
    finally:
        civlink.stop()
        for child in children:
            if child.poll() is None:
                child.terminate()
                child.wait()
        if not args.workdir and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"work dir kept: {workdir}", file=sys.stderr)


def run(args, workdir, civlink, children):
    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731

    started = time.perf_counter()
    table = generate(args.rows)
    parquet = workdir / "persons.parquet"
    pq.write_table(table, parquet, row_group_size=1 << 20)
    say(f"generated {args.rows:,} rows ({table.nbytes / 1e6:.0f} MB in Arrow, "
        f"{parquet.stat().st_size / 1e6:.0f} MB Parquet) in {time.perf_counter() - started:.1f}s")

    county_codes = pc.utf8_slice_codeunits(table["division_code"], 0, 6)
    counts = pc.value_counts(county_codes).to_pylist()
    if args.county:
        county = args.county
    else:
        county = max(counts, key=lambda c: (c["counts"], c["values"]))["values"]
    county_rows = next((c["counts"] for c in counts if c["values"] == county), 0)
    if county_rows == 0:
        raise SystemExit(f"county {county} has no rows")
    del table

    clear = workdir / "person_clear.standard.json"
    clear.write_text(json.dumps(clear_standard(), ensure_ascii=False, indent=1), encoding="utf-8")
    datasets = [(TABLE_CLEAR, clear)] + ([] if args.no_masked else [(TABLE_MASKED, PERSON_STANDARD)])
    for name, standard in datasets:
        started = time.perf_counter()
        civlink.ingest(workdir, name, standard, parquet)
        say(f"ingested {DEPARTMENT}.{name} ({standard.name}) in {time.perf_counter() - started:.1f}s")

    admin = civlink.token("bench_admin", "admin", PROVINCE)
    analyst = civlink.token(f"bench_county_{county}", "analyst", f"{county}000000")
    civlink_uri = civlink.serve()
    civ = flight.FlightClient(civlink_uri)
    qualified = f"civlink.{DEPARTMENT}.{TABLE_CLEAR}"
    full = Scan("civlink", civ, statement_descriptor(f"SELECT * FROM {qualified}"), bearer(admin), args.rows)
    # The reference sends batches of civlink's size: the same rows and bytes in as many messages.
    full.once()
    batch_rows = args.batch_rows or full.max_batch_rows
    reference, reference_uri = start_reference(parquet, batch_rows, workdir / "reference.log")
    children.append(reference)
    say(f"civlink at {civlink_uri} ({full.batches} batches of up to {full.max_batch_rows} rows), "
        f"reference at {reference_uri} ({batch_rows}-row batches), county {county} ({county_rows:,} rows)")
    ref = flight.FlightClient(reference_uri)
    refscan = Scan("reference", ref, flight.FlightDescriptor.for_path("bench_person"), None, args.rows)
    unscoped = Scan("admin LIKE", civ,
                    statement_descriptor(f"SELECT * FROM {qualified} WHERE division_code LIKE '{county}%'"),
                    bearer(admin), county_rows)
    scoped = Scan("county", civ, statement_descriptor(f"SELECT * FROM {qualified}"), bearer(analyst), county_rows)
    scans = [full, refscan, unscoped, scoped]
    masked = None
    if not args.no_masked:
        masked = Scan("civlink masked", civ,
                      statement_descriptor(f"SELECT * FROM civlink.{DEPARTMENT}.{TABLE_MASKED}"),
                      bearer(admin), args.rows)
        scans.append(masked)

    say(f"measuring: 1 warm-up pass + {args.reps} passes")
    measure(scans, args.reps)
    if not same_types(full.schema, refscan.schema):
        raise SystemExit(f"schemas differ:\ncivlink:   {full.schema}\nreference: {refscan.schema}")

    print_report(args, full, refscan, unscoped, scoped, masked, county)


def print_report(args, full, refscan, unscoped, scoped, masked, county):
    def rate(scan, seconds):
        return scan.bytes / seconds / 1e6, scan.rows / seconds

    print(f"\n## Flight SQL full scan: {args.rows:,} rows, {args.reps} passes after a warm-up, "
          f"commit {git_commit()}, {time.strftime('%Y-%m-%d')}\n")
    print("| server | rows | bytes | batches | best s | median s | MB/s (best) | rows/s (best) "
          "| MB/s (median) | rows/s (median) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows = [("civlink `serve` (admin, no masks)", full), ("pyarrow.flight reference (C++, in memory)", refscan)]
    if masked:
        rows.append(("civlink `serve` (admin, standard's masks)", masked))
    for label, scan in rows:
        bmb, brows = rate(scan, scan.best())
        mmb, mrows = rate(scan, scan.median())
        print(f"| {label} | {fmt_int(scan.rows)} | {fmt_int(scan.bytes)} | {scan.batches} | {scan.best():.3f} "
              f"| {scan.median():.3f} | {bmb:.1f} | {fmt_int(brows)} | {mmb:.1f} | {fmt_int(mrows)} |")
    # Same rows and the same bytes on both sides, so the MB/s ratio is also the rows/s ratio.
    ratio_best = (full.bytes / full.best()) / (refscan.bytes / refscan.best())
    ratio_median = (full.bytes / full.median()) / (refscan.bytes / refscan.median())
    print(f"\ncivlink / reference throughput (MB/s): **{ratio_best:.2f}x** best, {ratio_median:.2f}x median "
          f"(target >= 0.8x)")
    if masked:
        # Masks change string lengths: compare rows/s.
        print(f"civlink with masks / reference (rows/s): {refscan.best() / masked.best():.2f}x best, "
              f"{refscan.median() / masked.median():.2f}x median (no target)")

    print(f"\n## Scoping overhead: county {county} ({scoped.rows:,} of {args.rows:,} rows)\n")
    print("| scan | rows | bytes | best s | median s |")
    print("|---|---|---|---|---|")
    print(f"| admin `SELECT * ... WHERE division_code LIKE '{county}%'` | {fmt_int(unscoped.rows)} "
          f"| {fmt_int(unscoped.bytes)} | {unscoped.best():.3f} | {unscoped.median():.3f} |")
    print(f"| county analyst `SELECT *` (scoped in the table provider) | {fmt_int(scoped.rows)} "
          f"| {fmt_int(scoped.bytes)} | {scoped.best():.3f} | {scoped.median():.3f} |")
    scope_best = scoped.best() / unscoped.best()
    scope_median = scoped.median() / unscoped.median()
    print(f"\nscoped / unscoped time: **{scope_best:.3f}x** best, {scope_median:.3f}x median (target <= 1.05x)")

    bmb, brows = rate(full, full.best())
    rmb, rrows = rate(refscan, refscan.best())
    print("\nBENCHMARKS.md row (best of passes):\n")
    print("| run | rows | civlink MB/s (rows/s) | reference MB/s (rows/s) | ratio | scoped/unscoped |")
    print("|---|---|---|---|---|---|")
    print(f"| {time.strftime('%Y-%m-%d')}, commit {git_commit()}, best of {args.reps} | {fmt_int(full.rows)} "
          f"| {bmb:.1f} ({fmt_int(brows)}) | {rmb:.1f} ({fmt_int(rrows)}) | **{ratio_best:.2f}x** "
          f"| **{scope_best:.3f}x** |")


if __name__ == "__main__":
    main()
