//! Rows over HTTP: scoped and masked exactly like Flight, in a stable order,
//! with filters that act on what the principal sees, and audited.

use civlink_standards::mask::{MaskKey, MaskStrategy};
use serde_json::{Value, json};

use civlink_catalog::policy::{AuditAction, OutcomeKind};

use crate::fixture::{Fixture, PEOPLE, Person, enc, in_scope, request};

const ID_MASK: MaskStrategy = MaskStrategy::KeepEnds { first: 6, last: 4 };

/// A person as a principal without unmasked grants sees them, in column order
/// (pseudonyms keyed with the deployment's key, as Flight keys them).
fn masked(p: &Person, key: &MaskKey) -> Value {
    json!({
        "id_number": ID_MASK.apply(&p.id_number),
        "name": MaskStrategy::Name.apply(&p.name),
        "household_number": key.pseudonym(&p.household_number),
        "sex": p.sex,
        "birth_date": p.birth_date,
        "division_code": p.division_code,
        "phone": MaskStrategy::Full.apply(&p.phone),
        "household_size": p.household_size,
        "status": p.status,
    })
}

/// The sort key the API promises: primary key, then every other column
/// (the masked key is not unique), ascending with nulls last.
fn sort_key(row: &Value) -> Vec<(bool, String)> {
    row.as_object()
        .unwrap()
        .values()
        .map(|v| match v {
            Value::Null => (true, String::new()),
            Value::Number(n) => (false, format!("{:020}", n.as_i64().unwrap())),
            other => (false, other.as_str().unwrap().to_owned()),
        })
        .collect()
}

/// What a principal with this row prefix must get from `PEOPLE`, in order.
fn expected(prefix: Option<&str>, key: &MaskKey) -> Vec<Value> {
    let mut rows: Vec<Value> = in_scope(prefix).iter().map(|p| masked(p, key)).collect();
    rows.sort_by_key(sort_key);
    rows
}

#[tokio::test]
async fn every_level_gets_exactly_its_rows_masked_and_in_order() {
    let f = Fixture::start().await;
    let key = f.store.mask_key().await.unwrap();
    for (token, prefix) in [
        (&f.tokens.township, Some("630102001")),
        (&f.tokens.county, Some("630102")),
        (&f.tokens.province, Some("63")),
        (&f.tokens.admin, None),
    ] {
        let want = expected(prefix, &key);
        assert!(!want.is_empty());
        // Pages of 4 and one page of everything: the same rows in the same order.
        let paged = f.all_rows(token, PEOPLE, 4, "").await;
        assert_eq!(paged.len(), want.len(), "row count for {prefix:?}");
        assert_eq!(paged, want, "rows for {prefix:?}");
        let whole = f.all_rows(token, PEOPLE, 10_000, "").await;
        assert_eq!(whole, want);
    }
    // Truth check of the fixture itself: 9, 16, 26 and 28 rows.
    assert_eq!([9, 16, 26, 28], [Some("630102001"), Some("630102"), Some("63"), None].map(|p| in_scope(p).len()));

    // Nothing in clear reaches a principal without an unmasked grant.
    let body = f.get(&f.tokens.county, "/api/v1/datasets/gongan/population/rows?limit=100").await.text();
    for p in in_scope(Some("630102")) {
        assert!(!body.contains(&p.id_number) && !body.contains(&p.name) && !body.contains(&p.phone), "{body}");
        assert!(!body.contains(&p.household_number), "{body}");
    }
    f.stop().await;
}

#[tokio::test]
async fn pages_are_stable_and_say_where_the_next_one_starts() {
    let f = Fixture::start().await;
    let path = "/api/v1/datasets/gongan/population/rows";
    let first = f.get(&f.tokens.county, &format!("{path}?limit=5")).await;
    assert_eq!(first.header("content-type"), Some("application/json"));
    let again = f.get(&f.tokens.county, &format!("{path}?limit=5")).await;
    assert_eq!(first.body, again.body, "the same request gives the same page");
    let body = first.json();
    assert_eq!(body["dataset"], PEOPLE);
    assert_eq!((body["limit"].as_u64(), body["returned"].as_u64()), (Some(5), Some(5)));
    assert_eq!(body["rows"].as_array().unwrap().len(), 5);
    let cursor = body["next_cursor"].as_str().unwrap().to_owned();
    // The cursor is opaque: nothing of the rows shows through it.
    for p in in_scope(Some("630102")) {
        assert!(!cursor.contains(&p.id_number[..6]) || !cursor.contains(&p.id_number[14..]));
    }
    // 16 rows in pages of 5: 5, 5, 5, 1, then no next page.
    let mut sizes = vec![5];
    let mut next = Some(cursor);
    while let Some(c) = next {
        let page = f.get(&f.tokens.county, &format!("{path}?limit=5&cursor={c}")).await.json();
        sizes.push(page["returned"].as_u64().unwrap());
        next = page["next_cursor"].as_str().map(str::to_owned);
    }
    assert_eq!(sizes, [5, 5, 5, 1]);
    // Exactly a page's worth left: no next page.
    let whole = f.get(&f.tokens.county, &format!("{path}?limit=16")).await.json();
    assert_eq!((whole["returned"].as_u64(), whole["next_cursor"].clone()), (Some(16), Value::Null));
    f.stop().await;
}

