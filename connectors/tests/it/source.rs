//! Sources: listing local globs and object stores, and reading files as
//! async streams of positioned batches.

use std::path::Path;
use std::sync::Arc;

use civlink_catalog::config::S3Config;
use civlink_connectors::file::{CsvOptions, Encoding, FileFormat, PositionedBatch, ReadOptions};
use civlink_connectors::source::{
    self, Error, Source, SourceFile, file_uri, list_files, list_objects, open_object, open_source, s3_builder,
};
use object_store::aws::AmazonS3ConfigKey;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ClientConfigKey, ObjectStore, ObjectStoreExt};

use crate::Collected;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

async fn drain(mut source: Box<dyn Source>) -> Vec<PositionedBatch> {
    let mut out = Vec::new();
    while let Some(batch) = source.next_batch().await.expect("batch") {
        out.push(batch);
    }
    // The end is sticky.
    assert!(source.next_batch().await.unwrap().is_none());
    out
}

fn options(batch_size: usize) -> ReadOptions {
    ReadOptions { batch_size, ..ReadOptions::default() }
}

/// A job directory with a few exports.
fn exports() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(&root.join("exports/population_2.csv"), "id,name\n3,王五\n");
    write(&root.join("exports/population_1.csv"), "id,name\n1,张三\n\n2,李四\n");
    write(&root.join("exports/notes.txt"), "not data\n");
    write(&root.join("exports/2024/population_3.csv"), "id,name\n4,赵六\n");
    write(&root.join("exports/.hidden.csv"), "id\n9\n");
    write(&root.join("exports/~$population_1.csv"), "owner lock");
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn local_glob_sorted_with_positions_per_file() {
    let dir = exports();
    let files = list_files("exports/population_*.csv", dir.path(), None).await.unwrap();
    let names: Vec<&str> = files.iter().map(|f| f.uri.rsplit('/').next().unwrap()).collect();
    assert_eq!(names, ["population_1.csv", "population_2.csv"]);
    let root = std::path::absolute(dir.path()).unwrap();
    assert_eq!(files[0].uri, file_uri(&root.join("exports/population_1.csv")).unwrap());
    assert!(files[0].uri.starts_with("file:///"));
    assert_eq!(files[0].size, "id,name\n1,张三\n\n2,李四\n".len() as u64);
    assert!(files[0].modified.is_some());
    assert_eq!(files[0].etag, None);

    // Each file's positions start afresh.
    let first = drain(open_source(&files[0], None, &options(1), None).await.unwrap()).await;
    let got = Collected::from_batches(first);
    got.assert_conserved(2);
    assert_eq!(got.rows.iter().map(|r| r.1).collect::<Vec<_>>(), [2, 4]);
    let second = drain(open_source(&files[1], None, &options(10), None).await.unwrap()).await;
    let got = Collected::from_batches(second);
    assert_eq!((got.rows[0].0, got.rows[0].1), (0, 2));
    assert_eq!(got.row(0), ["3", "王五"]);

    // `**` crosses directories; `*` does not.
    let deep = list_files("exports/**/population_*.csv", dir.path(), None).await.unwrap();
    assert_eq!(deep.len(), 3);
    assert!(deep.windows(2).all(|w| w[0].uri < w[1].uri), "sorted by uri");
    let shallow = list_files("exports/*/*.csv", dir.path(), None).await.unwrap();
    assert_eq!(shallow.len(), 1);
    // Hidden files need a literal dot; lock files are never listed.
    let all = list_files("exports/*.csv", dir.path(), None).await.unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    let hidden = list_files("exports/.*.csv", dir.path(), None).await.unwrap();
    assert_eq!(hidden.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn relative_paths_resolve_against_the_base_dir() {
    let dir = exports();
    let root = std::path::absolute(dir.path()).unwrap();
    let expected = file_uri(&root.join("exports/population_2.csv")).unwrap();
    for location in ["exports/population_2.csv", "./exports/2024/../population_2.csv"] {
        let files = list_files(location, dir.path(), None).await.unwrap();
        assert_eq!(files.len(), 1, "{location}");
        assert_eq!(files[0].uri, expected, "{location}");
    }
    // Absolute paths and file:// URLs ignore the base directory.
    let absolute = root.join("exports/population_2.csv");
    let files = list_files(absolute.to_str().unwrap(), Path::new("/nonexistent"), None).await.unwrap();
    assert_eq!(files[0].uri, expected);
    let files = list_files(&expected, Path::new("/nonexistent"), None).await.unwrap();
    assert_eq!(files[0].uri, expected);

    // A directory means every file beneath it, hidden ones left out.
    let files = list_files("exports", dir.path(), None).await.unwrap();
    let names: Vec<&str> = files.iter().map(|f| f.uri.rsplit('/').next().unwrap()).collect();
    assert_eq!(names, ["population_3.csv", "notes.txt", "population_1.csv", "population_2.csv"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn unicode_file_names_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("公安 导出/人口[1].csv"), "姓名\n张三\n");
    let files = list_files("公安 导出/*.csv", dir.path(), None).await.unwrap();
    assert_eq!(files.len(), 1);
    assert!(files[0].uri.contains("%E4%BA%BA%E5%8F%A3"), "{}", files[0].uri);
    let got = Collected::from_batches(drain(open_source(&files[0], None, &options(10), None).await.unwrap()).await);
    assert_eq!(got.row(0), ["张三"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_matches() {
    let dir = exports();
    for location in ["exports/*.parquet", "exports/missing.csv", "nowhere/**/*.csv"] {
        match list_files(location, dir.path(), None).await {
            Err(err @ Error::NoMatch { .. }) => {
                let text = err.to_string();
                assert!(text.contains(location), "{text}");
            }
            other => panic!("{location}: expected NoMatch, got {other:?}"),
        }
    }
    assert!(matches!(list_files("ftp://x/y.csv", dir.path(), None).await, Err(Error::UnsupportedScheme { .. })));
    assert!(matches!(list_files("s3://bucket/x.csv", dir.path(), None).await, Err(Error::S3NotConfigured { .. })));
}

#[tokio::test(flavor = "multi_thread")]
async fn reader_errors_surface_after_the_good_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("a,b\n");
    for i in 0..10 {
        text.push_str(&format!("{i},x\n"));
    }
    text.push_str("\"unclosed,");
    text.push_str(&"y".repeat(300_000));
    write(&dir.path().join("bad.csv"), &text);
    let files = list_files("bad.csv", dir.path(), None).await.unwrap();
    let csv = CsvOptions { max_record_bytes: 16, ..CsvOptions::default() };
    let mut source = open_source(&files[0], None, &ReadOptions { csv, batch_size: 4, excel: Default::default() }, None)
        .await
        .unwrap();
    let mut rows = 0;
    let error = loop {
        match source.next_batch().await {
            Ok(Some(batch)) => rows += batch.batch.num_rows(),
            Ok(None) => panic!("expected an error"),
            Err(e) => break e,
        }
    };
    assert_eq!(rows, 10);
    assert!(matches!(error, Error::File(civlink_connectors::file::Error::Csv { .. })), "{error}");
    assert!(source.next_batch().await.unwrap().is_none());

    // Open-time errors come from open_source itself.
    write(&dir.path().join("weird.dat"), "x");
    let files = list_files("weird.dat", dir.path(), None).await.unwrap();
    assert!(matches!(
        open_source(&files[0], None, &options(10), None).await.err(),
        Some(Error::File(civlink_connectors::file::Error::UnknownFormat { .. }))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_a_source_early_stops_its_reader() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("n\n");
    for i in 0..50_000 {
        text.push_str(&format!("{i}\n"));
    }
    write(&dir.path().join("big.csv"), &text);
    let files = list_files("big.csv", dir.path(), None).await.unwrap();
    let mut source = open_source(&files[0], None, &options(100), None).await.unwrap();
    assert_eq!(source.next_batch().await.unwrap().unwrap().batch.num_rows(), 100);
    drop(source);
    // Nothing to assert beyond "does not hang": the reader thread's next
    // send fails and it returns.
}

#[tokio::test(flavor = "multi_thread")]
async fn xlsx_source_with_a_sheet() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/population.xlsx");
    let files = list_files(fixture.to_str().unwrap(), Path::new("/"), None).await.unwrap();
    let options = ReadOptions { excel: civlink_connectors::file::ExcelOptions::sheet(Some("偏移")), ..options(10) };
    let got = Collected::from_batches(drain(open_source(&files[0], None, &options, None).await.unwrap()).await);
    got.assert_conserved(3);
}

/// An in-memory object store holding the same exports under `exports/`.
async fn store() -> Arc<dyn ObjectStore> {
    let store = InMemory::new();
    let put = |key: &str, bytes: Vec<u8>| {
        let store = &store;
        let key = ObjectPath::from(key);
        async move { store.put(&key, bytes.into()).await.unwrap() }
    };
    put("exports/population_2.csv", "id,name\n3,王五\n".into()).await;
    put("exports/population_1.csv", "id,name\n1,张三\n\n2,李四\n".into()).await;
    put("exports/2024/population_3.csv", "id,name\n4,赵六\n".into()).await;
    put("exports/.hidden.csv", "id\n9\n".into()).await;
    put("exports/~$population.xlsx", "lock".into()).await;
    put("exports/lines.json", "{\"a\": 1}\n{\"a\": 2}\n".into()).await;
    put("exports/array.json", "  [{\"a\": \"x\"}, {\"a\": null}]".into()).await;
    let (gbk, _, _) = encoding_rs::GBK.encode("姓名,地址\n张三,北京市\n");
    put("exports/gbk.csv", gbk.into_owned()).await;
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/population.xlsx");
    put("exports/population.xlsx", std::fs::read(fixture).unwrap()).await;
    let mut big = String::from("n,text\n");
    for i in 0..20_000 {
        big.push_str(&format!("{i},第{i}行\n"));
    }
    put("big/rows.csv", big.into_bytes()).await;
    Arc::new(store)
}

async fn open(store: &Arc<dyn ObjectStore>, file: &SourceFile, options: &ReadOptions) -> Vec<PositionedBatch> {
    let key = file.uri.strip_prefix("s3://bucket/").unwrap();
    let source = open_object(store.clone(), &ObjectPath::parse(key).unwrap(), &file.uri, None, options).await.unwrap();
    assert_eq!(source.uri(), file.uri);
    drain(source).await
}

#[tokio::test(flavor = "multi_thread")]
async fn object_store_listing() {
    let store = store().await;
    let uris = |files: Vec<SourceFile>| files.into_iter().map(|f| f.uri).collect::<Vec<_>>();
    let files = list_objects(store.as_ref(), "s3://bucket", "exports/population_*.csv").await.unwrap();
    assert_eq!(uris(files.clone()), ["s3://bucket/exports/population_1.csv", "s3://bucket/exports/population_2.csv"]);
    assert!(files[0].etag.is_some() && files[0].modified.is_some());
    assert_eq!(files[0].size, "id,name\n1,张三\n\n2,李四\n".len() as u64);
    let deep = list_objects(store.as_ref(), "s3://bucket", "exports/**/population_*.csv").await.unwrap();
    assert_eq!(deep.len(), 3);
    // An exact key, and a directory-like prefix (hidden objects left out).
    let one = list_objects(store.as_ref(), "s3://bucket", "exports/gbk.csv").await.unwrap();
    assert_eq!(uris(one), ["s3://bucket/exports/gbk.csv"]);
    let all = list_objects(store.as_ref(), "s3://bucket", "exports").await.unwrap();
    assert_eq!(all.len(), 7);
    assert!(all.iter().all(|f| !f.uri.contains(".hidden")));
    let everything = list_objects(store.as_ref(), "s3://bucket", "").await.unwrap();
    assert_eq!(everything.len(), 8);
    assert!(list_objects(store.as_ref(), "s3://bucket", "exports/*.parquet").await.unwrap().is_empty());
    let xlsx = list_objects(store.as_ref(), "s3://bucket", "exports/*.xlsx").await.unwrap();
    assert_eq!(uris(xlsx), ["s3://bucket/exports/population.xlsx"]);
    assert!(list_objects(store.as_ref(), "s3://bucket", "exports/*hidden*").await.unwrap().is_empty());
    assert!(list_objects(store.as_ref(), "s3://bucket", "nothing").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn object_store_streaming_matches_local_reading() {
    let store = store().await;
    let files = list_objects(store.as_ref(), "s3://bucket", "exports/population_*.csv").await.unwrap();
    let got = Collected::from_batches(open(&store, &files[0], &options(1)).await);
    got.assert_conserved(2);
    assert_eq!(got.rows.iter().map(|r| r.1).collect::<Vec<_>>(), [2, 4]);
    assert_eq!(got.row(1), ["2", "李四"]);

    // GBK through the stream.
    let gbk = list_objects(store.as_ref(), "s3://bucket", "exports/gbk.csv").await.unwrap();
    let csv = CsvOptions { encoding: Encoding::Gbk, ..CsvOptions::default() };
    let got = Collected::from_batches(open(&store, &gbk[0], &ReadOptions { csv, ..options(10) }).await);
    assert_eq!(got.row(0), ["张三", "北京市"]);

    // `.json` objects are sniffed.
    let lines = list_objects(store.as_ref(), "s3://bucket", "exports/lines.json").await.unwrap();
    let got = Collected::from_batches(open(&store, &lines[0], &options(10)).await);
    assert_eq!(got.rows.iter().map(|r| r.2[0].clone().unwrap()).collect::<Vec<_>>(), ["1", "2"]);
    let array = list_objects(store.as_ref(), "s3://bucket", "exports/array.json").await.unwrap();
    let got = Collected::from_batches(open(&store, &array[0], &options(10)).await);
    got.assert_conserved(2);
    assert_eq!(got.row(0), ["x"]);

    // Many chunks and batches.
    let big = list_objects(store.as_ref(), "s3://bucket", "big/rows.csv").await.unwrap();
    let got = Collected::from_batches(open(&store, &big[0], &options(1000)).await);
    got.assert_conserved(20_000);
    assert_eq!(got.row(19_999), ["19999", "第19999行"]);
    assert_eq!(got.rows[19_999].1, 20_001);
}

#[tokio::test(flavor = "multi_thread")]
async fn object_store_xlsx_is_downloaded_first() {
    let store = store().await;
    let files = list_objects(store.as_ref(), "s3://bucket", "exports/*.xlsx").await.unwrap();
    let got = Collected::from_batches(open(&store, &files[0], &options(100)).await);
    got.assert_conserved(5);
    // Errors name the object, not the temporary file.
    let key = ObjectPath::from("exports/population.xlsx");
    let options = ReadOptions { excel: civlink_connectors::file::ExcelOptions::sheet(Some("nope")), ..options(10) };
    let err = open_object(store.clone(), &key, &files[0].uri, None, &options).await.err().unwrap();
    assert!(err.to_string().starts_with("s3://bucket/exports/population.xlsx"), "{err}");
    // Explicit format wins over the extension; a missing object is a store error.
    let err = open_object(
        store.clone(),
        &ObjectPath::from("missing.csv"),
        "s3://bucket/missing.csv",
        Some(FileFormat::Csv),
        &options,
    )
    .await
    .err()
    .unwrap();
    assert!(matches!(err, Error::ObjectStore { .. }), "{err}");
}

fn s3_config() -> S3Config {
    S3Config {
        endpoint: Some("http://127.0.0.1:9000".into()),
        region: "cn-northwest-1".into(),
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: "secret".into(),
        allow_http: true,
    }
}

#[test]
fn s3_builder_takes_every_setting() {
    let builder = s3_builder(&s3_config(), "civlink");
    let get = |key| builder.get_config_value(&key);
    assert_eq!(get(AmazonS3ConfigKey::Bucket).as_deref(), Some("civlink"));
    assert_eq!(get(AmazonS3ConfigKey::Endpoint).as_deref(), Some("http://127.0.0.1:9000"));
    assert_eq!(get(AmazonS3ConfigKey::Region).as_deref(), Some("cn-northwest-1"));
    assert_eq!(get(AmazonS3ConfigKey::AccessKeyId).as_deref(), Some("AKIDEXAMPLE"));
    assert_eq!(get(AmazonS3ConfigKey::SecretAccessKey).as_deref(), Some("secret"));
    assert_eq!(get(AmazonS3ConfigKey::VirtualHostedStyleRequest).as_deref(), Some("false"));
    assert_eq!(get(AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp)).as_deref(), Some("true"));
    assert!(source::s3_store(&s3_config(), "civlink").is_ok());

    let aws = S3Config { endpoint: None, allow_http: false, ..s3_config() };
    let builder = s3_builder(&aws, "b");
    assert_eq!(builder.get_config_value(&AmazonS3ConfigKey::Endpoint), None);
    assert_eq!(
        builder.get_config_value(&AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp)).as_deref(),
        Some("false")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_uris_need_settings() {
    let file = SourceFile { uri: "s3://bucket/a.csv".into(), size: 1, modified: None, etag: None };
    assert!(matches!(open_source(&file, None, &options(10), None).await.err(), Some(Error::S3NotConfigured { .. })));
    let file = SourceFile { uri: "/relative/no/scheme.csv".into(), ..file };
    assert!(matches!(open_source(&file, None, &options(10), None).await.err(), Some(Error::InvalidLocation { .. })));
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn non_utf8_names_do_not_panic() {
    use std::os::unix::ffi::OsStrExt;
    let dir = exports();
    let name = std::ffi::OsStr::from_bytes(b"exports/bad-\xFF.csv");
    std::fs::write(dir.path().join(name), "id\n1\n").unwrap();
    std::fs::write(dir.path().join(std::ffi::OsStr::from_bytes(b"exports/.\xFE.csv")), "id\n1\n").unwrap();
    // Globs match text, so a name that is not UTF-8 matches no glob (and
    // does not panic the walker)...
    let files = list_files("exports/*.csv", dir.path(), None).await.unwrap();
    assert_eq!(files.len(), 2, "{files:?}");
    // ...but a directory listing includes it, with its bytes percent-encoded.
    let all = list_files("exports", dir.path(), None).await.unwrap();
    let odd = all.iter().find(|f| f.uri.contains("%FF")).expect("percent-encoded byte");
    let got = Collected::from_batches(drain(open_source(odd, None, &options(10), None).await.unwrap()).await);
    assert_eq!(got.row(0), ["1"]);
    assert_eq!(all.len(), 5, "{all:?}");
}
