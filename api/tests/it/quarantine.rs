//! Quarantined rows over REST: whole-dataset scopes only, raw rows only to
//! readers of every column in clear, violations redacted otherwise, paged
//! by cursor.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

use crate::fixture::{Fixture, PEOPLE, batch, commit_dataset_with};

/// `n` quarantined rows of run `run`, each quoting a clear ID in its raw row and violation.
fn quarantined(n: usize) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("run_id", DataType::Utf8, true),
        Field::new("kind", DataType::Utf8, true),
        Field::new("source_uri", DataType::Utf8, true),
        Field::new("line", DataType::Int64, true),
        Field::new("row_index", DataType::Int64, true),
        Field::new("raw", DataType::Utf8, true),
        Field::new("violations", DataType::Utf8, true),
        Field::new("quarantined_at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
    ]));
    let text = |f: &dyn Fn(usize) -> String| Arc::new(StringArray::from((0..n).map(f).collect::<Vec<_>>())) as ArrayRef;
    RecordBatch::try_new(
        schema,
        vec![
            text(&|_| "r1".into()),
            text(&|_| "invalid".into()),
            text(&|_| "file:///exports/people.csv".into()),
            Arc::new(Int64Array::from((0..n as i64).map(|i| i + 2).collect::<Vec<_>>())),
            Arc::new(Int64Array::from((0..n as i64).collect::<Vec<_>>())),
            text(&|i| format!("{{\"id_number\":\"63010219800101{i:04}\",\"name\":\"张三\"}}")),
            text(&|i| format!("id_number: '63010219800101{i:04}' is not a valid GB 11643 number")),
            Arc::new(TimestampMicrosecondArray::from(vec![1_733_000_000_000_000; n]).with_timezone("UTC")),
        ],
    )
    .unwrap()
}

#[tokio::test]
async fn quarantined_rows_are_shown_under_the_masks_to_whole_dataset_scopes() {
    let f = Fixture::start().await;
    let record = f.store.dataset(&PEOPLE.parse().unwrap()).await.unwrap().unwrap();
    commit_dataset_with(&f.store, &f.tables, &record.spec, &batch().slice(0, 1), Some(&quarantined(7))).await;
    let path = "/api/v1/datasets/gongan/population/quarantine";

    // The admin reads the dataset masked: violations redacted, raw rows withheld.
    let page = f.get(&f.tokens.admin, &format!("{path}?limit=3")).await.json();
    assert_eq!(page["raw_shown"], false);
    let rows = page["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for row in rows {
        assert!(row["raw"].is_null(), "{row}");
        assert_eq!(row["kind"], "invalid");
        assert!(!row["violations"].as_str().unwrap().contains("6301021980"), "{row}");
    }
    // Pages by cursor: 3 + 3 + 1, each row once.
    let mut seen: Vec<i64> = rows.iter().map(|r| r["row_index"].as_i64().unwrap()).collect();
    let mut cursor = page["next_cursor"].as_str().map(str::to_owned);
    while let Some(c) = cursor {
        let next = f.get(&f.tokens.admin, &format!("{path}?limit=3&cursor={c}")).await.json();
        seen.extend(next["rows"].as_array().unwrap().iter().map(|r| r["row_index"].as_i64().unwrap()));
        cursor = next["next_cursor"].as_str().map(str::to_owned);
    }
    seen.sort();
    assert_eq!(seen, (0..7).collect::<Vec<_>>());
    assert_eq!(
        f.get(&f.tokens.admin, &format!("{path}?run=r1&limit=100")).await.json()["rows"].as_array().unwrap().len(),
        7
    );
    assert_eq!(f.get(&f.tokens.admin, &format!("{path}?run=other")).await.json()["rows"], serde_json::json!([]));

    // A principal scoped to a division may not see rows no division holds.
    let body = f.get(&f.tokens.county, path).await.problem(403);
    assert!(body["detail"].as_str().unwrap().contains("division"), "{body}");
    // Unreadable datasets are the 404 of unknown ones; bad parameters are 400.
    f.get(&f.tokens.county, "/api/v1/datasets/renshe/insured_people/quarantine").await.problem(404);
    f.get(&f.tokens.admin, &format!("{path}?limit=0")).await.problem(400);
    f.get(&f.tokens.admin, &format!("{path}?sort=x")).await.problem(400);
    let rows_cursor = f.get(&f.tokens.admin, "/api/v1/datasets/gongan/population/rows?limit=1").await.json();
    let c = rows_cursor["next_cursor"].as_str().unwrap();
    assert_eq!(
        f.get(&f.tokens.admin, &format!("{path}?cursor={c}")).await.problem(400)["type"],
        "urn:civlink:problem:bad-cursor"
    );
    f.stop().await;
}
