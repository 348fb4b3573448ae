//! `civlink catalog read` end to end: time travel by version and by time,
//! refusal of versions the catalog never committed, and masking by the
//! dataset's standard.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::{civlink, export_rows, job_with_standard, python, text, valid_export, write_gbk};

const DATASET: &str = "minzheng.test_people";

/// The test standard with an explicit mask on the ID number (the first six and
/// last four characters kept) and on the name (surname only).
fn masked_standard(dir: &Path) -> PathBuf {
    let standard = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "x-civlink-id": "test.person",
  "x-civlink-version": "1",
  "title": "人员",
  "type": "object",
  "x-civlink-primary-key": ["id_number"],
  "required": ["id_number", "name"],
  "properties": {
    "id_number": {"type": "string", "title": "公民身份号码", "format": "gb11643", "x-civlink-sensitivity": "sensitive",
                  "x-civlink-mask": {"strategy": "keep_ends", "first": 6, "last": 4}},
    "name": {"type": "string", "title": "姓名", "x-civlink-sensitivity": "sensitive", "x-civlink-mask": {"strategy": "name"}},
    "code": {"type": "string", "title": "编码", "pattern": "^[0-9]{2}$"},
    "age": {"type": "integer", "title": "年龄", "minimum": 0, "maximum": 150},
    "birth_date": {"type": "string", "format": "date", "title": "出生日期"},
    "amount": {"type": "number", "title": "金额"}
  }
}"#;
    let path = dir.join("person_masked.json");
    std::fs::write(&path, standard).unwrap();
    path
}

/// The row count and version in `catalog read`'s first line:
/// `minzheng.test_people: 5 rows at version 1 (current version 1)`.
pub(crate) fn read_counts(out: &str) -> (u64, i64) {
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("{DATASET}: ")))
        .unwrap_or_else(|| panic!("no count line in {out}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let rows = words.get(1).and_then(|w| w.parse().ok());
    let version = words.get(5).and_then(|w| w.parse().ok());
    match (rows, version) {
        (Some(rows), Some(version)) => (rows, version),
        _ => panic!("unexpected count line {line:?}"),
    }
}

fn read(data: &Path, extra: &[&str]) -> (u64, i64, String) {
    let mut args = vec!["catalog", "read", DATASET];
    args.extend_from_slice(extra);
    let output = civlink(data, &args);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    let (rows, version) = read_counts(&out);
    (rows, version, out)
}

fn refused(data: &Path, extra: &[&str]) -> String {
    let mut args = vec!["catalog", "read", DATASET];
    args.extend_from_slice(extra);
    let output = civlink(data, &args);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(2), "{out}");
    out
}

