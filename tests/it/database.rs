//! An incremental PostgreSQL source through the whole pipeline (`civlink
//! ingest`): the first run reads everything, later runs only rows at or
//! past the committed cursor, rows inserted at the boundary value are
//! neither lost nor doubled, a late-committing row within the lookback is
//! picked up, a bad row is quarantined like a file's, a dropped source
//! column fails the next run before a row is read, and the password the job
//! names never shows in any output or in the catalog.

use std::path::Path;

use sqlx::{Connection, Executor};

use crate::common::{civlink_env, repo, text};

const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";
const SECRET: &str = "s3cr3t-never-shown-9f41";

fn job(dir: &Path, table: &str) -> std::path::PathBuf {
    let job = format!(
        r#"
name = "db-people"
dataset = "renshe.db_people"
standard = "{standard}"
mode = "upsert"

[dataset_info]
title = "数据库人员"
owner = "测试处"
sharing = "conditional"
update_cycle = "daily"

[source]
location = "{POSTGRES}"

[source.database]
table = "{table}"
password_env = "CIVLINK_TEST_DB_PASSWORD"
cursor = "updated_at"
lookback = 300
"#,
        standard = repo().join("tests/data/person_v1.json").display()
    );
    let path = dir.join("db-people.toml");
    std::fs::write(&path, job).unwrap();
    path
}

/// (read, written, quarantined) of an ingest's summary.
fn counts(summary: &str) -> (u64, u64, u64) {
    let figure = |label: &str| {
        summary
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {label} in {summary}"))
    };
    (figure("read"), figure("written"), figure("quarantined"))
}

