//! Helpers shared by the end-to-end tests: running the binary, department
//! exports as GBK files, job files, and the Python venv.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The root package's directory.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `civlink --data-dir DATA_DIR`, with no `CIVLINK_*` setting inherited from
/// the environment that runs the tests (except `CIVLINK_LOG`), so that only
/// what a test passes decides where the catalog and the tables live.
pub fn command(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_civlink"));
    command.arg("--data-dir").arg(data_dir);
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k.starts_with("CIVLINK_") && k != "CIVLINK_LOG") {
            command.env_remove(key);
        }
    }
    command
}

/// Run `civlink --data-dir DATA_DIR ARGS…` on local storage.
pub fn civlink(data_dir: &Path, args: &[&str]) -> Output {
    command(data_dir).args(args).output().expect("run civlink")
}

/// Run `civlink --data-dir DATA_DIR ARGS…` with extra environment variables.
pub fn civlink_env(data_dir: &Path, args: &[&str], env: &[(String, String)]) -> Output {
    command(data_dir).args(args).envs(env.iter().map(|(k, v)| (k, v))).output().expect("run civlink")
}

/// stdout then stderr, for assertions and failure messages.
pub fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// Lines as whitespace-separated words, to check aligned tables without caring about padding.
pub fn has_row(text: &str, words: &[&str]) -> bool {
    text.lines().any(|l| l.split_whitespace().take(words.len()).eq(words.iter().copied()))
}

/// The header of the test exports (Chinese, as departments send them).
pub const HEADER: &str = "身份证号,姓名,编码,年龄,出生日期,金额";

/// A department export: Chinese headers, GBK, with planted problems.
/// Returns (file text, valid rows, invalid rows, duplicate rows).
pub fn export_rows() -> (String, u64, u64, u64) {
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

/// An export of `rows` valid, distinct people (IDs from county 110105, born
/// from `1950-01-01 + first_day`), each row valid against the test standard.
pub fn valid_export(rows: usize, first_day: i64) -> String {
    let mut text = String::with_capacity(rows * 60);
    text.push_str(HEADER);
    text.push('\n');
    for i in 0..rows {
        // Unique, valid IDs: a birth date per thousand rows, an order code per row.
        let days = first_day + (i / 1000) as i64;
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
    text
}

/// Write `text` encoded as GBK.
pub fn write_gbk(path: &Path, text: &str) {
    let (bytes, _, unmappable) = encoding_rs::GBK.encode(text);
    assert!(!unmappable);
    std::fs::write(path, bytes).unwrap();
}

/// A job file `job_<mode>.toml` in `dir` loading `location` into
/// `minzheng.test_people` under the shipped test standard `tests/data/person_v1.json`.
pub fn job(dir: &Path, mode: &str, location: &str) -> PathBuf {
    job_with_standard(dir, mode, location, &repo().join("tests/data/person_v1.json"))
}

/// [`job`] under another standard file.
pub fn job_with_standard(dir: &Path, mode: &str, location: &str, standard: &Path) -> PathBuf {
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

# These exports plant mostly bad rows on purpose; the delivery gates are tested in gates.rs.
[gates]
max_quarantined = "100%"
max_source_reason = "100%"
"#,
        standard = standard.display()
    );
    let path = dir.join(format!("job_{mode}.toml"));
    std::fs::write(&path, job).unwrap();
    path
}

/// The repository's Python venv (deltalake, pyarrow), with an install hint when missing.
pub fn python() -> PathBuf {
    let venv = repo().join(".venv/bin/python");
    assert!(
        venv.exists(),
        "the Python venv is missing: run scripts/test (it creates it), or `python3 -m venv .venv && .venv/bin/pip install -r tests/python/requirements.txt`"
    );
    venv
}

/// Every file below `dir`, recursively.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
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
pub fn current_version(show: &str) -> i64 {
    show.lines()
        .find(|l| l.trim_start().starts_with("table "))
        .and_then(|l| l.rsplit("(version ").next())
        .and_then(|v| v.trim_end_matches(')').parse().ok())
        .unwrap_or_else(|| panic!("no table version in {show}"))
}

/// Read a local Delta table with the Python `deltalake` package (not civlink's code path):
/// its row count and version, at `version` or the latest.
pub fn python_delta_rows(table: &Path, version: Option<i64>) -> (u64, i64) {
    // os._exit after flushing: delta-rs can abort the interpreter at shutdown
    // ("terminate called without an active exception", delta-rs #2184) after a correct answer.
    let script = "import os, sys, deltalake\n\
                  v = None if sys.argv[2] == '-' else int(sys.argv[2])\n\
                  t = deltalake.DeltaTable(sys.argv[1], version=v)\n\
                  print(t.to_pyarrow_table().num_rows, t.version())\n\
                  sys.stdout.flush(); os._exit(0)";
    let output = std::process::Command::new(python())
        .arg("-c")
        .arg(script)
        .arg(table)
        .arg(version.map(|v| v.to_string()).unwrap_or_else(|| "-".into()))
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "python deltalake failed: {stdout}{}", String::from_utf8_lossy(&output.stderr));
    let mut words = stdout.split_whitespace().map(|w| w.parse::<i64>().unwrap_or(-1));
    let rows = words.next().unwrap_or(-1);
    let read_version = words.next().unwrap_or(-1);
    assert!(rows >= 0 && read_version >= 0, "unexpected output: {stdout}");
    (rows as u64, read_version)
}

