//! The CLI as a user runs it: exit codes, reports, machine-readable output.

use std::path::PathBuf;
use std::process::{Command, Output};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

fn civlink(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_civlink")).args(args).output().expect("run civlink")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn validate_reports_invalid_rows_as_json_with_data_row_indices() {
    let standard = data("person_v1.json");
    let file = data("people.csv");
    let output =
        civlink(&["standards", "validate", standard.to_str().unwrap(), file.to_str().unwrap(), "--format", "json"]);
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["total"], 4);
    assert_eq!(report["valid"], 1);
    assert_eq!(report["invalid"], 3);
    let rows = report["invalid_rows"].as_array().unwrap();
    let indices: Vec<u64> = rows.iter().map(|r| r["row"].as_u64().unwrap()).collect();
    assert_eq!(indices, vec![1, 2, 3]);
    let keywords = |i: usize| -> Vec<(String, String)> {
        rows[i]["violations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (v["column"].as_str().unwrap().to_owned(), v["keyword"].as_str().unwrap().to_owned()))
            .collect()
    };
    let row1 = keywords(0);
    for expected in
        [("id_number", "format"), ("code", "pattern"), ("age", "type"), ("birth_date", "format"), ("amount", "type")]
    {
        assert!(row1.contains(&(expected.0.to_owned(), expected.1.to_owned())), "{expected:?} not in {row1:?}");
    }
    assert_eq!(row1.len(), 5, "{row1:?}");
    assert_eq!(keywords(1), vec![("id_number".to_owned(), "required".to_owned())]);
    assert_eq!(keywords(2), vec![(String::new(), "source".to_owned())]);
    // The ID number is sensitive: its value never appears in clear.
    assert!(!stdout(&output).contains("110105194912310021"));
}

#[test]
fn validate_reads_gbk_and_prints_a_summary() {
    let standard = data("person_v1.json");
    let file = data("people_gbk.csv");
    let output =
        civlink(&["standards", "validate", standard.to_str().unwrap(), file.to_str().unwrap(), "--encoding", "gbk"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    let has_line =
        |words: &[&str]| text.lines().any(|l| l.split_whitespace().take(words.len()).eq(words.iter().copied()));
    assert!(has_line(&["rows", "4"]), "{text}");
    assert!(has_line(&["invalid", "3"]), "{text}");
    assert!(text.contains("top violations"), "{text}");
}

#[test]
fn validate_exits_zero_on_clean_data() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clean.ndjson");
    std::fs::write(&file, "{\"id_number\": \"11010519491231002X\", \"name\": \"张三\", \"age\": 30}\n").unwrap();
    let standard = data("person_v1.json");
    let output = civlink(&["standards", "validate", standard.to_str().unwrap(), file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
}

#[test]
fn check_reports_routes_and_compatibility() {
    let v1 = data("person_v1.json");
    let v2 = data("person_v2_compatible.json");
    let v3 = data("person_v3_incompatible.json");
    let ok = civlink(&["standards", "check", v2.to_str().unwrap(), "--against", v1.to_str().unwrap()]);
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));
    assert!(stdout(&ok).contains("compatible with 1 earlier version"), "{}", stdout(&ok));

    let bad = civlink(&[
        "standards",
        "check",
        v3.to_str().unwrap(),
        "--against",
        v1.to_str().unwrap(),
        "--mode",
        "backward",
        "--format",
        "json",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
    let pointers: Vec<&str> = report["compatibility"]["incompatibilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["pointer"].as_str().unwrap())
        .collect();
    assert!(pointers.contains(&"/properties/age/maximum"), "{pointers:?}");
    assert!(pointers.iter().any(|p| p.starts_with("/required")), "{pointers:?}");

    // Forward: v2 widened age, so v1 cannot read v2's data.
    let forward =
        civlink(&["standards", "check", v2.to_str().unwrap(), "--against", v1.to_str().unwrap(), "--mode", "forward"]);
    assert_eq!(forward.status.code(), Some(1), "{}", stdout(&forward));
}

#[test]
fn malformed_standard_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.json");
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data("person_v1.json")).unwrap()).unwrap();
    doc["properties"]["code"]["format"] = serde_json::json!("postcode");
    std::fs::write(&path, doc.to_string()).unwrap();
    let output = civlink(&["standards", "check", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/properties/code/format") && stderr.contains("postcode"), "{stderr}");

    let missing = civlink(&["standards", "check", "/nonexistent/standard.json"]);
    assert_eq!(missing.status.code(), Some(2));
}
