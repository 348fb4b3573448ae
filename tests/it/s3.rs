//! `civlink ingest` and `civlink catalog` against S3-compatible storage: an
//! `s3s-fs` server on loopback holds both the departmental exports (read
//! through an `s3://` glob) and the Delta tables (`CIVLINK_STORAGE_URL=s3://…`),
//! and a Delta reader other than ours reads the table back from S3.

use std::process::Command;

use civlink_testkit::s3::{BUCKET, S3Server};

use crate::catalog::read_counts;
use crate::common::{civlink_env, export_rows, has_row, job, python, text, valid_export, walk, write_gbk};

#[test]
fn ingest_from_s3_exports_into_s3_tables_and_read_back() {
    let server = S3Server::start();
    let env = server.civlink_env();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    // Two GBK exports as objects under exports/2026/ in the bucket.
    let exports = server.root().join(BUCKET).join("exports/2026");
    std::fs::create_dir_all(&exports).unwrap();
    let (export, valid, invalid, duplicate) = export_rows();
    write_gbk(&exports.join("people_1.csv"), &export);
    let more = 4;
    write_gbk(&exports.join("people_2.csv"), &valid_export(more, 5_000));
    let read = valid + invalid + duplicate + more as u64;
    let written = valid + more as u64;

    let job = job(dir.path(), "append", &format!("s3://{BUCKET}/exports/**/*.csv"));
    let run = civlink_env(&data, &["ingest", job.to_str().unwrap()], &env);
    let out = text(&run);
    assert_eq!(run.status.code(), Some(0), "{out}");
    assert!(out.contains("2 source file(s)"), "{out}");
    assert!(has_row(&out, &["read", &read.to_string()]), "{out}");
    assert!(has_row(&out, &["written", &written.to_string()]), "{out}");
    assert!(has_row(&out, &["quarantined", &invalid.to_string()]), "{out}");
    assert!(has_row(&out, &["duplicate", &duplicate.to_string()]), "{out}");
    assert!(out.contains(&format!("conservation: {read} = {written} + {invalid} + {duplicate} ✓")), "{out}");

    // The same objects again (same ETags): skipped.
    let again = civlink_env(&data, &["ingest", job.to_str().unwrap()], &env);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(text(&again).contains("skipped"), "{}", text(&again));

    // The catalog: the table in the bucket, both objects in the lineage.
    let show = civlink_env(&data, &["catalog", "show", "minzheng.test_people"], &env);
    let shown = text(&show);
    assert_eq!(show.status.code(), Some(0), "{shown}");
    assert!(shown.contains(&format!("s3://{BUCKET}/tables/minzheng/test_people (version 0)")), "{shown}");
    for source in ["people_1.csv", "people_2.csv"] {
        let uri = format!("s3://{BUCKET}/exports/2026/{source}");
        assert!(shown.lines().any(|l| l.trim_start().starts_with(&format!("{uri} → "))), "{uri} not in {shown}");
    }
    let quarantine = text(&civlink_env(&data, &["catalog", "quarantine", "minzheng.test_people"], &env));
    assert!(quarantine.contains(&format!("{} rows", invalid + duplicate)), "{quarantine}");
    assert!(quarantine.contains("people_1.csv:3"), "{quarantine}");

    // `catalog read` from S3, masked by the standard (the ID number is fully starred there).
    let read_out = civlink_env(&data, &["catalog", "read", "minzheng.test_people"], &env);
    let rows = text(&read_out);
    assert_eq!(read_out.status.code(), Some(0), "{rows}");
    assert_eq!(read_counts(&rows), (written, 0), "{rows}");
    assert!(rows.contains("******************") && rows.contains("张*"), "{rows}");
    assert!(!rows.contains("11010519491231002X"), "{rows}");
    let clear = text(&civlink_env(&data, &["catalog", "read", "minzheng.test_people", "--unmasked"], &env));
    assert!(clear.contains("11010519491231002X"), "{clear}");

    // The objects really are in the served bucket, and no table went to local storage.
    let table_dir = server.root().join(BUCKET).join("tables/minzheng/test_people");
    assert!(table_dir.join("_delta_log/00000000000000000000.json").is_file());
    assert!(walk(&table_dir).iter().any(|p| p.extension().is_some_and(|e| e == "parquet")));
    assert!(!data.join("tables").exists());

    // delta-rs (Python) reads the table from S3. Its S3 reader threads can abort the
    // interpreter at exit ("terminate called without an active exception",
    // delta-io/delta-rs#2184) after the answer is printed, so the script ends with
    // os._exit once stdout is flushed; any failure before that still exits non-zero.
    let check = Command::new(python())
        .arg("-c")
        .arg(
            "import json, os, sys, deltalake; \
             t = deltalake.DeltaTable(sys.argv[1], storage_options=json.loads(sys.argv[2])); \
             print(t.to_pyarrow_table().num_rows, t.version()); \
             sys.stdout.flush(); os._exit(0)",
        )
        .arg(format!("s3://{BUCKET}/tables/minzheng/test_people"))
        .arg(server.delta_rs_options())
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", text(&check));
    assert_eq!(String::from_utf8_lossy(&check.stdout).trim(), format!("{written} 0"), "{}", text(&check));
}
