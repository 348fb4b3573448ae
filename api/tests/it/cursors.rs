//! Cursor paging while versions land, time travel, typed filters and order.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{Array, Int64Array, RecordBatch, StringArray};
use serde_json::Value;

use crate::fixture::{Fixture, INSURED, PEOPLE, batch, id, in_scope, people};

const PEOPLE_ROWS: &str = "/api/v1/datasets/gongan/population/rows";
const INSURED_ROWS: &str = "/api/v1/datasets/renshe/insured_people/rows";

/// `n` new people in township 630102001, with IDs no fixture row has.
fn newcomers(n: usize) -> RecordBatch {
    let schema = batch().schema();
    let ids: Vec<String> = (0..n).map(|i| id(&format!("63010219990101{:03}", 500 + i))).collect();
    let text =
        |v: &dyn Fn(usize) -> String| Arc::new(StringArray::from((0..n).map(v).collect::<Vec<_>>())) as Arc<dyn Array>;
    RecordBatch::try_new(
        schema,
        vec![
            text(&|i| ids[i].clone()),
            text(&|i| format!("新{i}")),
            text(&|i| format!("6399{i:08}")),
            text(&|_| "1".into()),
            text(&|_| "1999-01-01".into()),
            text(&|_| "630102001001".into()),
            text(&|i| format!("1390000{i:04}")),
            Arc::new(Int64Array::from(vec![Some(1); n])),
            text(&|_| "normal".into()),
        ],
    )
    .unwrap()
}

/// Walk every page of `path?query` by cursor, committing `land` after the first page.
async fn walk(f: &Fixture, token: &str, path: &str, query: &str, land: Option<(&str, RecordBatch)>) -> Vec<Value> {
    let mut land = land;
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let after = cursor.as_deref().map(|c| format!("&cursor={c}")).unwrap_or_default();
        let reply = f.get(token, &format!("{path}?limit=4&{query}{after}")).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        let body = reply.json();
        rows.extend(body["rows"].as_array().unwrap().iter().cloned());
        if let Some((dataset, batch)) = land.take() {
            f.append(dataset, &batch).await;
        }
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return rows,
        }
    }
}

#[tokio::test]
async fn a_walk_reads_the_version_it_started_on_while_new_versions_land() {
    let f = Fixture::start().await;
    // Counted cursor: the county analyst sees the ID masked (not a unique key).
    let before = walk(&f, &f.tokens.county, PEOPLE_ROWS, "", Some((PEOPLE, newcomers(3)))).await;
    assert_eq!(before.len(), in_scope(Some("630102")).len());
    let after = walk(&f, &f.tokens.county, PEOPLE_ROWS, "", None).await;
    assert_eq!(after.len(), before.len() + 3, "a new walk sees the new version");

    // Keyset cursor: the province reads the ID in clear on 参保 (a unique key).
    let keyset = walk(&f, &f.tokens.province, INSURED_ROWS, "", Some((INSURED, newcomers(2)))).await;
    let ids: Vec<&str> = keyset.iter().map(|r| r["id_number"].as_str().unwrap()).collect();
    let mut want: Vec<String> = in_scope(Some("63")).into_iter().map(|p| p.id_number).collect();
    want.sort();
    assert_eq!(ids, want, "every row once, in key order, none of the new version");
    let fresh = walk(&f, &f.tokens.province, INSURED_ROWS, "", None).await;
    assert_eq!(fresh.len(), want.len() + 2);
    assert_eq!(fresh.iter().map(|r| r["id_number"].as_str().unwrap()).collect::<BTreeSet<_>>().len(), fresh.len());
    f.stop().await;
}

#[tokio::test]
async fn cursors_are_refused_anywhere_but_where_they_were_issued() {
    let f = Fixture::start().await;
    let first = f.get(&f.tokens.county, &format!("{PEOPLE_ROWS}?limit=2&sex=1")).await.json();
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let bad = |reply: crate::fixture::Reply| {
        let problem = reply.problem(400);
        assert_eq!(problem["type"], "urn:civlink:problem:bad-cursor", "{problem}");
        problem["detail"].as_str().unwrap().to_owned()
    };
    // Another dataset, other filters, a changed byte, not a cursor at all.
    assert!(
        bad(f.get(&f.tokens.admin, &format!("{INSURED_ROWS}?limit=2&sex=1&cursor={cursor}")).await)
            .contains("another dataset")
    );
    assert!(
        bad(f.get(&f.tokens.county, &format!("{PEOPLE_ROWS}?limit=2&sex=2&cursor={cursor}")).await).contains("filters")
    );
    let mut forged = cursor.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'0' { b'1' } else { b'0' };
    let forged = String::from_utf8(forged).unwrap();
    assert!(
        bad(f.get(&f.tokens.county, &format!("{PEOPLE_ROWS}?limit=2&sex=1&cursor={forged}")).await)
            .contains("not issued")
    );
    bad(f.get(&f.tokens.county, &format!("{PEOPLE_ROWS}?limit=2&sex=1&cursor=zz%27%20OR%201=1")).await);
    // A cursor already fixes the version.
    let reply = f.get(&f.tokens.county, &format!("{PEOPLE_ROWS}?limit=2&sex=1&version=0&cursor={cursor}")).await;
    assert_eq!(reply.problem(400)["type"], "urn:civlink:problem:bad-request");

    // Replayed by another principal, the cursor walks that principal's rows only.
    let replay = f.get(&f.tokens.township, &format!("{PEOPLE_ROWS}?limit=2&sex=1&cursor={cursor}")).await;
    assert_eq!(replay.status, 200, "{}", replay.text());
    for row in replay.json()["rows"].as_array().unwrap() {
        assert!(row["division_code"].as_str().unwrap().starts_with("630102001"), "{row}");
    }
    f.stop().await;
}

