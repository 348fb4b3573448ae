//! `civlink ingest` and `civlink catalog` against S3-compatible storage: an
//! `s3s-fs` server on loopback holds both the departmental exports (read
//! through an `s3://` glob) and the Delta tables (`CIVLINK_STORAGE_URL=s3://…`),
//! and a Delta reader other than ours reads the table back from S3.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::catalog::read_counts;
use crate::common::{civlink_env, export_rows, has_row, job, python, text, valid_export, walk, write_gbk};

const BUCKET: &str = "civlink";
const ACCESS_KEY: &str = "civlink-e2e";
const SECRET_KEY: &str = "civlink-e2e-secret";

/// A running `s3s-fs` serving a temporary directory (each top-level directory
/// a bucket); killed on drop, also when an assertion fails.
struct S3Server {
    child: Child,
    root: tempfile::TempDir,
    port: u16,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl S3Server {
    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The `CIVLINK_*` variables that put civlink's tables in this server's bucket.
    fn civlink_env(&self) -> Vec<(String, String)> {
        [
            ("CIVLINK_STORAGE_URL", format!("s3://{BUCKET}/tables")),
            ("CIVLINK_S3_ENDPOINT", self.endpoint()),
            ("CIVLINK_S3_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
            ("CIVLINK_S3_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
            ("CIVLINK_S3_ALLOW_HTTP", "true".to_owned()),
            ("CIVLINK_S3_REGION", "us-east-1".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// delta-rs storage options for this server, as JSON.
    fn delta_rs_options(&self) -> String {
        serde_json::json!({
            "AWS_ENDPOINT_URL": self.endpoint(),
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true",
            "AWS_S3_ALLOW_UNSAFE_RENAME": "true",
        })
        .to_string()
    }
}

/// The `s3s-fs` binary: on PATH, in `$CARGO_HOME/bin` or `~/.cargo/bin`.
/// Missing is a failure with the install command, never a skip.
fn s3s_fs_binary() -> PathBuf {
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("s3s-fs")).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        candidates.push(PathBuf::from(home).join("bin/s3s-fs"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(home).join(".cargo/bin/s3s-fs"));
    }
    candidates.into_iter().find(|p| p.is_file()).unwrap_or_else(|| {
        panic!(
            "the S3 end-to-end test needs the `s3s-fs` server binary on PATH or in ~/.cargo/bin; install it with\n    \
             cargo install s3s-fs --version 0.14.1 --features binary --locked\n\
             (s3s-fs 0.14.1 is the newest release that builds with rustc 1.95)"
        )
    })
}

/// Start `s3s-fs` on a free loopback port, with the bucket directory created, and wait until it listens.
fn start_s3() -> S3Server {
    let binary = s3s_fs_binary();
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join(BUCKET)).unwrap();
    // Bind port 0 to learn a free port, then hand it to the server (the listener is dropped first).
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(&binary)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--access-key",
            ACCESS_KEY,
            "--secret-key",
            SECRET_KEY,
        ])
        .arg(root.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
    let mut server = S3Server { child, root, port };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = server.child.try_wait().unwrap() {
            panic!("s3s-fs exited before listening on port {port}: {status}");
        }
        assert!(Instant::now() < deadline, "s3s-fs did not listen on port {port} within 20 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

#[test]
fn ingest_from_s3_exports_into_s3_tables_and_read_back() {
    let server = start_s3();
    let env = server.civlink_env();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    // Two GBK exports as objects under exports/2026/ in the bucket.
    let exports = server.root.path().join(BUCKET).join("exports/2026");
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
    let table_dir = server.root.path().join(BUCKET).join("tables/minzheng/test_people");
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
