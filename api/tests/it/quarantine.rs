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
            text(&|i| format!("{{\"id_number\":\"63010219800101{i:04}\",\"name\":\"张三丰\",\"sex\":\"1\",\"salary\":\"9000\"}}")),
            text(&|i| {
                format!(
                    "[{{\"column\":\"id_number\",\"keyword\":\"format\",\"message\":\"\\\"63010219800101{i:04}\\\" is not a GB 11643 number\"}},\
                     {{\"column\":\"sex\",\"keyword\":\"enum\",\"message\":\"sex is fine\"}}]"
                )
            }),
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

    // The admin reads the dataset masked: each column of the raw row under its
    // mask, columns the standard lacks left out, messages only for clear columns.
    let page = f.get(&f.tokens.admin, &format!("{path}?limit=3")).await.json();
    let rows = page["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for row in rows {
        let text = row.to_string();
        assert!(!text.contains("6301021980") && !text.contains("张三丰"), "{row}");
        assert_eq!(row["kind"], "invalid");
        let raw = row["raw"].as_object().unwrap();
        assert!(raw["id_number"].as_str().unwrap().contains('*'), "{row}");
        assert_eq!(raw["name"], "张**");
        assert_eq!(raw["sex"], "1", "a clear column as delivered");
        assert!(!raw.contains_key("salary"), "a column outside the standard is left out");
        let violations = row["violations"].as_array().unwrap();
        assert_eq!(
            (violations[0]["column"].as_str(), violations[0]["message"].clone()),
            (Some("id_number"), serde_json::Value::Null)
        );
        assert_eq!(violations[1]["message"], "sex is fine");
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

    // The audit listing shows admins no value a request searched for.
    let id = &crate::fixture::people()[0].id_number;
    f.get(&f.tokens.province, &format!("/api/v1/datasets/renshe/insured_people/rows?id_number={id}")).await;
    let audit = f.get(&f.tokens.admin, "/api/v1/admin/audit?limit=50").await;
    assert_eq!(audit.status, 200, "{}", audit.text());
    assert!(!audit.text().contains(id.as_str()), "{}", audit.text());
    assert!(audit.text().contains("id_number=…"), "{}", audit.text());
    f.stop().await;
}

#[tokio::test]
async fn a_grant_that_requires_a_purpose_requires_it_for_quarantine_too() {
    let f = Fixture::start().await;
    let record = f.store.dataset(&PEOPLE.parse().unwrap()).await.unwrap().unwrap();
    commit_dataset_with(&f.store, &f.tables, &record.spec, &batch().slice(0, 1), Some(&quarantined(2))).await;
    f.store
        .grant(&civlink_catalog::policy::Grant {
            id: "admin-purpose".into(),
            subject: civlink_catalog::policy::GrantSubject::Principal("admin".into()),
            dataset: PEOPLE.parse().unwrap(),
            columns: Some(vec!["sex".into()]),
            unmasked: true,
            purpose: Some("质量核查".into()),
            purpose_required: true,
            expires_at: None,
        })
        .await
        .unwrap();
    let path = "/api/v1/datasets/gongan/population/quarantine";
    let refused = f.get(&f.tokens.admin, path).await.problem(403);
    assert_eq!(refused["type"], "urn:civlink:problem:purpose-required", "{refused}");
    let auth = format!("Bearer {}", f.tokens.admin);
    let headers = [("Authorization", auth.as_str()), ("x-civlink-purpose", "质量核查 2026")];
    let reply = crate::fixture::request(f.addr, "GET", path, &headers, None).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["rows"].as_array().map(Vec::len), Some(2));
    f.stop().await;
}
