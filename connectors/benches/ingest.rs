//! End-to-end ingest benchmark: a realistic person CSV, parse → map → validate
//! → Delta write, against DuckDB converting the same file to Parquet with 2
//! threads, measured in the same run.
//!
//! ```sh
//! cargo bench -p civlink-connectors --bench ingest                       # 2,000,000 rows vs DuckDB
//! cargo bench -p civlink-connectors --bench ingest -- --rows 45000000 --no-duckdb   # the 5 GB memory run
//! ```
//! The CSV is generated once into `target/bench-ingest/` and reused. DuckDB is
//! run from the project's `.venv` (`scripts/test` creates it).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use civlink_catalog::config::CatalogConfig;
use civlink_catalog::store::MetadataStore;
use civlink_catalog::table::TableStore;
use civlink_connectors::job::Job;
use civlink_connectors::pipeline::{self, Catalog, Silent};
use civlink_standards::division::{DivisionTable, Level};
use civlink_standards::idcard;
use civlink_standards::rng::Rng;

const SURNAMES: [&str; 12] = ["王", "李", "张", "刘", "陈", "马", "才让", "卓玛", "韩", "赵", "杨", "索南"];
const GIVEN: [&str; 10] = ["秀英", "建国", "德吉", "明", "海", "玉兰", "措", "强", "芳", "永福"];
const HEADER: &str = "id_number,name,sex,ethnic_group,birth_date,division_code,phone,relationship,household_size,monthly_amount,assistance_category,start_date,status";

/// Write `rows` valid person rows (unique IDs) as UTF-8 CSV.
fn generate(path: &Path, rows: u64) -> std::io::Result<()> {
    let villages: Vec<String> =
        DivisionTable::builtin().at_level(Level::Village).iter().map(|e| e.code.as_str().to_owned()).collect();
    let counties: Vec<String> =
        DivisionTable::builtin().at_level(Level::County).iter().map(|e| e.code.as_str()[..6].to_owned()).collect();
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(out, "{HEADER}")?;
    let mut rng = Rng::new(1);
    let epoch = chrono::NaiveDate::from_ymd_opt(1930, 1, 1).unwrap_or_default();
    for serial in 0..rows {
        // County, birth date and order code all come from the serial: every ID is unique.
        let order = serial % 1000;
        let county = &counties[((serial / 1000) % counties.len() as u64) as usize];
        let day = (serial / 1000 / counties.len() as u64) % 30_000;
        let birth = epoch + chrono::Duration::days(day as i64);
        let body = format!("{county}{}{order:03}", birth.format("%Y%m%d"));
        let check = idcard::check_character(&body).unwrap_or('0');
        let village = &villages[rng.below(villages.len() as u64) as usize];
        writeln!(
            out,
            "{body}{check},{}{},{},{:02},{},{village},1{}{:09},{},{},{}.{:02},{},{},{}",
            SURNAMES[rng.below(SURNAMES.len() as u64) as usize],
            GIVEN[rng.below(GIVEN.len() as u64) as usize],
            if order % 2 == 1 { 1 } else { 2 },
            1 + rng.below(56),
            birth.format("%Y-%m-%d"),
            3 + rng.below(7),
            rng.below(1_000_000_000),
            ["01", "02", "10", "20", "30"][rng.below(5) as usize],
            1 + rng.below(8),
            rng.below(2000),
            rng.below(100),
            ["A", "B", "DB1", "DB2"][rng.below(4) as usize],
            (epoch + chrono::Duration::days(30_000 + rng.below(3_000) as i64)).format("%Y-%m-%d"),
            ["normal", "suspended", "terminated"][rng.below(3) as usize],
        )?;
    }
    out.flush()
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rows: u64 = arg(&args, "--rows").unwrap_or(2_000_000);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = root.join("target/bench-ingest");
    std::fs::create_dir_all(&dir).expect("bench dir");
    let csv = dir.join(format!("persons_{rows}.csv"));
    if !csv.exists() {
        let started = Instant::now();
        let partial = csv.with_extension("partial");
        generate(&partial, rows).expect("generate");
        std::fs::rename(&partial, &csv).expect("rename");
        eprintln!("generated {} in {:.1}s", csv.display(), started.elapsed().as_secs_f64());
    }
    let bytes = std::fs::metadata(&csv).map(|m| m.len()).unwrap_or(0);

    // civlink: a fresh catalog per run.
    let data_dir = dir.join(format!("data-{rows}"));
    let _ = std::fs::remove_dir_all(&data_dir);
    let standard = root.join("standards/tests/data/person.standard.json");
    let job_text = format!(
        r#"
name = "bench-person"
dataset = "minzheng.bench_person"
standard = "{}"
mode = "append"
[dataset_info]
sharing = "conditional"
update_cycle = "daily"
[source]
location = "{}"
"#,
        standard.display(),
        csv.display()
    );
    let job = Job::from_str(&job_text, &dir).expect("job");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (secs, counts) = runtime.block_on(async {
        let config = CatalogConfig::local(&data_dir).expect("config");
        let store = MetadataStore::connect(&config.metadata_url).await.expect("store");
        let tables = TableStore::new(&config).expect("tables");
        let catalog = Catalog { store: &store, tables: &tables, s3: None };
        let started = Instant::now();
        let outcome = pipeline::run(&job, &catalog, &Silent).await.expect("ingest");
        (started.elapsed().as_secs_f64(), outcome.run.counts)
    });
    assert_eq!(counts.written, rows, "every generated row is valid: {counts:?}");
    let civlink_rate = rows as f64 / secs;
    println!(
        "ingest/civlink  rows={rows} bytes={bytes} secs={secs:.2} rows_per_sec={civlink_rate:.0} MB_per_sec={:.1}",
        bytes as f64 / secs / 1e6
    );

    if args.iter().any(|a| a == "--no-duckdb") {
        return;
    }
    let python = root.join(".venv/bin/python");
    let script = r#"
import sys, time, duckdb
con = duckdb.connect()
con.execute("SET threads = 2")
started = time.time()
con.execute(f"COPY (SELECT * FROM read_csv('{sys.argv[1]}')) TO '{sys.argv[2]}' (FORMAT parquet)")
print(time.time() - started)
"#;
    let out = Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(&csv)
        .arg(dir.join("duckdb.parquet"))
        .output()
        .expect("run DuckDB from .venv (scripts/test creates it)");
    assert!(out.status.success(), "duckdb failed: {}", String::from_utf8_lossy(&out.stderr));
    let duck_secs: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().expect("duckdb seconds");
    let duck_rate = rows as f64 / duck_secs;
    println!(
        "ingest/duckdb   rows={rows} secs={duck_secs:.2} rows_per_sec={duck_rate:.0} (read_csv → parquet, 2 threads)"
    );
    println!("ingest/ratio    civlink/duckdb = {:.2}x", civlink_rate / duck_rate);
}
