#!/usr/bin/env bash
# Database-source benchmark (issue 11), all in one run on this machine:
#   1. full sync of an N-row PostgreSQL table (default 2,000,000) into a validated dataset
#      (`[source.database]`, overwrite);
#   2. the plain baseline: `psql \copy` of the same table to CSV, then civlink's own CSV ingest of
#      that file into another dataset;
#   3. a steady-state incremental run (cursor `updated_at`, upsert) after 1% of the rows changed,
#      against the full sync's time.
# Peak RSS of each civlink run by /usr/bin/time. The report (markdown) is on stdout.
#
#   benches/pgsync/run.sh [ROWS]
#
# CIVLINK: the civlink binary (default target/release/civlink; `cargo build --release -p civlink`).
# PGURL: the PostgreSQL database (default postgres://postgres@127.0.0.1:5432/test, trust auth).
set -euo pipefail

rows=${1:-2000000}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
civlink=${CIVLINK:-target/release/civlink}
case $civlink in /*) ;; *) civlink=$root/$civlink ;; esac
pg=${PGURL:-postgres://postgres@127.0.0.1:5432/test}
work=$(mktemp -d)
table=civlink_bench_pgsync
trap 'psql "$pg" -q -c "DROP TABLE IF EXISTS $table" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
say() { echo "pgsync: $*" >&2; }

say "creating $table with $rows rows (valid GB 11643 numbers)"
psql "$pg" -q -v ON_ERROR_STOP=1 <<SQL >/dev/null
DROP TABLE IF EXISTS $table;
CREATE FUNCTION pg_temp.gb_check(body text) RETURNS text LANGUAGE sql IMMUTABLE AS \$\$
  SELECT substr('10X98765432',
    (sum(substr(body, i, 1)::int * (ARRAY[7,9,10,5,8,4,2,1,6,3,7,9,10,5,8,4,2])[i]) % 11)::int + 1, 1)
  FROM generate_series(1, 17) AS i
\$\$;
CREATE TABLE $table AS
  SELECT body || pg_temp.gb_check(body) AS id_number, name, code, age, birth_date, amount, updated_at
  FROM (
    SELECT '630102' || to_char(DATE '1950-01-01' + (g % 20000), 'YYYYMMDD') || lpad((g / 20000 % 1000)::text, 3, '0') AS body,
           '张' || (g % 97) AS name, lpad((g % 100)::text, 2, '0') AS code, 20 + g % 60 AS age,
           DATE '1950-01-01' + (g % 20000) AS birth_date, (g % 10000)::numeric(10,2) / 4 AS amount,
           TIMESTAMP '2026-06-01 00:00:00' + make_interval(secs => g) AS updated_at
    FROM generate_series(1, $rows) AS g
  ) AS generated;
ALTER TABLE $table ADD PRIMARY KEY (id_number);
CREATE INDEX ON $table (updated_at);
ANALYZE $table;
SQL

standard=$root/tests/data/person_v1.json
job() { # name dataset mode source-section
  cat >"$work/$1.toml" <<TOML
name = "$1"
dataset = "$2"
standard = "$standard"
mode = "$3"

[dataset_info]
sharing = "conditional"
update_cycle = "daily"

[source]
$4
TOML
}
job db-full renshe.bench_db overwrite "location = \"$pg\"
[source.database]
table = \"$table\""
job csv-baseline renshe.bench_csv overwrite "location = \"$work/export.csv\""
job db-incremental renshe.bench_incr upsert "location = \"$pg\"
[source.database]
table = \"$table\"
cursor = \"updated_at\""

# Seconds and peak RSS (MB) of a command.
timed() {
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >"$work/out" 2>&1 || { cat "$work/out" >&2; exit 1; }
  read -r seconds kb <"$work/time"
  echo "$seconds $((kb / 1024))"
}

data=$work/data
say "1. full sync through [source.database]"
read -r db_s db_mb < <(timed "$civlink" --data-dir "$data" ingest "$work/db-full.toml")
db_read=$(awk '$1 == "read" {print $2; exit}' "$work/out"); db_written=$(awk '$1 == "written" {print $2; exit}' "$work/out")
say "   ${db_s}s, ${db_mb} MB, read $db_read, written $db_written"
say "2. baseline: psql \\copy to CSV, then civlink's CSV ingest"
copy_start=$(date +%s.%N)
psql "$pg" -q -c "\\copy $table TO '$work/export.csv' WITH (FORMAT csv, HEADER)"
copy_s=$(printf "%.2f" "$(echo "$(date +%s.%N) - $copy_start" | bc)")
read -r csv_s csv_mb < <(timed "$civlink" --data-dir "$data" ingest "$work/csv-baseline.toml")
csv_read=$(awk '$1 == "read" {print $2; exit}' "$work/out"); csv_written=$(awk '$1 == "written" {print $2; exit}' "$work/out")
baseline_s=$(printf "%.2f" "$(echo "$copy_s + $csv_s" | bc)")
say "   copy ${copy_s}s + ingest ${csv_s}s, ${csv_mb} MB"
say "3. incremental: a first full read, then 1% of the rows change"
timed "$civlink" --data-dir "$data" ingest "$work/db-incremental.toml" >/dev/null
psql "$pg" -q -c "UPDATE $table SET amount = amount + 1, updated_at = TIMESTAMP '2027-01-01' + make_interval(secs => (random() * 1000)::int) WHERE random() < 0.01"
read -r incr_s incr_mb < <(timed "$civlink" --data-dir "$data" ingest "$work/db-incremental.toml")
incr_read=$(awk '$1 == "read" {print $2; exit}' "$work/out")
say "   ${incr_s}s for ${incr_read} rows, ${incr_mb} MB"

rate() { echo "scale=0; $rows / $1" | bc; }
ratio() { printf "%.2f" "$(echo "scale=4; $1 / $2" | bc)"; }
cat <<REPORT
| run ($rows rows, $(date -u +%Y-%m-%d), $(nproc) cores) | rows read / written | seconds | rows/s | peak RSS |
|---|---|---|---|---|
| civlink full sync, \`[source.database]\` | $db_read / $db_written | $db_s | $(rate "$db_s") | ${db_mb} MB |
| baseline: \`psql \\copy\` to CSV | | $copy_s | | |
| baseline: civlink CSV ingest of that file | $csv_read / $csv_written | $csv_s | | ${csv_mb} MB |
| baseline total | | $baseline_s | $(rate "$baseline_s") | |
| incremental run after 1% changed | $incr_read read | $incr_s | | ${incr_mb} MB |

Full sync against the baseline: **$(ratio "$baseline_s" "$db_s")×** (≥ 1.0 means the direct sync is at least as fast).
Incremental run against the full sync: **$(printf "%.1f" "$(echo "scale=4; 100 * $incr_s / $db_s" | bc)")%** of its time (target ≤ 5%).
Command: \`CIVLINK=${CIVLINK:-target/release/civlink} benches/pgsync/run.sh $rows\`
REPORT