/// A `civlink serve` process on free loopback ports, stopped by [`Server::stop`].
pub struct Server {
    child: std::process::Child,
    /// The Flight SQL address (`host:port`).
    pub flight: String,
    /// The REST address (`host:port`).
    pub rest: String,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Server {
    /// `civlink --data-dir DATA serve` on port 0 for both transports, with `env`.
    pub fn start(data: &Path, env: &[(String, String)]) -> Server {
        use std::io::{BufRead, BufReader, Read};
        let mut child = command(data)
            .args(["serve", "--addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0"])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start civlink serve");
        // Drain stderr so that logging can never block the server on a full pipe.
        let mut stderr_pipe = child.stderr.take().expect("stderr piped");
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr_pipe.read_to_string(&mut s);
            s
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout piped"));
        let mut address = |prefix: &str| {
            let mut line = String::new();
            let _ = stdout.read_line(&mut line);
            line.trim().strip_prefix(prefix).map(str::to_owned)
        };
        let flight = address("Flight SQL listening on ");
        let rest = address("REST API listening on http://");
        let (Some(flight), Some(rest)) = (flight, rest) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("civlink serve printed no addresses: {}", stderr.join().unwrap_or_default());
        };
        // Keep reading stdout: the server prints again when it stops.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        Server { child, flight, rest, stderr: Some(stderr) }
    }

    /// `GET path` with `Authorization: Bearer token`: the status code and body.
    pub fn get(&self, path: &str, token: &str) -> (u16, String) {
        self.request("GET", path, token)
    }

    /// `METHOD path` without a body, with `Authorization: Bearer token`: the status code and body.
    pub fn request(&self, method: &str, path: &str, token: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&self.rest).expect("connect to the REST port");
        stream.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n",
            self.rest
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read the response");
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP response: {response}"));
        let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
        (status, body)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: the process dies at once, releasing nothing.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr.take();
    }

    /// SIGTERM, then wait for a clean exit; returns what it logged.
    pub fn stop(mut self) -> String {
        let term = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("run kill");
        assert!(term.success());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for civlink serve") {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("civlink serve did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let logged = self.stderr.take().map(|h| h.join().unwrap_or_default()).unwrap_or_default();
        assert!(status.success(), "civlink serve exited with {status}: {logged}");
        logged
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A test that failed before `stop`: do not leave the process behind.
        if self.stderr.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
