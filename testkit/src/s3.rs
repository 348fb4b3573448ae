//! A real S3-protocol server for the object-storage tests: `s3s-fs`
//! serving a temporary directory (each top-level directory a bucket) on a
//! free loopback port, killed on drop (also when an assertion fails).
//! `scripts/test` installs the binary; missing, it is a failure with the
//! install command, never a skip.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The bucket the server starts with.
pub const BUCKET: &str = "civlink";
/// Its access key.
pub const ACCESS_KEY: &str = "civlink-test";
/// Its secret key.
pub const SECRET_KEY: &str = "civlink-test-secret";
/// The region clients name.
pub const REGION: &str = "us-east-1";

/// A running `s3s-fs`.
#[derive(Debug)]
pub struct S3Server {
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
    /// Start one, with [`BUCKET`] created, and wait until it listens.
    pub fn start() -> S3Server {
        let binary = binary();
        let root = tempfile::tempdir().expect("temporary directory");
        std::fs::create_dir(root.path().join(BUCKET)).expect("bucket directory");
        // Bind port 0 to learn a free port, then hand it to the server (the listener is dropped first).
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let child = Command::new(&binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--access-key", ACCESS_KEY])
            .args(["--secret-key", SECRET_KEY])
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut server = S3Server { child, root, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("s3s-fs exited before listening: {status}");
            }
            assert!(Instant::now() < deadline, "s3s-fs did not listen on port {port} within 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The directory it serves (buckets are its subdirectories).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The `CIVLINK_*` variables that put civlink's tables in this server's bucket.
    pub fn civlink_env(&self) -> Vec<(String, String)> {
        [
            ("CIVLINK_STORAGE_URL", format!("s3://{BUCKET}/tables")),
            ("CIVLINK_S3_ENDPOINT", self.endpoint()),
            ("CIVLINK_S3_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
            ("CIVLINK_S3_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
            ("CIVLINK_S3_ALLOW_HTTP", "true".to_owned()),
            ("CIVLINK_S3_REGION", REGION.to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// delta-rs storage options for this server, as JSON.
    pub fn delta_rs_options(&self) -> String {
        serde_json::json!({
            "AWS_ENDPOINT_URL": self.endpoint(),
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "AWS_ALLOW_HTTP": "true",
            "AWS_S3_ALLOW_UNSAFE_RENAME": "true",
        })
        .to_string()
    }
}

/// The `s3s-fs` binary: on PATH, in `$CARGO_HOME/bin` or `~/.cargo/bin`.
fn binary() -> PathBuf {
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
            "the S3 tests need the `s3s-fs` server binary on PATH or in ~/.cargo/bin: run scripts/test, or\n    \
             cargo install s3s-fs --version 0.14.1 --features binary --locked\n\
             (s3s-fs 0.14.1 is the newest release that builds with rustc 1.95)"
        )
    })
}