#[tokio::test]
async fn columns_can_be_chosen_and_unknown_ones_are_400() {
    let f = Fixture::start().await;
    let path = "/api/v1/datasets/gongan/population/rows";
    let body = f.get(&f.tokens.township, &format!("{path}?columns=division_code,sex")).await.json();
    assert_eq!(body["columns"], json!(["division_code", "sex"]));
    for row in body["rows"].as_array().unwrap() {
        let keys: Vec<&String> = row.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["division_code", "sex"]);
        assert!(row["division_code"].as_str().unwrap().starts_with("630102001"));
    }
    assert_eq!(body["rows"].as_array().unwrap().len(), 9);

    for query in ["columns=salary", "columns=name,salary", "salary=1"] {
        let problem = f.get(&f.tokens.township, &format!("{path}?{query}")).await.problem(400);
        assert_eq!(problem["type"], "urn:civlink:problem:unknown-column");
        assert_eq!(problem["column"], "salary");
    }
    // A column outside the principal's grant is unknown to it, like one that does not exist.
    let insured = "/api/v1/datasets/renshe/insured_people/rows";
    let outside = f.get(&f.tokens.province, &format!("{insured}?columns=phone")).await.problem(400);
    assert_eq!(outside["type"], "urn:civlink:problem:unknown-column");
    let admin = f.get(&f.tokens.admin, &format!("{insured}?columns=phone&limit=1")).await;
    assert_eq!(admin.status, 200, "{}", admin.text());

    for query in
        ["limit=0", "limit=10001", "limit=1000000000", "limit=ten", "offset=5", "limit=1&limit=2", "columns=a,,b"]
    {
        let problem = f.get(&f.tokens.township, &format!("{path}?{query}")).await.problem(400);
        assert_eq!(problem["type"], "urn:civlink:problem:bad-request", "{query}");
    }
    // A typed column takes values of its type.
    let problem = f.get(&f.tokens.township, &format!("{path}?household_size=two")).await.problem(400);
    assert!(problem["detail"].as_str().unwrap().contains("integer"), "{problem}");
    f.stop().await;
}

#[tokio::test]
async fn filters_see_what_the_principal_sees_and_are_no_oracle() {
    let f = Fixture::start().await;
    let key = f.store.mask_key().await.unwrap();
    let township = &f.tokens.township;
    let path = "/api/v1/datasets/gongan/population/rows";
    let rows = async |token: &str, query: &str| -> Vec<Value> {
        let reply = f.get(token, &format!("{path}?limit=10000&{query}")).await;
        assert_eq!(reply.status, 200, "{query}: {}", reply.text());
        reply.json()["rows"].as_array().unwrap().clone()
    };
    let mine = in_scope(Some("630102001"));
    let outsider = in_scope(Some("630103")).remove(0);

    // Unmasked columns filter as usual, inside the scope only.
    let want: Vec<Value> = expected(Some("630102001"), &key).into_iter().filter(|r| r["sex"] == "1").collect();
    assert!(!want.is_empty());
    assert_eq!(rows(township, "sex=1").await, want);
    let want: Vec<Value> = expected(Some("630102001"), &key).into_iter().filter(|r| r["household_size"] == 2).collect();
    assert_eq!(rows(township, "household_size=2").await, want);
    // Rows outside the scope cannot be reached by naming them.
    assert_eq!(
        rows(township, &format!("division_code={}", outsider.division_code.unwrap())).await,
        Vec::<Value>::new()
    );
    assert_eq!(rows(township, &format!("birth_date={}", outsider.birth_date)).await.len(), 0);

    // A clear value never matches a masked column: no lookups behind the mask.
    for p in &mine {
        assert_eq!(rows(township, &format!("name={}", enc(&p.name))).await, Vec::<Value>::new(), "{}", p.name);
        assert_eq!(rows(township, &format!("id_number={}", p.id_number)).await, Vec::<Value>::new());
        assert_eq!(rows(township, &format!("phone={}", p.phone)).await, Vec::<Value>::new());
    }
    // The masked value matches what it shows, and nothing more.
    let shown = masked(&mine[0], &key);
    let want: Vec<Value> =
        expected(Some("630102001"), &key).into_iter().filter(|r| r["name"] == shown["name"]).collect();
    let got = rows(township, &format!("name={}", enc(shown["name"].as_str().unwrap()))).await;
    assert_eq!(got, want);

    // A pseudonym is a join key: filtering by it finds the household's rows
    // (in scope), while the clear household number finds nothing.
    let household = &mine[0].household_number;
    let want: Vec<Value> = expected(Some("630102001"), &key)
        .into_iter()
        .filter(|r| r["household_number"] == key.pseudonym(household).as_str())
        .collect();
    assert!(!want.is_empty());
    assert_eq!(rows(township, &format!("household_number={}", key.pseudonym(household))).await, want);
    assert_eq!(rows(township, &format!("household_number={household}")).await, Vec::<Value>::new());

    // With an unmasked grant the same filter finds the person (province, 参保 dataset).
    let insured = "/api/v1/datasets/renshe/insured_people/rows";
    let target = &mine[0];
    let reply = f.get(&f.tokens.province, &format!("{insured}?id_number={}", target.id_number)).await.json();
    assert_eq!(
        reply["rows"],
        json!([{"id_number": target.id_number, "name": target.name, "sex": target.sex, "division_code": target.division_code}])
    );
    f.stop().await;
}

