//! A PostgreSQL database of a test's own, created and dropped by the test.
//!
//! PostgreSQL is found at `CIVLINK_TEST_POSTGRES_URL`, by default
//! `postgres://postgres@127.0.0.1:5432/test` (`scripts/test` starts it).
//! When it is not reachable the test FAILS: a skipped backend would pass
//! without proving anything.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
use sqlx::{Connection, Executor};

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Where the test server is.
pub fn postgres_url() -> String {
    std::env::var("CIVLINK_TEST_POSTGRES_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_POSTGRES_URL.into())
}

/// A database of its own; [`PgDatabase::drop`] removes it.
#[derive(Debug)]
pub struct PgDatabase {
    admin_url: String,
    name: String,
    /// Its URL.
    pub url: String,
}

impl PgDatabase {
    /// A fresh, empty database.
    pub async fn create() -> PgDatabase {
        let admin_url = postgres_url();
        let name = format!("civlink_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!("PostgreSQL must be reachable at {admin_url} (set CIVLINK_TEST_POSTGRES_URL): {e}")
        });
        // Concurrent CREATE DATABASE can briefly collide on the template; retry a little.
        let mut attempt = 0;
        loop {
            match admin.execute(format!("CREATE DATABASE {name}").as_str()).await {
                Ok(_) => break,
                Err(e) if attempt < 5 => {
                    attempt += 1;
                    eprintln!("CREATE DATABASE {name} failed ({e}); retrying");
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
                Err(e) => panic!("cannot create the test database {name}: {e}"),
            }
        }
        admin.close().await.expect("close the admin connection");
        let mut url = url::Url::parse(&admin_url).expect("a PostgreSQL URL");
        url.set_path(&name);
        PgDatabase { admin_url, name, url: url.to_string() }
    }

    /// Remove it, closing whatever is still connected.
    pub async fn drop(self) {
        let mut admin = sqlx::PgConnection::connect(&self.admin_url).await.expect("connect to drop the database");
        admin
            .execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str())
            .await
            .expect("drop the test database");
        admin.close().await.expect("close the admin connection");
    }
}

/// Run `test` with a SQLite metadata URL in a temporary directory, then
/// with a fresh PostgreSQL database (dropped afterwards, even when the test
/// panics).
pub async fn on_both_backends<F, Fut>(test: F)
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("temporary directory");
    // A directory that does not exist yet and no `mode`: the store creates both.
    let sqlite_url = format!("sqlite://{}", dir.path().join("data/meta/catalog.db").display());
    eprintln!("--- backend: sqlite ({sqlite_url})");
    test(sqlite_url).await;

    let database = PgDatabase::create().await;
    eprintln!("--- backend: postgres ({})", database.url);
    let outcome = AssertUnwindSafe(test(database.url.clone())).catch_unwind().await;
    database.drop().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
