//! Listing and describing datasets: per principal, with access and masks;
//! unreadable datasets answer exactly like unknown ones.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::fixture::{ARCHIVE, Fixture, INSURED, PEOPLE};

fn ids(body: &Value) -> BTreeSet<String> {
    body["datasets"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap().to_owned()).collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn each_principal_lists_what_it_may_read() {
    let f = Fixture::start().await;
    let list = async |token: &str| f.get(token, "/api/v1/datasets").await.json();

    assert_eq!(ids(&list(&f.tokens.township).await), set(&[PEOPLE]));
    assert_eq!(ids(&list(&f.tokens.county).await), set(&[PEOPLE]));
    // The grant opens the conditional dataset to the province analyst.
    assert_eq!(ids(&list(&f.tokens.province).await), set(&[PEOPLE, INSURED]));
    // 公安 owns the not-shared archive; admin reads everything.
    assert_eq!(ids(&list(&f.tokens.gongan).await), set(&[PEOPLE, ARCHIVE]));
    assert_eq!(ids(&list(&f.tokens.admin).await), set(&[PEOPLE, INSURED, ARCHIVE]));

    let county = list(&f.tokens.county).await;
    let people = &county["datasets"][0];
    assert_eq!(people["department"], "gongan");
    assert_eq!(people["name"], "population");
    assert_eq!(people["title"], "户籍人口信息");
    assert_eq!(people["sharing"], "unconditional");
    assert_eq!(people["classification"], "sensitive");
    assert_eq!(people["update_cycle"], "daily");
    assert!(people["latest_version"].is_i64(), "{people}");
    assert_eq!(people["scope"], json!({"division_column": "division_code", "row_prefix": "630102"}));
    let mask = |body: &Value, column: &str| -> Value {
        body["columns"].as_array().unwrap().iter().find(|c| c["name"] == column).unwrap()["mask"].clone()
    };
    assert_eq!(mask(people, "id_number"), json!({"strategy": "keep_ends", "first": 6, "last": 4}));
    assert_eq!(mask(people, "name"), json!({"strategy": "name"}));
    assert_eq!(mask(people, "phone"), json!({"strategy": "full"}));
    assert_eq!(mask(people, "household_number"), json!({"strategy": "pseudonym"}));
    assert_eq!(mask(people, "sex"), json!({"strategy": "none"}));
    assert_eq!(people["columns"].as_array().unwrap().len(), 9);

    // The province analyst's grant: four columns, in clear.
    let province = list(&f.tokens.province).await;
    let insured = province["datasets"].as_array().unwrap().iter().find(|d| d["id"] == INSURED).unwrap().clone();
    let columns: Vec<&str> =
        insured["columns"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(columns, ["id_number", "name", "sex", "division_code"]);
    assert_eq!(mask(&insured, "name"), json!({"strategy": "none"}));
    assert_eq!(insured["scope"]["row_prefix"], "63");

    // Admin: every row.
    let admin = list(&f.tokens.admin).await;
    let people = admin["datasets"].as_array().unwrap().iter().find(|d| d["id"] == PEOPLE).unwrap().clone();
    assert_eq!(people["scope"]["row_prefix"], Value::Null);
    f.stop().await;
}

#[tokio::test]
async fn describing_a_dataset_shows_the_principals_access() {
    let f = Fixture::start().await;
    let reply = f.get(&f.tokens.township, "/api/v1/datasets/gongan/population").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["id"], PEOPLE);
    assert_eq!(body["owner"], "测试处");
    assert_eq!(body["standard"], json!({"id": "test.people", "version": "1.0.0"}));
    assert_eq!(body["primary_key"], json!(["id_number"]));
    assert_eq!(body["scope"]["row_prefix"], "630102001");
    let household = body["columns"].as_array().unwrap().iter().find(|c| c["name"] == "household_size").unwrap();
    assert_eq!(household["type"], "integer");
    assert_eq!(household["title"], "家庭人口数");
    assert_eq!(body["rows_url"], "/api/v1/datasets/gongan/population/rows");
    f.stop().await;
}

#[tokio::test]
async fn unreadable_datasets_are_the_same_404_as_unknown_ones() {
    let f = Fixture::start().await;
    let county = &f.tokens.county;
    // Registered but not shared with 民政 / conditional without a grant / not registered at all.
    let archive = f.get(county, "/api/v1/datasets/gongan/population_archive").await;
    let insured = f.get(county, "/api/v1/datasets/renshe/insured_people").await;
    let unknown = f.get(county, "/api/v1/datasets/gongan/no_such_dataset").await;
    let malformed = f.get(county, "/api/v1/datasets/police/Bad-Name").await;
    for reply in [&archive, &insured, &unknown, &malformed] {
        reply.problem(404);
    }
    assert_eq!(archive.body, unknown.body);
    assert_eq!(insured.body, unknown.body);
    assert_eq!(malformed.body, unknown.body);
    // The same for rows.
    let archive = f.get(county, "/api/v1/datasets/gongan/population_archive/rows").await;
    let unknown = f.get(county, "/api/v1/datasets/gongan/no_such_dataset/rows").await;
    archive.problem(404);
    assert_eq!(archive.body, unknown.body);
    // The owner reads the archive: no version yet, so no rows.
    let reply = f.get(&f.tokens.gongan, "/api/v1/datasets/gongan/population_archive").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["latest_version"], Value::Null);
    let rows = f.get(&f.tokens.gongan, "/api/v1/datasets/gongan/population_archive/rows").await.json();
    assert_eq!(rows["rows"], json!([]));
    assert_eq!(rows["next_offset"], Value::Null);
    f.stop().await;
}

#[tokio::test]
async fn datasets_are_searched_and_described_in_full() {
    let f = Fixture::start().await;
    let search = async |query: &str| {
        let reply = f.get(&f.tokens.admin, &format!("/api/v1/datasets?{query}")).await;
        assert_eq!(reply.status, 200, "{query}: {}", reply.text());
        ids(&reply.json())
    };
    assert_eq!(search("department=gongan").await, set(&[PEOPLE, ARCHIVE]));
    assert_eq!(search("sharing=conditional").await, set(&[INSURED]));
    assert_eq!(search("classification=sensitive&department=renshe").await, set(&[INSURED]));
    assert_eq!(search("q=%E6%A1%A3%E6%A1%88").await, set(&[ARCHIVE]), "档案 in the title");
    assert_eq!(search("q=POPULATION").await, set(&[PEOPLE, ARCHIVE]), "case-insensitive, in the id");
    assert_eq!(search("department=nowhere").await, set(&[]));
    assert_eq!(
        f.get(&f.tokens.admin, "/api/v1/datasets?colour=red").await.problem(400)["type"],
        "urn:civlink:problem:bad-request"
    );
    // Search never widens what a principal may read.
    let county = f.get(&f.tokens.county, "/api/v1/datasets?department=renshe").await.json();
    assert_eq!(ids(&county), set(&[]));

    let record = f.get(&f.tokens.county, "/api/v1/datasets/gongan/population").await.json();
    assert_eq!(record["id"], PEOPLE);
    assert_eq!(record["json_schema"]["x-civlink-id"], record["standard"]["id"]);
    assert!(record["arrow_schema"].as_array().unwrap().iter().any(|f| f["name"] == "id_number"));
    assert_eq!(record["versions"].as_array().unwrap().len(), 1);
    assert_eq!(record["versions"][0]["rows_written"], 28);
    assert_eq!(record["latest_quality"]["counts"]["written"], 28);
    assert!(record["lineage"]["sources"].is_array() && record["lineage"]["rules"].is_array(), "{record}");
    f.stop().await;
}