#[tokio::test]
async fn row_requests_are_audited_with_purpose_and_counts() {
    let f = Fixture::start().await;
    let auth = format!("Bearer {}", f.tokens.township);
    let purpose = "低保复核 2025";
    let path = "/api/v1/datasets/gongan/population/rows?limit=4&sex=1";
    let reply = request(f.addr, "GET", path, &[("Authorization", &auth), ("x-civlink-purpose", purpose)], None).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let returned = reply.json()["rows"].as_array().unwrap().len() as u64;
    let more = !reply.json()["next_cursor"].is_null();
    let bad = f.get(&f.tokens.township, "/api/v1/datasets/gongan/population/rows?columns=salary").await;
    bad.problem(400);
    let hidden = f.get(&f.tokens.township, "/api/v1/datasets/renshe/insured_people/rows").await;
    hidden.problem(404);

    let entries = f.store.audit_entries(None).await.unwrap();
    let rows: Vec<_> = entries.iter().map(|r| &r.entry).filter(|e| e.action == AuditAction::RestRows).collect();
    // The read: an entry before its rows leave, one when it ends; then the two refusals.
    assert_eq!(rows.len(), 4, "{rows:#?}");
    let (started, ok) = (rows[0], rows[1]);
    assert_eq!(started.outcome.kind, OutcomeKind::Started);
    for e in [started, ok] {
        assert_eq!(e.principal, "township");
        assert_eq!(e.purpose.as_deref(), Some(purpose));
        assert_eq!(e.datasets, [PEOPLE]);
        assert_eq!(e.sql_text.as_deref(), Some(format!("GET {path}").as_str()));
    }
    assert!(ok.outcome.is_ok());
    // One more row than the page is read, to know whether another page follows.
    assert_eq!(ok.rows, Some(returned + u64::from(more)));
    assert_eq!(rows[2].outcome.kind, OutcomeKind::Error, "{:?}", rows[2].outcome);
    assert_eq!(rows[3].outcome.kind, OutcomeKind::Error, "{:?}", rows[3].outcome);
    assert!(f.store.verify_audit().await.unwrap().intact());
    f.stop().await;
}

#[tokio::test]
async fn rows_need_a_token() {
    let f = Fixture::start().await;
    let reply = request(f.addr, "GET", "/api/v1/datasets/gongan/population/rows", &[], None).await;
    reply.problem(401);
    f.stop().await;
}

#[tokio::test]
async fn a_query_past_its_time_limit_is_503_and_audited() {
    // A limit that has passed before the query starts, whether the table comes from storage or the cache.
    let limits = civlink_query::Limits { query_timeout: std::time::Duration::from_nanos(1), ..Default::default() };
    let f = Fixture::with_limits(limits).await;
    let body = f.get(&f.tokens.county, "/api/v1/datasets/gongan/population/rows").await.problem(503);
    assert_eq!(body["type"], "urn:civlink:problem:query-timeout");
    // Metadata needs no query and still answers.
    assert_eq!(f.get(&f.tokens.county, "/api/v1/datasets").await.status, 200);
    let entries = f.store.audit_entries(None).await.unwrap();
    let last = entries.iter().rev().find(|r| r.entry.action == AuditAction::RestRows).unwrap();
    assert_eq!(last.entry.outcome.kind, OutcomeKind::Limit, "{:?}", last.entry.outcome);
    f.stop().await;
}

#[tokio::test]
async fn query_slots_are_the_query_layers() {
    let limits = civlink_query::Limits { max_concurrent_per_principal: 1, ..Default::default() };
    let f = Fixture::with_limits(limits).await;
    // A slot held elsewhere (a Flight query of the same principal, say) refuses a REST read.
    let held = f.factory.slots().acquire("county").unwrap();
    let body = f.get(&f.tokens.county, "/api/v1/datasets/gongan/population/rows").await.problem(429);
    assert_eq!(body["type"], "urn:civlink:problem:too-many-queries");
    assert_eq!(f.get(&f.tokens.township, "/api/v1/datasets/gongan/population/rows").await.status, 200);
    drop(held);
    assert_eq!(f.get(&f.tokens.county, "/api/v1/datasets/gongan/population/rows").await.status, 200);
    f.stop().await;
}
