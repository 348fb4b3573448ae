//! Delta Lake table storage: local file system, and a real S3-protocol server (s3s-fs).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use civlink_catalog::config::{CatalogConfig, S3Config};
use civlink_catalog::model::{DatasetId, WriteMode};
use civlink_catalog::table::{Error, FlushThreshold, TableStore, TimeTravel};

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false), Field::new("name", DataType::Utf8, true)]))
}

fn batch(rows: &[(i64, &str)]) -> RecordBatch {
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let names: Vec<Option<&str>> = rows.iter().map(|r| (!r.1.is_empty()).then_some(r.1)).collect();
    RecordBatch::try_new(schema(), vec![Arc::new(Int64Array::from(ids)), Arc::new(StringArray::from(names))]).unwrap()
}

fn key() -> Vec<String> {
    vec!["id".to_owned()]
}

/// The rows as sorted `(id, name)` pairs ("" for NULL).
fn rows(batches: &[RecordBatch]) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for b in batches {
        let ids = b.column_by_name("id").unwrap().as_any().downcast_ref::<Int64Array>().unwrap();
        let names = b.column_by_name("name").unwrap().as_any().downcast_ref::<StringArray>().unwrap();
        for i in 0..b.num_rows() {
            let name = if names.is_null(i) { String::new() } else { names.value(i).to_owned() };
            out.push((ids.value(i), name));
        }
    }
    out.sort();
    out
}

fn expect(pairs: &[(i64, &str)]) -> Vec<(i64, String)> {
    let mut v: Vec<(i64, String)> = pairs.iter().map(|(i, n)| (*i, (*n).to_owned())).collect();
    v.sort();
    v
}

fn local(dir: &Path) -> TableStore {
    TableStore::new(&CatalogConfig::local(dir).unwrap()).unwrap()
}

fn dataset() -> DatasetId {
    "gongan.population".parse().unwrap()
}

/// One run: begin, write the batches, commit.
async fn run(
    store: &TableStore,
    uri: &str,
    mode: WriteMode,
    expected: Option<i64>,
    run_id: &str,
    batches: &[RecordBatch],
) -> i64 {
    let mut writer = store.begin_write(uri, schema(), mode, &key(), expected).await.unwrap();
    for b in batches {
        writer.write(b).await.unwrap();
    }
    writer.commit(run_id).await.unwrap()
}

async fn read(store: &TableStore, uri: &str, at: TimeTravel) -> Vec<(i64, String)> {
    rows(&store.read(uri, at).await.unwrap())
}

