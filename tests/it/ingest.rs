//! `civlink ingest` and `civlink catalog` end to end: a GBK export with Chinese
//! headers, mapping, quarantine, duplicates, idempotent re-runs, atomicity
//! under SIGKILL, the PostgreSQL catalog, and a Delta reader other than ours.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn civlink(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_civlink"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("CIVLINK_CATALOG_URL")
        .env_remove("CIVLINK_STORAGE_URL")
        .output()
        .expect("run civlink")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// Lines as whitespace-separated words, to check aligned tables without caring about padding.
fn has_row(text: &str, words: &[&str]) -> bool {
    text.lines().any(|l| l.split_whitespace().take(words.len()).eq(words.iter().copied()))
}

const HEADER: &str = "身份证号,姓名,编码,年龄,出生日期,金额";

/// A department export: Chinese headers, GBK, with planted problems.
/// Returns (file text, valid rows, invalid rows, duplicate rows).
fn export_rows() -> (String, u64, u64, u64) {
    let rows = [
        "11010519491231002X,张三,01,30,1949-12-31,10.5",  // valid
        "110105194912310021,李四,02,40,1949-12-31,1",     // wrong check character
        "630102198001010019,王五,03,44,1980-01-01,",      // valid (checked in the test)
        "63010219800101003６,赵六,04,44,1980-01-01,2", // full-width digit: normalized by mapping, then wrong check → invalid
        "11010519491231002x,张三重复,05,30,1949-12-31,3", // lower-case x: normalized → duplicate of row 1
        "620102199002300011,孙七,06,30,1990-02-30,4",  // impossible birth date in ID and in column
        "ragged,row",                                  // ragged
        ",无号,07,1,2020-01-01,5",                     // missing required ID
    ];
    let mut text = String::from(HEADER);
    text.push('\n');
    for row in rows {
        text.push_str(row);
        text.push('\n');
    }
    (text, 2, 5, 1)
}

fn write_gbk(path: &Path, text: &str) {
    let (bytes, _, unmappable) = encoding_rs::GBK.encode(text);
    assert!(!unmappable);
    std::fs::write(path, bytes).unwrap();
}

fn job(dir: &Path, mode: &str, location: &str) -> PathBuf {
    let standard = repo().join("tests/data/person_v1.json");
    let job = format!(
        r#"
name = "test-people"
dataset = "minzheng.test_people"
standard = "{standard}"
mode = "{mode}"

[dataset_info]
title = "测试人员"
owner = "测试处"
sharing = "conditional"
update_cycle = "daily"

[source]
location = "{location}"

[source.csv]
encoding = "gbk"

[mapping]
rename = {{ "身份证号" = "id_number", "姓名" = "name", "编码" = "code", "年龄" = "age", "出生日期" = "birth_date", "金额" = "amount" }}

[[mapping.columns]]
name = "id_number"
normalize = "id_number"
"#,
        standard = standard.display()
    );
    let path = dir.join(format!("job_{mode}.toml"));
    std::fs::write(&path, job).unwrap();
    path
}

fn python() -> PathBuf {
    let venv = repo().join(".venv/bin/python");
    assert!(
        venv.exists(),
        "the Python venv is missing: run .ci/run, or `python3 -m venv .venv && .venv/bin/pip install -r tests/python/requirements.txt`"
    );
    venv
}