/// The dataset's rows now, and its table as `catalog read --unmasked` prints it.
fn rows(data_dir: &Path, env: &[(String, String)]) -> (u64, String) {
    let read =
        text(&civlink_env(data_dir, &["catalog", "read", "renshe.db_people", "--unmasked", "--limit", "50"], env));
    let count = read
        .lines()
        .find_map(|l| l.strip_prefix("renshe.db_people: "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no row count in {read}"));
    (count, read)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_database_source_reads_each_row_once_across_the_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let table = format!("civlink_people_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(POSTGRES).await.unwrap();
    conn.execute(
        format!(
            "CREATE TABLE {table} (id_number text PRIMARY KEY, name text, code text, age int, birth_date date, \
             amount numeric(10,2), updated_at timestamp NOT NULL)"
        )
        .as_str(),
    )
    .await
    .unwrap();
    conn.execute(
        format!(
            "INSERT INTO {table} VALUES \
             ('11010519491231002X', '张三', '01', 76, '1949-12-31', 10.50, '2026-06-01 10:00:00'), \
             ('630102198001010019', '王五', '02', 46, '1980-01-01', 20.00, '2026-06-01 11:00:00'), \
             ('630102199001010013', '赵六', '03', 36, '1990-01-01', NULL, '2026-06-01 11:00:00'), \
             ('630102199001010017', '坏行', 'xx', 36, '1990-01-01', 1.00, '2026-06-01 09:00:00')"
        )
        .as_str(),
    )
    .await
    .unwrap();
    let env = vec![("CIVLINK_TEST_DB_PASSWORD".to_owned(), SECRET.to_owned())];
    let job = job(dir.path(), &table);
    let ingest = || civlink_env(&data_dir, &["ingest", job.to_str().unwrap()], &env);

    let first = ingest();
    let first_text = text(&first);
    assert_eq!(first.status.code(), Some(0), "{first_text}");
    assert_eq!(counts(&first_text), (4, 3, 1), "the bad ID number and code are quarantined: {first_text}");
    assert_eq!(rows(&data_dir, &env).0, 3);

    // Nothing changed: only the rows at the boundary (11:00) and within the lookback are read again.
    let again = ingest();
    let again_text = text(&again);
    assert_eq!(again.status.code(), Some(0), "{again_text}");
    assert_eq!(counts(&again_text).0, 2, "the boundary rows only: {again_text}");
    assert_eq!(rows(&data_dir, &env).0, 3, "read again, not doubled");

    // A row inserted at the boundary value after the last run, a changed row past it, and a
    // transaction that commits late with an earlier value inside the lookback.
    conn.execute(
        format!(
            "INSERT INTO {table} VALUES ('630102200001010019', '孙七', '04', 26, '2000-01-01', 5.00, '2026-06-01 11:00:00'); \
             UPDATE {table} SET name = '张三丰', updated_at = '2026-06-01 11:02:00' WHERE id_number = '11010519491231002X'; \
             INSERT INTO {table} VALUES ('630102200101010016', '周八', '05', 25, '2001-01-01', 6.00, '2026-06-01 10:59:00')"
        )
        .as_str(),
    )
    .await
    .unwrap();
    let third = ingest();
    let third_text = text(&third);
    assert_eq!(third.status.code(), Some(0), "{third_text}");
    let (count, read) = rows(&data_dir, &env);
    assert_eq!(count, 5, "every row once: {third_text}\n{read}");
    assert!(read.contains("张三丰") && read.contains("孙七") && read.contains("周八"), "{read}");

    // The job's history shows where each run's cursor started and ended.
    let jobs_env: Vec<(String, String)> =
        env.iter().cloned().chain([("CIVLINK_JOBS_DIR".to_owned(), dir.path().display().to_string())]).collect();
    let history = text(&civlink_env(&data_dir, &["jobs", "history", "db-people"], &jobs_env));
    assert!(history.contains("start → 2026-06-01T11:00:00.000000"), "{history}");
    assert!(history.contains("2026-06-01T11:00:00.000000 → 2026-06-01T11:02:00.000000"), "{history}");

    // The source drops a column: the next run fails before it reads a row, naming the change.
    conn.execute(format!("ALTER TABLE {table} DROP COLUMN code").as_str()).await.unwrap();
    let drifted = ingest();
    let drifted_text = text(&drifted);
    assert_ne!(drifted.status.code(), Some(0), "{drifted_text}");
    assert!(drifted_text.contains("\"code\" dropped"), "{drifted_text}");
    assert_eq!(rows(&data_dir, &env).0, 5, "the dataset is untouched");

    // Told to read on, the run commits, and the drift is on record in its quality report.
    let job_text = std::fs::read_to_string(&job).unwrap();
    std::fs::write(&job, job_text.replace("lookback = 300\n", "lookback = 300\non_drift = \"continue\"\n")).unwrap();
    let read_on = ingest();
    let read_on_text = text(&read_on);
    assert_eq!(read_on.status.code(), Some(0), "{read_on_text}");
    assert!(read_on_text.contains("read on (on_drift = continue): column \"code\" dropped"), "{read_on_text}");
    let shown = text(&civlink_env(&data_dir, &["catalog", "show", "renshe.db_people"], &env));
    assert!(shown.contains("\"code\" dropped"), "the drift is recorded with the run: {shown}");
    std::fs::write(&job, job_text).unwrap();

    // The job moves to another table: the old table's cursor does not apply there.
    let moved = format!("{table}_moved");
    conn.execute(
        format!(
            "CREATE TABLE {moved} (id_number text PRIMARY KEY, name text, code text, age int, birth_date date, \
             amount numeric(10,2), updated_at timestamp NOT NULL); \
             INSERT INTO {moved} VALUES ('630102198001010019', '王五', '02', 46, '1980-01-01', 20.00, '2026-05-01 08:00:00')"
        )
        .as_str(),
    )
    .await
    .unwrap();
    std::fs::write(
        &job,
        std::fs::read_to_string(&job).unwrap().replace(&format!("\"{table}\""), &format!("\"{moved}\"")),
    )
    .unwrap();
    let fresh = ingest();
    assert_eq!(fresh.status.code(), Some(0), "{}", text(&fresh));
    assert_eq!(counts(&text(&fresh)).0, 1, "read from the start, not from the other table's cursor: {}", text(&fresh));
    conn.execute(format!("DROP TABLE {moved}").as_str()).await.unwrap();

    // The password is never shown, nor stored.
    let history = civlink_env(&data_dir, &["catalog", "history", "renshe.db_people"], &env);
    for output in [&first, &again, &third, &drifted, &history] {
        assert!(!text(output).contains(SECRET), "{}", text(output));
    }
    let mut pending = vec![data_dir.clone()];
    while let Some(at) = pending.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                assert!(!String::from_utf8_lossy(&bytes).contains(SECRET), "{} holds the password", path.display());
            }
        }
    }

    // A job that puts the password in the location is refused, naming where it belongs.
    let bad = dir.path().join("bad.toml");
    let with_password = std::fs::read_to_string(&job).unwrap().replace("postgres@", "postgres:hunter2@");
    std::fs::write(&bad, with_password).unwrap();
    let refused = civlink_env(&data_dir, &["ingest", bad.to_str().unwrap()], &env);
    assert_ne!(refused.status.code(), Some(0));
    assert!(text(&refused).contains("password_env or password_file"), "{}", text(&refused));
    assert!(!text(&refused).contains("hunter2"), "{}", text(&refused));

    conn.execute(format!("DROP TABLE {table}").as_str()).await.unwrap();
    conn.close().await.unwrap();
}