#[tokio::test]
async fn time_travel_reads_a_committed_version() {
    let f = Fixture::start().await;
    let first_commit = chrono::Utc::now();
    f.append(PEOPLE, &newcomers(4)).await;
    let count = async |query: &str| -> usize {
        let reply = f.get(&f.tokens.admin, &format!("{PEOPLE_ROWS}?limit=10000&{query}")).await;
        assert_eq!(reply.status, 200, "{query}: {}", reply.text());
        reply.json()["rows"].as_array().unwrap().len()
    };
    let record = f.store.dataset(&PEOPLE.parse().unwrap()).await.unwrap().unwrap();
    let current = record.current_version.unwrap();
    assert_eq!(count("").await, people().len() + 4);
    assert_eq!(count(&format!("version={}", current - 1)).await, people().len());
    assert_eq!(count(&format!("version={current}")).await, people().len() + 4);
    let as_of = crate::fixture::enc(&first_commit.to_rfc3339());
    assert_eq!(count(&format!("as_of={as_of}")).await, people().len());
    let page = f.get(&f.tokens.admin, &format!("{PEOPLE_ROWS}?version={}", current - 1)).await.json();
    assert_eq!(page["version"].as_i64(), Some(current - 1));
    for query in [format!("version={}", current + 1), "as_of=2000-01-01T00:00:00Z".to_owned()] {
        let problem = f.get(&f.tokens.admin, &format!("{PEOPLE_ROWS}?{query}")).await.problem(400);
        assert!(problem["detail"].as_str().unwrap().contains("no committed version"), "{problem}");
    }
    f.stop().await;
}

#[tokio::test]
async fn typed_filters_and_order_match_a_reference() {
    let f = Fixture::start().await;
    let rows = async |query: &str| -> Vec<Value> {
        let reply = f
            .get(
                &f.tokens.admin,
                &format!("{PEOPLE_ROWS}?limit=10000&columns=division_code,household_size,status&{query}"),
            )
            .await;
        assert_eq!(reply.status, 200, "{query}: {}", reply.text());
        reply.json()["rows"].as_array().unwrap().clone()
    };
    let everyone = people();
    let count = |pred: &dyn Fn(&crate::fixture::Person) -> bool| everyone.iter().filter(|p| pred(p)).count();
    assert_eq!(rows("household_size.in=1,3").await.len(), count(&|p| matches!(p.household_size, Some(1 | 3))));
    assert_eq!(
        rows("household_size.gte=2&household_size.lt=4").await.len(),
        count(&|p| p.household_size.is_some_and(|n| (2..4).contains(&n)))
    );
    assert_eq!(rows("household_size.is_null=true").await.len(), count(&|p| p.household_size.is_none()));
    assert_eq!(rows("household_size.is_null=false").await.len(), count(&|p| p.household_size.is_some()));
    assert_eq!(
        rows("division_code.prefix=630102").await.len(),
        count(&|p| p.division_code.as_deref().is_some_and(|d| d.starts_with("630102")))
    );
    assert_eq!(
        rows("status.in=moved_out&division_code.prefix=63").await.len(),
        count(&|p| { p.status == "moved_out" && p.division_code.is_some() })
    );
    // Descending puts nulls first; ascending, last.
    let sizes = |rows: &[Value]| rows.iter().map(|r| r["household_size"].as_i64()).collect::<Vec<_>>();
    let down = sizes(&rows("sort=-household_size").await);
    let mut want: Vec<Option<i64>> = everyone.iter().map(|p| p.household_size).collect();
    want.sort_by(|a, b| match (a, b) {
        (None, None) => std::cmp::Ordering::Equal,
        (None, _) => std::cmp::Ordering::Less,
        (_, None) => std::cmp::Ordering::Greater,
        (Some(a), Some(b)) => b.cmp(a),
    });
    assert_eq!(down, want);
    let up = sizes(&rows("sort=household_size").await);
    assert_eq!(up.last(), Some(&None));
    assert_eq!(up.first(), Some(&Some(1)));
    // Refusals: a prefix on another column, an unknown sort column, a bad value.
    for (query, kind) in [
        ("status.prefix=63", "bad-request"),
        ("sort=salary", "unknown-column"),
        ("household_size.gte=big", "bad-request"),
        ("household_size.between=1", "bad-request"),
    ] {
        let problem = f.get(&f.tokens.admin, &format!("{PEOPLE_ROWS}?{query}")).await.problem(400);
        assert_eq!(problem["type"], format!("urn:civlink:problem:{kind}"), "{query}");
    }
    f.stop().await;
}

#[tokio::test]
async fn sorted_walks_by_cursor_equal_one_sorted_page() {
    let f = Fixture::start().await;
    // Counted (admin: the ID masked) and keyset (province: the ID in clear) cursors.
    for token in [&f.tokens.admin, &f.tokens.province] {
        for query in ["sort=-sex", "sort=division_code,-name", "sort=sex&division_code.is_null=false"] {
            let whole = f.get(token, &format!("{INSURED_ROWS}?limit=10000&{query}")).await.json()["rows"].clone();
            let walked = walk(&f, token, INSURED_ROWS, query, None).await;
            assert_eq!(Value::Array(walked), whole, "{query}");
        }
    }
    f.stop().await;
}