/// Parquet files anywhere under `dir`.
fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(parquet_files(&path));
        } else if path.extension().is_some_and(|e| e == "parquet") && !path.to_string_lossy().contains("_delta_log") {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_overwrite_versions_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let store = local(dir.path());
    let uri = store.table_uri(&dataset());
    assert_eq!(store.head_version(&uri).await.unwrap(), None);
    assert!(matches!(store.read(&uri, TimeTravel::Latest).await, Err(Error::TableNotFound { .. })));

    assert_eq!(run(&store, &uri, WriteMode::Append, None, "r0", &[batch(&[(1, "a"), (2, "b")])]).await, 0);
    assert_eq!(run(&store, &uri, WriteMode::Append, Some(0), "r1", &[batch(&[(3, "")])]).await, 1);
    assert_eq!(run(&store, &uri, WriteMode::Overwrite, Some(1), "r2", &[batch(&[(9, "z")])]).await, 2);

    assert_eq!(store.head_version(&uri).await.unwrap(), Some(2));
    assert_eq!(read(&store, &uri, TimeTravel::Latest).await, expect(&[(9, "z")]));
    assert_eq!(read(&store, &uri, TimeTravel::Version(0)).await, expect(&[(1, "a"), (2, "b")]));
    assert_eq!(read(&store, &uri, TimeTravel::Version(1)).await, expect(&[(1, "a"), (2, "b"), (3, "")]));
    assert_eq!(store.count(&uri, TimeTravel::Version(1)).await.unwrap(), 3);
    assert!(matches!(
        store.read(&uri, TimeTravel::Version(3)).await,
        Err(Error::VersionNotFound { version: 3, latest: 2, .. })
    ));
    assert!(matches!(store.read(&uri, TimeTravel::Version(-1)).await, Err(Error::VersionNotFound { .. })));

    // Plain protocol 1/2 without table features, so any Delta reader can open the table.
    let log = dir.path().join("tables/gongan/population/_delta_log/00000000000000000000.json");
    let protocol = std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?.get("protocol").cloned())
        .unwrap();
    assert_eq!(protocol, serde_json::json!({"minReaderVersion": 1, "minWriterVersion": 2}));

    // Stored nullable, whatever the input said.
    let batches = store.read(&uri, TimeTravel::Latest).await.unwrap();
    assert!(batches[0].schema().fields().iter().all(|f| f.is_nullable()));

    let history = store.history(&uri).await.unwrap();
    let summary: Vec<(i64, &str, Option<&str>)> =
        history.iter().map(|c| (c.version, c.operation.as_str(), c.run_id.as_deref())).collect();
    assert_eq!(
        summary,
        vec![(0, "CREATE TABLE", Some("r0")), (1, "WRITE", Some("r1")), (2, "WRITE", Some("r2"))],
        "{history:?}"
    );
    assert!(history.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));

    // The open table is usable as a DataFusion table provider.
    let table = store.open(&uri, TimeTravel::Version(0)).await.unwrap();
    assert_eq!(table.version(), Some(0));
    let ctx = datafusion::prelude::SessionContext::new();
    table.update_datafusion_session(&ctx.state()).unwrap();
    ctx.register_table("t", table.table_provider().await.unwrap()).unwrap();
    let counted = ctx.sql("SELECT count(*) AS n FROM t WHERE id > 1").await.unwrap().collect().await.unwrap();
    assert_eq!(counted[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_travel_by_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let store = local(dir.path());
    let uri = store.table_uri(&dataset());
    let before = chrono::Utc::now() - chrono::Duration::seconds(5);
    let mut between = Vec::new();
    for (version, id) in [(0, 1), (1, 2), (2, 3)] {
        let expected = (version > 0).then_some(version - 1);
        assert_eq!(run(&store, &uri, WriteMode::Append, expected, "r", &[batch(&[(id, "x")])]).await, version);
        tokio::time::sleep(Duration::from_millis(30)).await;
        between.push(chrono::Utc::now());
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(read(&store, &uri, TimeTravel::Timestamp(between[0])).await, expect(&[(1, "x")]));
    assert_eq!(read(&store, &uri, TimeTravel::Timestamp(between[1])).await, expect(&[(1, "x"), (2, "x")]));
    assert_eq!(store.count(&uri, TimeTravel::Timestamp(between[2])).await.unwrap(), 3);
    assert!(matches!(store.read(&uri, TimeTravel::Timestamp(before)).await, Err(Error::NoVersionAtTimestamp { .. })));
    let history = store.history(&uri).await.unwrap();
    assert!(history[0].timestamp < between[0] && between[0] < history[1].timestamp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upsert_inserts_updates_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let store = local(dir.path());
    let uri = store.table_uri(&dataset());
    assert_eq!(run(&store, &uri, WriteMode::Upsert, None, "r0", &[batch(&[(1, "a"), (2, "b")])]).await, 0);
    let update = [batch(&[(2, "B")]), batch(&[(3, "c")])];
    assert_eq!(run(&store, &uri, WriteMode::Upsert, Some(0), "r1", &update).await, 1);
    let after = expect(&[(1, "a"), (2, "B"), (3, "c")]);
    assert_eq!(read(&store, &uri, TimeTravel::Latest).await, after);
    // The same run again: a new version, the same content.
    assert_eq!(run(&store, &uri, WriteMode::Upsert, Some(1), "r1-again", &update).await, 2);
    assert_eq!(read(&store, &uri, TimeTravel::Latest).await, after);
    assert_eq!(read(&store, &uri, TimeTravel::Version(0)).await, expect(&[(1, "a"), (2, "b")]));
    let history = store.history(&uri).await.unwrap();
    assert_eq!(history.iter().map(|c| c.operation.as_str()).collect::<Vec<_>>(), ["CREATE TABLE", "MERGE", "MERGE"]);
    assert_eq!(history[2].run_id.as_deref(), Some("r1-again"));
    // The staging area is gone.
    let table_dir = dir.path().join("tables/gongan/population");
    assert!(!table_dir.join("_staging").exists());

    // Keys are required, present and non-NULL.
    for bad_key in [vec![], vec!["nope".to_owned()]] {
        let err = store.begin_write(&uri, schema(), WriteMode::Upsert, &bad_key, Some(2)).await.unwrap_err();
        assert!(matches!(err, Error::MissingPrimaryKey { .. }), "{err}");
    }
    let nullable_key =
        Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true), Field::new("name", DataType::Utf8, true)]));
    let null_key = RecordBatch::try_new(
        nullable_key.clone(),
        vec![Arc::new(Int64Array::from(vec![None, Some(5)])), Arc::new(StringArray::from(vec!["x", "y"]))],
    )
    .unwrap();
    let mut writer = store.begin_write(&uri, nullable_key, WriteMode::Upsert, &key(), Some(2)).await.unwrap();
    let err = writer.write(&null_key).await.unwrap_err();
    assert!(matches!(err, Error::NullPrimaryKey { nulls: 1, .. }), "{err}");
    writer.abort().await.unwrap();
    assert_eq!(store.head_version(&uri).await.unwrap(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_row_runs_still_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = local(dir.path());
    let uri = store.table_uri(&dataset());
    assert_eq!(run(&store, &uri, WriteMode::Append, None, "empty-create", &[]).await, 0);
    assert_eq!(store.count(&uri, TimeTravel::Latest).await.unwrap(), 0);
    assert_eq!(run(&store, &uri, WriteMode::Append, Some(0), "empty-append", &[batch(&[])]).await, 1);
    assert_eq!(run(&store, &uri, WriteMode::Upsert, Some(1), "empty-upsert", &[]).await, 2);
    assert_eq!(run(&store, &uri, WriteMode::Append, Some(2), "data", &[batch(&[(1, "a")])]).await, 3);
    assert_eq!(run(&store, &uri, WriteMode::Overwrite, Some(3), "empty-overwrite", &[]).await, 4);
    assert_eq!(store.count(&uri, TimeTravel::Latest).await.unwrap(), 0);
    assert_eq!(store.count(&uri, TimeTravel::Version(3)).await.unwrap(), 1);
    let runs: Vec<Option<String>> = store.history(&uri).await.unwrap().into_iter().map(|c| c.run_id).collect();
    assert_eq!(runs.len(), 5);
    assert_eq!(runs[2].as_deref(), Some("empty-upsert"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphaned_commits_are_rolled_back_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let store = local(dir.path());
    let uri = store.table_uri(&dataset());
    assert_eq!(run(&store, &uri, WriteMode::Append, None, "r0", &[batch(&[(1, "a"), (2, "b")])]).await, 0);
    // A run commits but crashes before telling the catalog, which still says version 0.
    assert_eq!(run(&store, &uri, WriteMode::Append, Some(0), "crashed", &[batch(&[(99, "orphan")])]).await, 1);
    // The next run rolls the orphan back (version 2: RESTORE) and commits on top (version 3).
    assert_eq!(run(&store, &uri, WriteMode::Append, Some(0), "r1", &[batch(&[(3, "c")])]).await, 3);
    assert_eq!(read(&store, &uri, TimeTravel::Latest).await, expect(&[(1, "a"), (2, "b"), (3, "c")]));
    let history = store.history(&uri).await.unwrap();
    assert_eq!(history[2].operation, "RESTORE");
    assert_eq!(history[2].run_id, None);
    // An upsert after another orphan works the same way.
    assert_eq!(run(&store, &uri, WriteMode::Append, Some(3), "crashed-2", &[batch(&[(98, "orphan")])]).await, 4);
    assert_eq!(run(&store, &uri, WriteMode::Upsert, Some(3), "r2", &[batch(&[(1, "A")])]).await, 6);
    assert_eq!(read(&store, &uri, TimeTravel::Latest).await, expect(&[(1, "A"), (2, "b"), (3, "c")]));

    // The catalog cannot be ahead of the log.
    let err = store.begin_write(&uri, schema(), WriteMode::Append, &key(), Some(7)).await.unwrap_err();
    assert!(matches!(err, Error::CatalogAhead { expected: 7, head: Some(6), .. }), "{err}");

    // A table the catalog never recorded (expected None) is emptied first.
    let other = store.table_uri(&"minzheng.dibao".parse().unwrap());
    assert_eq!(run(&store, &other, WriteMode::Append, None, "crashed", &[batch(&[(7, "orphan")])]).await, 0);
    assert_eq!(run(&store, &other, WriteMode::Append, None, "first", &[batch(&[(5, "e")])]).await, 2);
    assert_eq!(read(&store, &other, TimeTravel::Latest).await, expect(&[(5, "e")]));
    // … also when the orphan had another schema.
    let third = store.table_uri(&"renshe.pension".parse().unwrap());
    let other_schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Utf8, true)]));
    let mut writer = store.begin_write(&third, other_schema.clone(), WriteMode::Append, &[], None).await.unwrap();
    writer
        .write(&RecordBatch::try_new(other_schema, vec![Arc::new(StringArray::from(vec!["q"]))]).unwrap())
        .await
        .unwrap();
    assert_eq!(writer.commit("crashed").await.unwrap(), 0);
    assert_eq!(run(&store, &third, WriteMode::Upsert, None, "first", &[batch(&[(6, "f")])]).await, 2);
    assert_eq!(read(&store, &third, TimeTravel::Latest).await, expect(&[(6, "f")]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_leaves_no_visible_change_and_no_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = local(dir.path()).with_flush_threshold(FlushThreshold { bytes: 64 * 1024 * 1024, rows: 2 });
    let uri = store.table_uri(&dataset());
    assert_eq!(run(&store, &uri, WriteMode::Append, None, "r0", &[batch(&[(1, "a")])]).await, 0);
    let table_dir = dir.path().join("tables/gongan/population");
    let committed = parquet_files(&table_dir);

    for mode in [WriteMode::Append, WriteMode::Overwrite, WriteMode::Upsert] {
        let mut writer = store.begin_write(&uri, schema(), mode, &key(), Some(0)).await.unwrap();
        for i in 0..5 {
            writer.write(&batch(&[(10 + i, "x"), (20 + i, "y")])).await.unwrap();
        }
        assert!(writer.files() >= 4, "{mode:?}: flushed {} files", writer.files());
        writer.abort().await.unwrap();
        assert_eq!(store.head_version(&uri).await.unwrap(), Some(0), "{mode:?}");
        assert_eq!(read(&store, &uri, TimeTravel::Latest).await, expect(&[(1, "a")]), "{mode:?}");
        assert_eq!(parquet_files(&table_dir), committed, "{mode:?}");
    }

    // A schema mismatch is refused up front (append keeps the table's columns).
    let wider = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("extra", DataType::Utf8, true),
    ]));
    let err = store.begin_write(&uri, wider.clone(), WriteMode::Append, &key(), Some(0)).await.unwrap_err();
    assert!(matches!(err, Error::Schema { .. }), "{err}");
    // … while an overwrite may change it.
    let mut writer = store.begin_write(&uri, wider.clone(), WriteMode::Overwrite, &key(), Some(0)).await.unwrap();
    let row = RecordBatch::try_new(
        wider,
        vec![
            Arc::new(Int64Array::from(vec![4])),
            Arc::new(StringArray::from(vec!["d"])),
            Arc::new(StringArray::from(vec!["e"])),
        ],
    )
    .unwrap();
    writer.write(&row).await.unwrap();
    assert_eq!(writer.commit("widen").await.unwrap(), 1);
    let batches = store.read(&uri, TimeTravel::Latest).await.unwrap();
    assert_eq!(batches[0].schema().fields().len(), 3);
    assert_eq!(rows(&batches), expect(&[(4, "d")]));
    assert_eq!(rows(&store.read(&uri, TimeTravel::Version(0)).await.unwrap()), expect(&[(1, "a")]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_write_flushes_many_files_and_commits_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = local(dir.path()).with_flush_threshold(FlushThreshold { bytes: 512 * 1024, rows: 50_000 });
    let uri = store.table_uri(&dataset());
    let mut writer = store.begin_write(&uri, schema(), WriteMode::Append, &key(), None).await.unwrap();
    let names: Vec<String> = (0..10_000).map(|i| format!("居民-{i:06}")).collect();
    for chunk in 0..30i64 {
        let ids = Int64Array::from_iter_values((0..10_000).map(|i| chunk * 10_000 + i));
        let names = StringArray::from_iter_values(names.iter());
        let b = RecordBatch::try_new(schema(), vec![Arc::new(ids), Arc::new(names)]).unwrap();
        writer.write(&b).await.unwrap();
    }
    assert_eq!(writer.rows(), 300_000);
    assert!(writer.files() >= 5, "only {} files flushed", writer.files());
    assert_eq!(writer.commit("big").await.unwrap(), 0);
    assert_eq!(store.count(&uri, TimeTravel::Latest).await.unwrap(), 300_000);
    assert_eq!(store.history(&uri).await.unwrap().len(), 1);
    assert!(parquet_files(&dir.path().join("tables/gongan/population")).len() >= 6);
}

// ---------------------------------------------------------------- S3 ----

use civlink_testkit::s3::{ACCESS_KEY, BUCKET, REGION, S3Server, SECRET_KEY};

fn s3_store(server: &S3Server, data_dir: &Path) -> TableStore {
    let config = CatalogConfig {
        data_dir: data_dir.to_path_buf(),
        metadata_url: "sqlite::memory:".into(),
        storage_url: url::Url::parse(&format!("s3://{BUCKET}/tables")).unwrap(),
        s3: Some(S3Config {
            endpoint: Some(server.endpoint()),
            region: REGION.into(),
            access_key_id: ACCESS_KEY.into(),
            secret_access_key: SECRET_KEY.into(),
            allow_http: true,
        }),
    };
    TableStore::new(&config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_append_upsert_time_travel_and_rollback() {
    let server = S3Server::start();
    let data_dir = tempfile::tempdir().unwrap();
    let store = s3_store(&server, data_dir.path());
    let uri = store.table_uri(&dataset());
    assert_eq!(uri, "s3://civlink/tables/gongan/population");
    assert_eq!(store.head_version(&uri).await.unwrap(), None);

    assert_eq!(run(&store, &uri, WriteMode::Append, None, "r0", &[batch(&[(1, "a"), (2, "b")])]).await, 0);
    assert_eq!(run(&store, &uri, WriteMode::Upsert, Some(0), "r1", &[batch(&[(2, "B"), (3, "c")])]).await, 1);
    assert_eq!(read(&store, &uri, TimeTravel::Latest).await, expect(&[(1, "a"), (2, "B"), (3, "c")]));
    assert_eq!(read(&store, &uri, TimeTravel::Version(0)).await, expect(&[(1, "a"), (2, "b")]));
    let history = store.history(&uri).await.unwrap();
    assert_eq!(history.iter().map(|c| c.run_id.as_deref()).collect::<Vec<_>>(), [Some("r0"), Some("r1")]);
    let between = history[0].timestamp + (history[1].timestamp - history[0].timestamp) / 2;
    if history[1].timestamp > history[0].timestamp {
        assert_eq!(read(&store, &uri, TimeTravel::Timestamp(between)).await, expect(&[(1, "a"), (2, "b")]));
    }
    assert_eq!(store.count(&uri, TimeTravel::Timestamp(history[1].timestamp)).await.unwrap(), 3);

    // Idempotent re-run of the upsert, then an orphan and its rollback.
    assert_eq!(run(&store, &uri, WriteMode::Upsert, Some(1), "r1", &[batch(&[(2, "B"), (3, "c")])]).await, 2);
    assert_eq!(run(&store, &uri, WriteMode::Append, Some(2), "crashed", &[batch(&[(99, "x")])]).await, 3);
    assert_eq!(run(&store, &uri, WriteMode::Overwrite, Some(2), "r2", &[batch(&[(4, "d")])]).await, 5);
    assert_eq!(read(&store, &uri, TimeTravel::Latest).await, expect(&[(4, "d")]));
    assert_eq!(read(&store, &uri, TimeTravel::Version(2)).await, expect(&[(1, "a"), (2, "B"), (3, "c")]));

    // The objects really are in the served bucket, with no staging left behind.
    let table_dir = server.root().join(BUCKET).join("tables/gongan/population");
    assert!(table_dir.join("_delta_log/00000000000000000000.json").is_file());
    assert!(!parquet_files(&table_dir).is_empty());
    assert!(parquet_files(&table_dir.join("_staging")).is_empty());
}
