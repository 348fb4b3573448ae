"""Household-check (核对) latency benchmark (issue 10).

Against a catalog made by `civlink demo --no-serve` (any scale), starts `civlink serve`, issues a
check officer's token (民政, province, with the check duty), and times `POST /api/v1/checks` for the
generator's applicant households, one request at a time over one keep-alive connection. The
reference, in the same run and on the same connection, is `GET /api/v1/health`: what one HTTP round
trip to this server costs here. Prints a markdown report on stdout; progress on stderr.
"""

import argparse
import http.client
import json
import re
import statistics
import subprocess
import sys
import time


def say(*args):
    print("checks:", *args, file=sys.stderr, flush=True)


def percentile(values, p):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--civlink", required=True)
    parser.add_argument("--data-dir", required=True, help="the demo's catalog (civlink --data-dir)")
    parser.add_argument("--out", required=True, help="the demo's output directory (ground_truth.json)")
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()

    truth = json.load(open(f"{args.out}/ground_truth.json", encoding="utf-8"))
    applicants = truth["applicants"]
    people = truth["people"]
    as_of = truth["as_of"]
    say(f"{len(applicants)} applicant households among {people:,} people")

    created = subprocess.run(
        [args.civlink, "--data-dir", args.data_dir, "token", "create", "--user", "bench-check-officer",
         "--role", "analyst", "--division", "630000000000", "--department", "minzheng", "--checks"],
        capture_output=True, text=True, check=True)
    token = next(line.strip() for line in created.stdout.splitlines()
                 if line.startswith("  ") and len(line.strip()) > 20 and " " not in line.strip())

    server = subprocess.Popen(
        [args.civlink, "--data-dir", args.data_dir, "serve", "--addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        rest = None
        for line in server.stdout:
            found = re.match(r"REST API listening on http://(\S+)", line)
            if found:
                rest = found.group(1)
                break
        host, port = rest.rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=120)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

        def check(applicant):
            body = json.dumps({
                "members": [m["id_number"] for m in applicant["members"]],
                "consent_reference": "SQ-BENCH-0001",
                "purpose": "低保申请审核",
                "household_division": applicant["household_division"],
                "as_of": as_of,
            })
            started = time.perf_counter()
            connection.request("POST", "/api/v1/checks", body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            elapsed = time.perf_counter() - started
            if response.status != 200:
                raise SystemExit(f"check answered {response.status}: {payload[:300]!r}")
            return elapsed

        def health():
            started = time.perf_counter()
            connection.request("GET", "/api/v1/health")
            response = connection.getresponse()
            response.read()
            return time.perf_counter() - started

        first = check(applicants[0])
        for i in range(args.warmup):
            check(applicants[i % len(applicants)])
            health()
        checks, rounds = [], []
        for i in range(args.iterations):
            checks.append(check(applicants[i % len(applicants)]))
            rounds.append(health())
        ms = lambda s: f"{s * 1000:.1f}"
        p50, p90, p99 = (percentile(checks, p) for p in (50, 90, 99))
        r50 = percentile(rounds, 50)
        members = statistics.mean(len(a["members"]) for a in applicants)
        print(f"| {time.strftime('%Y-%m-%d')} | {people:,} people, {len(applicants)} households "
              f"({members:.1f} members each), {args.iterations} checks | first {ms(first)} ms | "
              f"**{ms(p50)}** / {ms(p90)} / {ms(p99)} ms | {ms(r50)} ms | {p50 / r50:.0f}× |")
        say(f"first {ms(first)} ms; p50 {ms(p50)}, p90 {ms(p90)}, p99 {ms(p99)} ms; health p50 {ms(r50)} ms")
    finally:
        server.terminate()
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