fn ingest(data: &Path, job: &Path) {
    let run = civlink(data, &["ingest", job.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
}

#[test]
fn catalog_read_time_travels_refuses_uncommitted_versions_and_masks() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let standard = masked_standard(dir.path());

    // Nothing ingested yet: the dataset is unknown.
    let unknown = civlink(&data, &["catalog", "read", DATASET]);
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown));

    // Version 0: the small export (2 valid rows).
    let (export, valid, _, _) = export_rows();
    write_gbk(&dir.path().join("people_1.csv"), &export);
    ingest(&data, &job_with_standard(dir.path(), "append", "people_1.csv", &standard));

    // A time strictly between the two runs, in both accepted forms. The China-time
    // form has whole seconds, so leave more than a second on each side.
    std::thread::sleep(Duration::from_millis(1200));
    let between = chrono::Utc::now();
    std::thread::sleep(Duration::from_millis(1200));
    let china = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    let between_china = between.with_timezone(&china).format("%Y-%m-%d %H:%M:%S").to_string();
    let between_rfc3339 = between.to_rfc3339();

    // Version 1: three more people, appended.
    let added = 3;
    write_gbk(&dir.path().join("people_2.csv"), &valid_export(added, 10_000));
    ingest(&data, &job_with_standard(dir.path(), "append", "people_2.csv", &standard));
    let after = chrono::Utc::now().to_rfc3339();
    let total = valid + added as u64;

    let (rows, version, out) = read(&data, &[]);
    assert_eq!((rows, version), (total, 1), "{out}");
    assert!(out.contains("(current version 1)"), "{out}");
    let (rows, version, _) = read(&data, &["--version", "0"]);
    assert_eq!((rows, version), (valid, 0));
    let (rows, version, _) = read(&data, &["--version", "1"]);
    assert_eq!((rows, version), (total, 1));
    for at in [&between_china, &between_rfc3339] {
        let (rows, version, out) = read(&data, &["--as-of", at]);
        assert_eq!((rows, version), (valid, 0), "--as-of {at}: {out}");
        assert!(out.contains("as of"), "{out}");
    }
    let (rows, version, _) = read(&data, &["--as-of", &after]);
    assert_eq!((rows, version), (total, 1));
    let before = refused(&data, &["--as-of", "2000-01-01 00:00:00"]);
    assert!(before.contains("no version had been committed at 2000-01-01"), "{before}");
    let bad_time = refused(&data, &["--as-of", "yesterday"]);
    assert!(bad_time.contains("RFC 3339"), "{bad_time}");
    let both = refused(&data, &["--version", "0", "--as-of", &after]);
    assert!(both.contains("cannot be used with"), "{both}");

    // Masked by default: ID numbers keep their ends, names their surname.
    let (_, _, masked) = read(&data, &["--version", "0"]);
    assert!(masked.contains("110105********002X") && masked.contains("630102********0019"), "{masked}");
    assert!(masked.contains("张*") && masked.contains("王*"), "{masked}");
    assert!(!masked.contains("11010519491231002X") && !masked.contains("张三") && !masked.contains("王五"), "{masked}");
    assert!(masked.contains("masked: id_number (keep first 6, last 4), name (surname only)"), "{masked}");
    // … and in clear on request.
    let (_, _, clear) = read(&data, &["--version", "0", "--unmasked"]);
    assert!(clear.contains("11010519491231002X") && clear.contains("张三") && clear.contains("王五"), "{clear}");
    assert!(!clear.contains("masked:"), "{clear}");
    let (_, _, limited) = read(&data, &["--limit", "1"]);
    assert!(limited.contains(&format!("… {} more (--limit)", total - 1)), "{limited}");
    assert_eq!(limited.lines().filter(|l| l.starts_with("| 110105")).count(), 1, "{limited}");

    // A commit the catalog never made (as a crashed run leaves): a foreign writer
    // appends a row straight to the Delta table, making version 2.
    let table = data.join("tables/minzheng/test_people");
    let orphan = Command::new(python())
        .arg("-c")
        .arg(
            "import os, sys, deltalake; t = deltalake.DeltaTable(sys.argv[1]); \
             deltalake.write_deltalake(sys.argv[1], t.to_pyarrow_table().slice(0, 1), mode='append'); \
             print(deltalake.DeltaTable(sys.argv[1]).version()); sys.stdout.flush(); os._exit(0)",
        )
        .arg(&table)
        .output()
        .unwrap();
    assert!(orphan.status.success(), "{}", text(&orphan));
    assert_eq!(String::from_utf8_lossy(&orphan.stdout).trim(), "2", "{}", text(&orphan));
    // The current version is still the catalog's, without the orphan row.
    let (rows, version, _) = read(&data, &[]);
    assert_eq!((rows, version), (total, 1));
    let newer = refused(&data, &["--version", "2"]);
    assert!(newer.contains("version 2 is newer than the catalog's current version 1"), "{newer}");

    // The next run rolls the orphan back (version 3) and commits version 4.
    write_gbk(&dir.path().join("people_3.csv"), &valid_export(1, 20_000));
    ingest(&data, &job_with_standard(dir.path(), "append", "people_3.csv", &standard));
    let (rows, version, _) = read(&data, &[]);
    assert_eq!((rows, version), (total + 1, 4));
    for never in ["2", "3"] {
        let out = refused(&data, &["--version", never]);
        assert!(out.contains("was never committed") && out.contains("committed versions: 0, 1, 4"), "{out}");
    }
    let (rows, _, _) = read(&data, &["--version", "1"]);
    assert_eq!(rows, total);
}
