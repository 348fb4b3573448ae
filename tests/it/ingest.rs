//! `civlink ingest` and `civlink catalog` end to end: a GBK export with Chinese
//! headers, mapping, quarantine, duplicates, idempotent re-runs, atomicity
//! under SIGKILL, the PostgreSQL catalog, and a Delta reader other than ours.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{
    civlink, command, current_version, export_rows, has_row, job, python_delta_rows, text, valid_export, walk,
    write_gbk,
};

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
    let (rows, _) = python_delta_rows(&table, None);
    assert_eq!(rows, valid);
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
    let rows: u64 = 600_000;
    write_gbk(&dir.path().join("big.csv"), &valid_export(rows as usize, 0));
    let big = job(dir.path(), "upsert", "big.csv");
    let mut child = command(&data)
        .args(["ingest", big.to_str().unwrap()])
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
    let (visible, _) = python_delta_rows(&table, Some(current_version(&show)));
    assert_eq!(visible, valid);

    // The re-run completes with the exact expected counts.
    let rerun = civlink(&data, &["ingest", big.to_str().unwrap()]);
    let out = text(&rerun);
    assert_eq!(rerun.status.code(), Some(0), "{out}");
    assert!(has_row(&out, &["read", &rows.to_string()]), "{out}");
    assert!(has_row(&out, &["written", &rows.to_string()]), "{out}");
    assert!(has_row(&out, &["quarantined", "0"]), "{out}");
    let show = text(&civlink(&data, &["catalog", "show", "minzheng.test_people"]));
    let (rows_after, _) = python_delta_rows(&table, Some(current_version(&show)));
    // The upsert keeps the first run's rows whose keys the big export does not have
    // (the valid small-export IDs are not in it) and adds every big-export row.
    assert_eq!(rows_after, rows + valid);
}

fn count_files(dir: &Path) -> usize {
    walk(dir).into_iter().filter(|p| p.extension().is_some_and(|e| e == "parquet")).count()
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
    let run = command(&dir.path().join("data"))
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

#[test]
fn ingest_publishes_a_new_standard_version_through_the_registry_and_never_unmasks() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_gbk(&dir.path().join("people.csv"), &valid_export(20, 0));
    let first = civlink(&data, &["ingest", job(dir.path(), "append", "people.csv").to_str().unwrap()]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));

    // Version 2 shows names in clear: the run stops before reading anything.
    let v1 = std::fs::read_to_string(crate::common::repo().join("tests/data/person_v1.json")).unwrap();
    let v2 = v1
        .replace("\"x-civlink-version\": \"1\"", "\"x-civlink-version\": \"2\"")
        .replace(
            r#""name": {"type": "string", "title": "姓名", "x-civlink-sensitivity": "sensitive", "x-civlink-mask": {"strategy": "name"}}"#,
            r#""name": {"type": "string", "title": "姓名", "x-civlink-sensitivity": "internal"}"#,
        );
    assert_ne!(v1, v2.replace("\"2\"", "\"1\""), "the test changes the name column");
    let standard = dir.path().join("person_v2.json");
    std::fs::write(&standard, &v2).unwrap();
    let job = crate::common::job_with_standard(dir.path(), "append", "people.csv", &standard);
    let run = civlink(&data, &["ingest", job.to_str().unwrap()]);
    let out = text(&run);
    assert_eq!(run.status.code(), Some(2), "{out}");
    assert!(out.contains("weakens the protection of name"), "{out}");
    // Nothing was registered or written by the refused run.
    let history = text(&civlink(&data, &["catalog", "history", "minzheng.test_people"]));
    assert!(history.contains("1 version(s), 1 run(s)"), "{history}");
}

