//! Database sources against the real servers on loopback (PostgreSQL on
//! 5432, MariaDB on 3306, database `test`): every documented type read into
//! its Arrow type with NULLs, MySQL's zero dates and `tinyint(1)`, an
//! unsupported type named, a cursor read from its bound in order, and an
//! unreachable server retried and then reported. Each test creates and
//! drops its own table.

use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Decimal128Type, Float64Type, Int64Type, TimeUnit};
use arrow::util::display::array_value_to_string;
use civlink_connectors::source::database::{self, CursorCell, DatabaseSpec};
use sqlx::{Connection, Executor};

const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";
const MARIADB: &str = "mysql://root@127.0.0.1:3306/test";

fn table_name(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

fn spec(table: &str) -> DatabaseSpec {
    DatabaseSpec {
        table: Some(table.to_owned()),
        query: None,
        password_env: None,
        password_file: None,
        cursor: None,
        lookback: None,
        connect_retries: Some(0),
        read_retries: None,
        deletions: None,
        on_drift: None,
    }
}

async fn read_all(location: &str, spec: &DatabaseSpec, since: Option<&str>, cell: &CursorCell) -> Vec<RecordBatch> {
    let mut source = database::open(location, spec, Path::new("."), since, 2, cell, None).await.unwrap();
    let mut batches = Vec::new();
    while let Some(positioned) = source.next_batch().await.unwrap() {
        assert!(positioned.batch.num_rows() <= 2, "batches are bounded");
        batches.push(positioned.batch);
    }
    batches
}

fn value(batches: &[RecordBatch], column: &str, row: usize) -> String {
    let mut at = row;
    for batch in batches {
        if at < batch.num_rows() {
            let array = batch.column_by_name(column).unwrap();
            return if array.is_null(at) { "∅".into() } else { array_value_to_string(array, at).unwrap() };
        }
        at -= batch.num_rows();
    }
    panic!("no row {row}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_types_become_their_arrow_types() {
    let table = table_name("civlink_types");
    let mut conn = sqlx::PgConnection::connect(POSTGRES).await.unwrap();
    conn.execute(
        format!(
            "CREATE TABLE {table} (id bigint PRIMARY KEY, small smallint, amount numeric(12,2), ratio double precision, \
             label varchar(20), code char(3), born date, seen timestamp, at timestamptz, ok boolean, doc jsonb, \
             raw bytea, note text)"
        )
        .as_str(),
    )
    .await
    .unwrap();
    conn.execute(
        format!(
            "INSERT INTO {table} VALUES (1, 7, 1234.56, 0.25, '张三', 'A01', '1990-01-31', \
             '2026-01-02 03:04:05.678901', '2026-01-02 03:04:05+08', true, '{{\"a\": 1}}', '\\x00ff', NULL), \
             (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false, NULL, NULL, 'x')"
        )
        .as_str(),
    )
    .await
    .unwrap();
    let batches = read_all(POSTGRES, &spec(&table), None, &CursorCell::default()).await;
    let schema = batches[0].schema();
    let types: Vec<DataType> = schema.fields().iter().map(|f| f.data_type().clone()).collect();
    assert_eq!(
        types,
        vec![
            DataType::Int64,
            DataType::Int64,
            DataType::Decimal128(12, 2),
            DataType::Float64,
            DataType::Utf8,
            DataType::Utf8,
            DataType::Date32,
            DataType::Timestamp(TimeUnit::Microsecond, None),
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            DataType::Boolean,
            DataType::Utf8,
            DataType::Binary,
            DataType::Utf8,
        ]
    );
    assert_eq!(batches[0].column(0).as_primitive::<Int64Type>().value(0), 1);
    assert_eq!(batches[0].column(2).as_primitive::<Decimal128Type>().value(0), 123_456);
    assert_eq!(batches[0].column(3).as_primitive::<Float64Type>().value(0), 0.25);
    assert_eq!(value(&batches, "label", 0), "张三");
    assert_eq!(value(&batches, "born", 0), "1990-01-31");
    assert_eq!(value(&batches, "seen", 0), "2026-01-02T03:04:05.678901");
    let at = value(&batches, "at", 0);
    assert!(at.starts_with("2026-01-01T19:04:05") && !at.contains("+08"), "the instant, in UTC: {at}");
    assert_eq!(value(&batches, "ok", 0), "true");
    assert_eq!(value(&batches, "ok", 1), "false");
    assert_eq!(value(&batches, "doc", 0), r#"{"a": 1}"#);
    assert_eq!(batches[0].column(11).as_binary::<i32>().value(0), [0u8, 255]);
    for column in ["small", "amount", "ratio", "label", "born", "seen", "at", "doc", "raw", "note"] {
        let expected = if column == "note" { "x" } else { "∅" };
        assert_eq!(value(&batches, column, 1), expected, "{column}");
    }

    // A type civlink does not read is named, with its column, before any row.
    conn.execute(format!("ALTER TABLE {table} ADD COLUMN spot point").as_str()).await.unwrap();
    let Err(err) = database::open(POSTGRES, &spec(&table), Path::new("."), None, 2, &CursorCell::default(), None).await
    else {
        panic!("a point column is refused")
    };
    assert!(err.to_string().contains("\"spot\"") && err.to_string().contains("point"), "{err}");
    conn.execute(format!("DROP TABLE {table}").as_str()).await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_types_zero_dates_and_tinyint_one() {
    let table = table_name("civlink_types");
    let mut conn = sqlx::MySqlConnection::connect(MARIADB).await.unwrap();
    conn.execute("SET SESSION sql_mode = ''").await.unwrap();
    conn.execute(
        format!(
            "CREATE TABLE {table} (id BIGINT PRIMARY KEY, flag TINYINT(1), n TINYINT, amount DECIMAL(10,3), \
             f DOUBLE, s VARCHAR(10), d DATE, dt DATETIME(6), ts TIMESTAMP NULL, j JSON, b BLOB)"
        )
        .as_str(),
    )
    .await
    .unwrap();
    conn.execute(
        format!(
            "INSERT INTO {table} VALUES (1, 1, -5, 12.345, 1.5, '李四', '2020-02-29', '2026-01-02 03:04:05.5', \
             '2026-01-02 03:04:05', '{{\"k\": [1, 2]}}', X'0A0B'), \
             (2, 0, NULL, NULL, NULL, NULL, '0000-00-00', '0000-00-00 00:00:00', NULL, NULL, NULL)"
        )
        .as_str(),
    )
    .await
    .unwrap();
    let batches = read_all(MARIADB, &spec(&table), None, &CursorCell::default()).await;
    let schema = batches[0].schema();
    let kind = |name: &str| schema.field_with_name(name).unwrap().data_type().clone();
    assert_eq!(kind("flag"), DataType::Boolean, "tinyint(1) is a boolean");
    assert_eq!(kind("n"), DataType::Int64);
    assert_eq!(kind("amount"), DataType::Decimal128(10, 3));
    assert_eq!(kind("d"), DataType::Date32);
    assert_eq!(kind("dt"), DataType::Timestamp(TimeUnit::Microsecond, None));
    assert_eq!(kind("b"), DataType::Binary);
    assert_eq!(value(&batches, "flag", 0), "true");
    assert_eq!(value(&batches, "flag", 1), "false");
    assert_eq!(value(&batches, "n", 0), "-5");
    assert_eq!(value(&batches, "amount", 0), "12.345");
    assert_eq!(value(&batches, "s", 0), "李四");
    assert_eq!(value(&batches, "d", 0), "2020-02-29");
    assert_eq!(value(&batches, "dt", 0), "2026-01-02T03:04:05.500");
    assert_eq!(value(&batches, "d", 1), "∅", "a zero date is NULL");
    assert_eq!(value(&batches, "dt", 1), "∅", "a zero datetime is NULL");
    assert!(value(&batches, "j", 0).contains("\"k\""), "{}", value(&batches, "j", 0));
    assert_eq!(value(&batches, "b", 0), "0a0b");
    conn.execute(format!("DROP TABLE {table}").as_str()).await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_reads_from_its_bound_in_order_and_keeps_the_largest_value() {
    let table = table_name("civlink_cursor");
    let mut conn = sqlx::PgConnection::connect(POSTGRES).await.unwrap();
    conn.execute(format!("CREATE TABLE {table} (id int PRIMARY KEY, v int NOT NULL)").as_str()).await.unwrap();
    conn.execute(format!("INSERT INTO {table} VALUES (3, 30), (1, 10), (2, 20), (4, 40), (5, 9), (6, 100)").as_str())
        .await
        .unwrap();
    let mut cursor = spec(&table);
    cursor.cursor = Some("v".into());
    let cell = CursorCell::default();
    let all = read_all(POSTGRES, &cursor, None, &cell).await;
    let ids: Vec<String> = (0..6).map(|i| value(&all, "id", i)).collect();
    assert_eq!(ids, ["5", "1", "2", "3", "4", "6"], "in the cursor's numeric order, not its text's");
    assert_eq!(cell.get().as_deref(), Some("100"));
    let cell = CursorCell::default();
    let from = read_all(POSTGRES, &cursor, Some("30"), &cell).await;
    assert_eq!(from.iter().map(RecordBatch::num_rows).sum::<usize>(), 3, "the bound itself is read again");
    cursor.lookback = Some(15);
    let back = read_all(POSTGRES, &cursor, Some("30"), &CursorCell::default()).await;
    assert_eq!(back.iter().map(RecordBatch::num_rows).sum::<usize>(), 4, "15 units behind the bound");
    conn.execute(format!("DROP TABLE {table}").as_str()).await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_retried_then_reported_and_missing_credentials_named() {
    let mut unreachable = spec("anything");
    unreachable.connect_retries = Some(1);
    let Err(err) = database::open(
        "postgres://postgres@127.0.0.1:1/test",
        &unreachable,
        Path::new("."),
        None,
        2,
        &CursorCell::default(),
        None,
    )
    .await
    else {
        panic!("nothing listens on port 1")
    };
    assert!(err.to_string().contains("after 2 attempt(s)"), "{err}");
    let mut secret = spec("anything");
    secret.password_env = Some("CIVLINK_TEST_NO_SUCH_PASSWORD_VARIABLE".into());
    let Err(err) = database::open(POSTGRES, &secret, Path::new("."), None, 2, &CursorCell::default(), None).await
    else {
        panic!("an unset password variable is an error")
    };
    assert!(err.to_string().contains("CIVLINK_TEST_NO_SUCH_PASSWORD_VARIABLE is not set"), "{err}");
    let Err(err) =
        database::open(POSTGRES, &spec("civlink_no_such_table"), Path::new("."), None, 2, &CursorCell::default(), None)
            .await
    else {
        panic!("no such table")
    };
    assert!(err.to_string().contains("no table civlink_no_such_table"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_source_is_caught_before_a_row_is_read_unless_the_job_reads_on() {
    let table = table_name("civlink_drift");
    let mut conn = sqlx::MySqlConnection::connect(MARIADB).await.unwrap();
    conn.execute(format!("CREATE TABLE {table} (id INT PRIMARY KEY, amount DECIMAL(8,2), note VARCHAR(9))").as_str())
        .await
        .unwrap();
    conn.execute(format!("INSERT INTO {table} VALUES (1, 2.50, 'a')").as_str()).await.unwrap();
    let cell = CursorCell::default();
    read_all(MARIADB, &spec(&table), None, &cell).await;
    let before = cell.columns();
    assert_eq!(before, ["id: Int64", "amount: Decimal128(8, 2)", "note: Utf8"]);

    conn.execute(format!("ALTER TABLE {table} DROP COLUMN note, MODIFY amount VARCHAR(12), ADD memo TEXT").as_str())
        .await
        .unwrap();
    let Err(err) =
        database::open(MARIADB, &spec(&table), Path::new("."), None, 2, &CursorCell::default(), Some(&before)).await
    else {
        panic!("drift fails the run by default")
    };
    let text = err.to_string();
    for expected in ["\"note\" dropped", "\"amount\" changed from Decimal128(8, 2) to Utf8", "\"memo\" (Utf8) added"] {
        assert!(text.contains(expected), "{expected}: {text}");
    }
    let mut reads_on = spec(&table);
    reads_on.on_drift = Some(database::DriftPolicy::Continue);
    let cell = CursorCell::default();
    let mut source = database::open(MARIADB, &reads_on, Path::new("."), None, 2, &cell, Some(&before)).await.unwrap();
    assert!(source.next_batch().await.unwrap().is_some(), "read on");
    assert_eq!(cell.drift().len(), 3);
    conn.execute(format!("DROP TABLE {table}").as_str()).await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mariadb_cursor_reads_in_the_columns_order_from_its_bound() {
    let table = table_name("civlink_cursor");
    let mut conn = sqlx::MySqlConnection::connect(MARIADB).await.unwrap();
    conn.execute(format!("CREATE TABLE {table} (id INT PRIMARY KEY, v INT NOT NULL)").as_str()).await.unwrap();
    conn.execute(format!("INSERT INTO {table} VALUES (1, 10), (2, 9), (3, 100), (4, 40)").as_str()).await.unwrap();
    let mut cursor = spec(&table);
    cursor.cursor = Some("v".into());
    let cell = CursorCell::default();
    let all = read_all(MARIADB, &cursor, None, &cell).await;
    let ids: Vec<String> = (0..4).map(|i| value(&all, "id", i)).collect();
    assert_eq!(ids, ["2", "1", "4", "3"], "numeric order, not the text's");
    assert_eq!(cell.get().as_deref(), Some("100"));
    cursor.lookback = Some(5);
    let back = read_all(MARIADB, &cursor, Some("40"), &CursorCell::default()).await;
    assert_eq!(back.iter().map(RecordBatch::num_rows).sum::<usize>(), 2, "40 and 100, from 35 on");
    conn.execute(format!("DROP TABLE {table}").as_str()).await.unwrap();
    conn.close().await.unwrap();
}
