//! The standards registry, Arrow schemas, diffs, deprecation and code tables.

use serde_json::json;

use crate::fixture::Fixture;
use crate::standards::standard;

#[tokio::test]
async fn the_registry_lists_diffs_and_deprecates_versions() {
    let f = Fixture::start().await;
    let publish = async |doc: &str| {
        let reply = f.post(&f.tokens.standards, "/api/v1/standards?compatibility=none", doc).await;
        assert_eq!(reply.status, 201, "{}", reply.text());
    };
    publish(&standard("1.0.0", r#", "size": {"type": "integer", "title": "大小"}"#, &[])).await;
    publish(&standard("2.0.0", r#", "owner": {"type": "string", "title": "所有人"}"#, &["owner"])).await;

    let list = f.get(&f.tokens.county, "/api/v1/standards").await.json();
    let things = list["standards"].as_array().unwrap().iter().find(|s| s["id"] == "test.things").unwrap().clone();
    assert_eq!(things["latest"], "2.0.0");
    assert_eq!(things["versions"].as_array().unwrap().len(), 2);
    assert_eq!(things["versions"][0]["deprecated_at"], json!(null));

    let diff = f.get(&f.tokens.county, "/api/v1/standards/test.things/diff?from=1.0.0&to=2.0.0").await.json();
    assert_eq!(diff["added"], json!(["owner"]));
    assert_eq!(diff["removed"], json!(["size"]));
    assert_eq!(diff["compatible"], false, "a new required column breaks backward compatibility");
    assert!(!diff["incompatibilities"].as_array().unwrap().is_empty());
    let same = f.get(&f.tokens.county, "/api/v1/standards/test.things/diff?from=1.0.0&to=1.0.0").await.json();
    assert_eq!((same["added"].clone(), same["compatible"].clone()), (json!([]), json!(true)));
    f.get(&f.tokens.county, "/api/v1/standards/test.things/diff?from=1.0.0&to=9").await.problem(404);
    f.get(&f.tokens.county, "/api/v1/standards/test.things/diff?from=1.0.0").await.problem(400);

    let arrow = f.get(&f.tokens.county, "/api/v1/standards/test.things/2.0.0/arrow").await.json();
    let fields = arrow["fields"].as_array().unwrap();
    assert_eq!(fields.iter().map(|f| f["name"].as_str().unwrap()).collect::<Vec<_>>(), ["code", "owner"]);
    assert_eq!(fields[0]["type"], "Utf8");
    assert_eq!(fields[0]["title"], "代码");

    // Deprecation: standards admins only, with a reason; the first one is kept.
    let path = "/api/v1/standards/test.things/1.0.0/deprecate";
    f.post(&f.tokens.county, path, r#"{"reason": "x"}"#).await.problem(403);
    f.post(&f.tokens.standards, path, r#"{"reason": " "}"#).await.problem(400);
    f.post(&f.tokens.standards, path, r#"{"why": "x"}"#).await.problem(400);
    f.post(&f.tokens.standards, "/api/v1/standards/test.things/7.0.0/deprecate", r#"{"reason": "x"}"#)
        .await
        .problem(404);
    let done = f.post(&f.tokens.standards, path, r#"{"reason": "2.0.0 records the owner"}"#).await;
    assert_eq!(done.status, 200, "{}", done.text());
    let again = f.post(&f.tokens.standards, path, r#"{"reason": "other"}"#).await.json();
    assert_eq!(again["deprecation_reason"], "2.0.0 records the owner");
    let list = f.get(&f.tokens.county, "/api/v1/standards").await.json();
    let things = list["standards"].as_array().unwrap().iter().find(|s| s["id"] == "test.things").unwrap().clone();
    assert!(things["versions"][0]["deprecated_at"].is_string());
    assert_eq!(things["versions"][1]["deprecated_at"], json!(null));
    f.stop().await;
}

#[tokio::test]
async fn code_tables_are_listed_with_their_entries() {
    let f = Fixture::start().await;
    let list = f.get(&f.tokens.county, "/api/v1/code-tables").await.json();
    let sex = list["code_tables"].as_array().unwrap().iter().find(|t| t["name"] == "sex").unwrap().clone();
    assert!(sex["standard"].as_str().unwrap().contains("2261"));
    let table = f.get(&f.tokens.county, "/api/v1/code-tables/sex").await.json();
    let entries = table["entries"].as_array().unwrap();
    assert_eq!(entries.len() as u64, sex["entries"].as_u64().unwrap());
    assert!(entries.iter().any(|e| e["code"] == "1" && e["label"].as_str().unwrap().contains('男')));
    f.get(&f.tokens.county, "/api/v1/code-tables/nope").await.problem(404);
    f.stop().await;
}