/// An NDJSON export with a JSON number for text, office date spellings and
/// numeric strings: `standards validate` judges them as JSON Schema does;
/// a job that declares the normalisers ingests them, and the quality report
/// (printed by `ingest` and `catalog show`) counts per column what arrived
/// in the standard's form and what was normalised.
#[test]
fn declared_normalisers_are_applied_counted_and_shown() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rows = [
        r#"{"id_number": "11010519491231002X", "name": "张三", "code": 11, "age": 30, "birth_date": "1949-12-31", "amount": 10.5}"#,
        r#"{"id_number": "630102198001010019", "name": "王五", "code": "03", "age": "44", "birth_date": "19800101", "amount": "1,234.5"}"#,
        r#"{"id_number": "11010519491231002X", "name": "张三", "code": "05", "age": 30.0, "birth_date": "1949年12月31日", "amount": null}"#,
        r#"{"id_number": "630102198001010019", "name": "王五", "code": "07", "age": true, "birth_date": "明天", "amount": 1}"#,
    ];
    let export = dir.path().join("people.ndjson");
    std::fs::write(&export, rows.join("\n") + "\n").unwrap();
    let standard = crate::common::repo().join("tests/data/person_v1.json");

    // As delivered: only what JSON Schema admits passes (a JSON number for
    // `code`, "44" for an integer, 19800101 as a date and null all fail).
    let validate = civlink(
        &data,
        &["standards", "validate", standard.to_str().unwrap(), export.to_str().unwrap(), "--format", "json"],
    );
    assert_eq!(validate.status.code(), Some(1), "{}", text(&validate));
    let report: serde_json::Value = serde_json::from_slice(&validate.stdout).unwrap();
    assert_eq!((report["valid"].as_u64(), report["invalid"].as_u64()), (Some(0), Some(4)), "{report}");
    let keywords = |row: usize| -> Vec<String> {
        let mut found: Vec<String> = report["invalid_rows"][row]["violations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| format!("{} {}", v["column"].as_str().unwrap(), v["keyword"].as_str().unwrap()))
            .collect();
        found.sort();
        found
    };
    assert_eq!(keywords(0), ["code type"]);
    assert_eq!(keywords(1), ["age type", "amount type", "birth_date format"]);
    assert_eq!(keywords(2), ["amount type", "birth_date format", "id_number x-civlink-primary-key"]);
    let message = report["invalid_rows"][0]["violations"][0]["message"].as_str().unwrap();
    assert!(message.contains("delivered a JSON number"), "{message}");

    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        format!(
            r#"
name = "test-people-json"
dataset = "minzheng.test_people"
standard = "{standard}"
mode = "append"

[dataset_info]
title = "测试人员"
owner = "测试处"
sharing = "conditional"
update_cycle = "daily"

[source]
location = "people.ndjson"

[mapping]
json_null = "absent"

[[mapping.columns]]
name = "code"
cast = "string"

[[mapping.columns]]
name = "age"
cast = "integer"

[[mapping.columns]]
name = "birth_date"
cast = "date"

[[mapping.columns]]
name = "amount"
cast = "number"
"#,
            standard = standard.display()
        ),
    )
    .unwrap();
    let run = civlink(&data, &["ingest", job.to_str().unwrap()]);
    let out = text(&run);
    assert_eq!(run.status.code(), Some(0), "{out}");
    // Row 3 repeats row 1's key; row 4 has a boolean age and an unreadable date.
    assert!(out.contains("conservation: 4 = 2 + 1 + 1 ✓"), "{out}");
    let show = text(&civlink(&data, &["catalog", "show", "minzheng.test_people"]));
    assert!(show.contains("normalised by the job's mapping"), "{show}");
    // code: 1 retyped, "03", "05", "07" as delivered.
    assert!(has_row(&show, &["code", "3", "/", "1"]), "{show}");
    // birth_date: 1949-12-31 as delivered; 19800101 and 1949年12月31日 normalised; 明天 kept as delivered (and refused).
    assert!(has_row(&show, &["birth_date", "2", "/", "2"]), "{show}");
    // amount: 10.5 and 1 as delivered, "1,234.5" normalised, and the null declared absent.
    assert!(has_row(&show, &["amount", "2", "/", "2"]), "{show}");
}