#[test]
fn ingest_conserves_rows_quarantines_with_reasons_and_reruns_idempotently() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (export, valid, invalid, duplicate) = export_rows();
    // The third row's ID must really be valid for the expected counts.
    assert!(civlink_standards::idcard::CitizenId::parse("630102198001010019").is_ok());
    assert!(civlink_standards::idcard::CitizenId::parse("63010219800101003６").is_err());
    write_gbk(&dir.path().join("people.csv"), &export);
    let job = job(dir.path(), "append", "people.csv");

    let run = civlink(&data, &["ingest", job.to_str().unwrap()]);
    let out = text(&run);
    assert_eq!(run.status.code(), Some(0), "{out}");
    let read = valid + invalid + duplicate;
    assert!(has_row(&out, &["read", &read.to_string()]), "{out}");
    assert!(has_row(&out, &["written", &valid.to_string()]), "{out}");
    assert!(has_row(&out, &["quarantined", &invalid.to_string()]), "{out}");
    assert!(has_row(&out, &["duplicate", &duplicate.to_string()]), "{out}");
    assert!(out.contains(&format!("conservation: {read} = {valid} + {invalid} + {duplicate} ✓")), "{out}");

    // The same sources again: skipped, nothing changes.
    let again = civlink(&data, &["ingest", job.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(text(&again).contains("skipped"), "{}", text(&again));

    let quarantine = civlink(&data, &["catalog", "quarantine", "minzheng.test_people"]);
    let q = text(&quarantine);
    assert_eq!(quarantine.status.code(), Some(0), "{q}");
    assert!(q.contains(&format!("{} rows", invalid + duplicate)), "{q}");
    assert!(q.contains("people.csv:3") && q.contains("id_number format"), "{q}");
    assert!(q.contains("ragged row"), "{q}");
    assert!(q.contains("duplicate") && q.contains("people.csv:6"), "{q}");
    assert!(q.contains("id_number required"), "{q}");

    let show = text(&civlink(&data, &["catalog", "show", "minzheng.test_people"]));
    assert!(show.contains("有条件共享") && show.contains("completeness") && show.contains("lineage"), "{show}");
    assert!(
        show.contains(&format!("read {read} = written {valid} + quarantined {invalid} + duplicate {duplicate}")),
        "{show}"
    );
    let history = text(&civlink(&data, &["catalog", "history", "minzheng.test_people"]));
    assert!(history.contains("committed") && history.contains("skipped"), "{history}");
    let list = text(&civlink(&data, &["catalog", "list"]));
    assert!(list.contains("minzheng.test_people") && list.contains("测试人员"), "{list}");

    // A Delta reader that is not civlink's code path reads the table.
    let table = data.join("tables/minzheng/test_people");
    let check = Command::new(python())
        .arg("-c")
        .arg("import sys, deltalake; t = deltalake.DeltaTable(sys.argv[1]); print(t.to_pyarrow_table().num_rows, t.version())")
        .arg(&table)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", text(&check));
    let printed = String::from_utf8_lossy(&check.stdout);
    assert_eq!(printed.split_whitespace().next(), Some(valid.to_string().as_str()), "{printed}");
}

#[test]
fn a_bad_job_file_lists_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("bad.toml");
    std::fs::write(
        &job,
        r#"
name = "bad"
dataset = "police.people"
standard = "gongan.population"
mode = "sideways"
[source]
location = "x.csv"
"#,
    )
    .unwrap();
    let run = civlink(&dir.path().join("data"), &["ingest", job.to_str().unwrap()]);
    let out = text(&run);
    assert_eq!(run.status.code(), Some(2), "{out}");
    assert!(out.contains("dataset") && out.contains("mode"), "{out}");
}

/// A big export, so that a run can be killed while it is writing.
fn big_export(path: &Path, rows: usize) {
    let mut text = String::with_capacity(rows * 60);
    text.push_str(HEADER);
    text.push('\n');
    for i in 0..rows {
        // Unique, valid IDs: county 110105, a birth date per thousand, order code per row.
        let days = (i / 1000) as i64;
        let birth = chrono::NaiveDate::from_ymd_opt(1950, 1, 1).unwrap() + chrono::Duration::days(days);
        let body = format!("110105{}{:03}", birth.format("%Y%m%d"), i % 1000);
        let check = civlink_standards::idcard::check_character(&body).unwrap();
        text.push_str(&format!(
            "{body}{check},张{},{:02},{},{},{}.5\n",
            i % 97,
            i % 100,
            30,
            birth.format("%Y-%m-%d"),
            i % 1000
        ));
    }
    write_gbk(path, &text);
}