/// A proxy to PostgreSQL that closes both sides of each of its first
/// `cut_connections` connections once it has passed `cut` bytes from the
/// server (a connection dropped mid-read); later connections pass whole.
async fn dropping_proxy(cut: usize, cut_connections: usize) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = tokio::spawn(async move {
        let mut accepted = 0;
        while let Ok((client, _)) = listener.accept().await {
            accepted += 1;
            let cut = if accepted <= cut_connections { cut } else { usize::MAX };
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect("127.0.0.1:5432").await else { return };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let upstream = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                });
                let mut passed = 0;
                let mut buffer = vec![0u8; 8192];
                while passed < cut {
                    let Ok(n) = server_read.read(&mut buffer).await else { break };
                    if n == 0 {
                        break;
                    }
                    let n = n.min(cut - passed);
                    if client_write.write_all(&buffer[..n]).await.is_err() {
                        break;
                    }
                    passed += n;
                }
                upstream.abort();
            });
        }
    });
    (addr, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_mid_read_fails_the_run_and_leaves_the_dataset_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let table = format!("civlink_drop_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(POSTGRES).await.unwrap();
    conn.execute(
        format!(
            "CREATE TABLE {table} AS SELECT '11010519491231002X' || g AS id_number, '张三' AS name, '01' AS code, \
             30 AS age, DATE '1990-01-01' AS birth_date, 1.5::numeric(10,2) AS amount, \
             TIMESTAMP '2026-06-01 10:00:00' AS updated_at FROM generate_series(1, 20000) AS g"
        )
        .as_str(),
    )
    .await
    .unwrap();
    let env = vec![("CIVLINK_TEST_DB_PASSWORD".to_owned(), SECRET.to_owned())];
    // Generated keys are no GB 11643 numbers: a standard without that format takes them.
    let person = std::fs::read_to_string(repo().join("tests/data/person_v1.json")).unwrap();
    let loose = dir.path().join("person_loose.json");
    std::fs::write(&loose, person.replace(r#", "format": "gb11643""#, "")).unwrap();
    let good = job(dir.path(), &table);
    let job_text = std::fs::read_to_string(&good)
        .unwrap()
        .replace(&repo().join("tests/data/person_v1.json").display().to_string(), &loose.display().to_string());
    std::fs::write(&good, job_text).unwrap();
    let first = civlink_env(&data_dir, &["ingest", good.to_str().unwrap()], &env);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let (before, _) = rows(&data_dir, &env);

    // Every connection drops mid-read: read again twice (read_retries default), then the run fails.
    let (proxy, serving) = dropping_proxy(200_000, usize::MAX).await;
    let cut = dir.path().join("cut.toml");
    let text_of_job = std::fs::read_to_string(&good).unwrap();
    std::fs::write(&cut, text_of_job.replace("127.0.0.1:5432", &proxy.to_string())).unwrap();
    let failed = civlink_env(&data_dir, &["ingest", cut.to_str().unwrap()], &env);
    let failed_text = text(&failed);
    assert_ne!(failed.status.code(), Some(0), "{failed_text}");
    assert!(failed_text.contains("the connection was lost"), "the cause is named: {failed_text}");
    assert_eq!(failed_text.matches("reading again from the start").count(), 2, "{failed_text}");
    assert!(!failed_text.contains(SECRET), "{failed_text}");
    assert_eq!(rows(&data_dir, &env).0, before, "the dataset is untouched");
    let history = text(&civlink_env(&data_dir, &["catalog", "history", "renshe.db_people"], &env));
    assert!(history.contains("failed"), "the run is recorded as failed: {history}");
    serving.abort();

    // Only the first connection drops: the run reads again from the start and commits every row once.
    let (proxy, serving) = dropping_proxy(200_000, 1).await;
    std::fs::write(&cut, text_of_job.replace("127.0.0.1:5432", &proxy.to_string())).unwrap();
    let retried = civlink_env(&data_dir, &["ingest", cut.to_str().unwrap()], &env);
    let retried_text = text(&retried);
    assert_eq!(retried.status.code(), Some(0), "{retried_text}");
    assert_eq!(retried_text.matches("reading again from the start").count(), 1, "{retried_text}");
    assert_eq!(counts(&retried_text).0, 20_000, "the dropped read's rows are not counted: {retried_text}");
    assert_eq!(rows(&data_dir, &env).0, before, "every row once");
    serving.abort();

    conn.execute(format!("DROP TABLE {table}").as_str()).await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_delivery_that_shrinks_past_the_gate_is_held_and_the_dataset_kept() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let table = format!("civlink_shrink_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(POSTGRES).await.unwrap();
    conn.execute(format!("CREATE TABLE {table} (id_number text PRIMARY KEY, name text)").as_str()).await.unwrap();
    let export = crate::common::valid_export(20, 0);
    for line in export.lines().skip(1) {
        let mut fields = line.split(',');
        let (id, name) = (fields.next().unwrap(), fields.next().unwrap());
        sqlx::query(&format!("INSERT INTO {table} VALUES ($1, $2)"))
            .bind(id)
            .bind(name)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    // A full refresh: overwrite, no cursor.
    let job = job(dir.path(), &table);
    let text_of_job = std::fs::read_to_string(&job)
        .unwrap()
        .replace("mode = \"upsert\"", "mode = \"overwrite\"")
        .replace("cursor = \"updated_at\"\nlookback = 300\n", "");
    std::fs::write(&job, text_of_job).unwrap();
    let env = vec![("CIVLINK_TEST_DB_PASSWORD".to_owned(), SECRET.to_owned())];
    let ingest = || civlink_env(&data_dir, &["ingest", job.to_str().unwrap()], &env);
    let first = ingest();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert_eq!(rows(&data_dir, &env).0, 20);

    // The source lost most of its rows (a truncated export table): the shrink gate holds the run.
    conn.execute(
        format!(
            "DELETE FROM {table} WHERE id_number NOT IN (SELECT id_number FROM {table} ORDER BY id_number LIMIT 2)"
        )
        .as_str(),
    )
    .await
    .unwrap();
    let held = ingest();
    let printed = text(&held);
    assert_eq!(held.status.code(), Some(3), "held: {printed}");
    assert!(printed.contains("held"), "{printed}");
    assert_eq!(rows(&data_dir, &env).0, 20, "a held database delivery replaced the data");
    conn.execute(format!("DROP TABLE {table}").as_str()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_deleted_at_the_source_are_marked_by_comparing_primary_keys() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let table = format!("civlink_deleted_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(POSTGRES).await.unwrap();
    conn.execute(format!("CREATE TABLE {table} (id_number text PRIMARY KEY, name text)").as_str()).await.unwrap();
    let export = crate::common::valid_export(10, 0);
    let ids: Vec<String> = export.lines().skip(1).map(|l| l.split(',').next().unwrap().to_owned()).collect();
    for id in &ids {
        sqlx::query(&format!("INSERT INTO {table} VALUES ($1, '张三')")).bind(id).execute(&mut conn).await.unwrap();
    }
    // The standard with a soft-delete column.
    let person = std::fs::read_to_string(repo().join("tests/data/person_v1.json")).unwrap();
    let standard = dir.path().join("person_deleted.json");
    std::fs::write(
        &standard,
        person
            .replace(r#""properties": {"#, r#""properties": {"deleted": {"type": "boolean", "title": "源端已删除"},"#),
    )
    .unwrap();
    let job = job(dir.path(), &table);
    let job_text = std::fs::read_to_string(&job)
        .unwrap()
        .replace(&repo().join("tests/data/person_v1.json").display().to_string(), &standard.display().to_string())
        .replace("cursor = \"updated_at\"\nlookback = 300\n", "")
        + "\n[source.database.deletions]\ncolumn = \"deleted\"\n";
    std::fs::write(&job, &job_text).unwrap();
    let env = vec![("CIVLINK_TEST_DB_PASSWORD".to_owned(), SECRET.to_owned())];
    let ingest = || civlink_env(&data_dir, &["ingest", job.to_str().unwrap()], &env);
    let marked_in = |printed: &str| -> u64 {
        printed
            .lines()
            .find_map(|l| l.trim().strip_prefix("deletions at the source: "))
            .and_then(|rest| rest.split(", ").nth(1))
            .and_then(|n| n.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no deletion line in {printed}"))
    };
    let first = text(&ingest());
    assert_eq!(marked_in(&first), 0, "{first}");
    assert!(first.contains("10 key(s) compared"), "{first}");

    // Two rows deleted at the source: marked, never removed.
    conn.execute(format!("DELETE FROM {table} WHERE id_number IN ('{}', '{}')", ids[0], ids[1]).as_str())
        .await
        .unwrap();
    let second = text(&ingest());
    assert_eq!(marked_in(&second), 2, "{second}");
    let (count, read) = rows(&data_dir, &env);
    assert_eq!(count, 10, "marked, not removed: {read}");
    assert_eq!(read.matches("true").count(), 2, "the two deleted rows are marked: {read}");
    // Marked once: the next comparison marks nothing more.
    let third = text(&ingest());
    assert_eq!(marked_in(&third), 0, "{third}");

    // The source lost most of its rows: more than half would be marked, so the run fails and marks nothing.
    conn.execute(format!("DELETE FROM {table} WHERE id_number NOT IN ('{}', '{}')", ids[8], ids[9]).as_str())
        .await
        .unwrap();
    let refused = ingest();
    assert_ne!(refused.status.code(), Some(0), "{}", text(&refused));
    assert!(text(&refused).contains("max_share_percent"), "{}", text(&refused));
    assert_eq!(rows(&data_dir, &env).1.matches("true").count(), 2, "nothing more was marked");

    // Marking in place needs upsert.
    std::fs::write(&job, job_text.replace("mode = \"upsert\"", "mode = \"overwrite\"")).unwrap();
    let bad = ingest();
    assert_ne!(bad.status.code(), Some(0));
    assert!(text(&bad).contains("the job's mode must be upsert"), "{}", text(&bad));
    conn.execute(format!("DROP TABLE {table}").as_str()).await.unwrap();
}