#[test]
fn a_run_killed_mid_write_leaves_nothing_visible_and_the_rerun_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Version 1: the small export.
    let (export, valid, _, _) = export_rows();
    write_gbk(&dir.path().join("people.csv"), &export);
    let small = job(dir.path(), "append", "people.csv");
    assert_eq!(civlink(&data, &["ingest", small.to_str().unwrap()]).status.code(), Some(0));

    // Version 2: a big upsert, killed while it runs.
    let rows = 600_000;
    big_export(&dir.path().join("big.csv"), rows);
    let big = job(dir.path(), "upsert", "big.csv");
    let mut child = Command::new(env!("CARGO_BIN_EXE_civlink"))
        .arg("--data-dir")
        .arg(&data)
        .args(["ingest", big.to_str().unwrap()])
        .env_remove("CIVLINK_CATALOG_URL")
        .env_remove("CIVLINK_STORAGE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the run has started writing files, then kill it without warning.
    let table = data.join("tables/minzheng/test_people");
    let started = Instant::now();
    let files_before = count_files(&table);
    while count_files(&table) == files_before && started.elapsed() < Duration::from_secs(60) {
        assert!(child.try_wait().unwrap().is_none(), "the run finished before it could be killed: make it bigger");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(child.try_wait().unwrap().is_none(), "the run finished before it could be killed");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // Nothing of the killed run is visible: the catalog still shows the first run's version and counts.
    let show = text(&civlink(&data, &["catalog", "show", "minzheng.test_people"]));
    assert!(show.contains(&format!("written {valid} +")), "{show}");
    let reader = Command::new(python())
        .arg("-c")
        .arg("import sys, deltalake; t = deltalake.DeltaTable(sys.argv[1], version=int(sys.argv[2])); print(t.to_pyarrow_table().num_rows)")
        .arg(&table)
        .arg(current_version(&show).to_string())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&reader.stdout).trim(), valid.to_string(), "{}", text(&reader));

    // The re-run completes with the exact expected counts.
    let rerun = civlink(&data, &["ingest", big.to_str().unwrap()]);
    let out = text(&rerun);
    assert_eq!(rerun.status.code(), Some(0), "{out}");
    assert!(has_row(&out, &["read", &rows.to_string()]), "{out}");
    assert!(has_row(&out, &["written", &rows.to_string()]), "{out}");
    assert!(has_row(&out, &["quarantined", "0"]), "{out}");
    let show = text(&civlink(&data, &["catalog", "show", "minzheng.test_people"]));
    let after = Command::new(python())
        .arg("-c")
        .arg("import sys, deltalake; t = deltalake.DeltaTable(sys.argv[1], version=int(sys.argv[2])); print(t.to_pyarrow_table().num_rows)")
        .arg(&table)
        .arg(current_version(&show).to_string())
        .output()
        .unwrap();
    // The upsert keeps the first run's rows whose keys the big export does not have
    // (the valid small-export IDs are not in it) and adds every big-export row.
    assert_eq!(String::from_utf8_lossy(&after.stdout).trim(), (rows as u64 + valid).to_string(), "{}", text(&after));
}

fn count_files(dir: &Path) -> usize {
    walk(dir).into_iter().filter(|p| p.extension().is_some_and(|e| e == "parquet")).count()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// The table version `catalog show` reports.
fn current_version(show: &str) -> i64 {
    show.lines()
        .find(|l| l.trim_start().starts_with("table "))
        .and_then(|l| l.rsplit("(version ").next())
        .and_then(|v| v.trim_end_matches(')').parse().ok())
        .unwrap_or_else(|| panic!("no table version in {show}"))
}

#[test]
fn the_catalog_can_live_in_postgresql() {
    let admin = "postgres://postgres@127.0.0.1:5432/postgres";
    let name = format!("civlink_e2e_{}", std::process::id());
    let psql = |sql: &str| {
        let status = Command::new("psql").args([admin, "-v", "ON_ERROR_STOP=1", "-qc", sql]).status().expect("psql");
        assert!(status.success(), "psql {sql} failed: is PostgreSQL running on 127.0.0.1:5432?");
    };
    psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    psql(&format!("CREATE DATABASE {name}"));
    let dir = tempfile::tempdir().unwrap();
    let (export, valid, _, _) = export_rows();
    write_gbk(&dir.path().join("people.csv"), &export);
    let job = job(dir.path(), "overwrite", "people.csv");
    let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
    let run = Command::new(env!("CARGO_BIN_EXE_civlink"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["ingest", job.to_str().unwrap()])
        .env("CIVLINK_CATALOG_URL", &url)
        .output()
        .unwrap();
    let out = text(&run);
    psql_check(&url, &name, valid);
    psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    assert_eq!(run.status.code(), Some(0), "{out}");
    // No SQLite file was created: the catalog is in PostgreSQL.
    assert!(!dir.path().join("data/catalog.db").exists());
}

fn psql_check(url: &str, name: &str, valid: u64) {
    let output = Command::new("psql")
        .args([url, "-tAc", "SELECT rows_written FROM runs WHERE status = 'committed'"])
        .output()
        .expect("psql");
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), valid.to_string(), "database {name}");
}
