//! NDJSON and JSON-array reading.

use std::path::PathBuf;

use civlink_connectors::file::{self, CsvOptions, Error, FileFormat, JsonReader};

use crate::Collected;

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write test file");
    path
}

fn read(path: &std::path::Path, format: FileFormat, batch_size: usize) -> (Vec<String>, Collected) {
    let reader = JsonReader::open(path, format, batch_size).expect("open");
    let names = reader.schema().fields().iter().map(|f| f.name().clone()).collect();
    let batches = reader.collect::<Result<Vec<_>, _>>().expect("read");
    (names, Collected::from_batches(batches))
}

#[test]
fn ndjson_with_broken_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = concat!(
        "{\"姓名\":\"张三\",\"年龄\":30,\"已婚\":true,\"标签\":[\"a\",1]}\n",
        "\n",
        "{\"姓名\":\"李四\",\"年龄\": 41 \n",
        "[1,2]\n",
        "{\"年龄\":null,\"姓名\":\"王五\",\"地址\":{\"市\":\"杭州\"}}\r\n",
    );
    let path = write(&dir, "a.ndjson", text);
    let (names, got) = read(&path, FileFormat::Ndjson, 100);
    assert_eq!(names, ["姓名", "年龄", "已婚", "标签", "地址"]);
    got.assert_conserved(4);
    assert_eq!(got.row(0), ["张三", "30", "true", "[\"a\",1]", "∅"]);
    assert_eq!(got.row(1), ["王五", "∅", "∅", "∅", "{\"市\":\"杭州\"}"]);
    let positions: Vec<(u64, u64)> = got.rows.iter().map(|r| (r.0, r.1)).collect();
    assert_eq!(positions, [(0, 1), (3, 5)]);
    let rejects: Vec<(u64, u64)> = got.rejects.iter().map(|r| (r.row_index, r.line)).collect();
    assert_eq!(rejects, [(1, 3), (2, 4)]);
    assert!(got.rejects[0].reason.starts_with("invalid JSON"), "{}", got.rejects[0].reason);
    assert_eq!(got.rejects[0].raw, "{\"姓名\":\"李四\",\"年龄\": 41 ");
    assert_eq!(got.rejects[1].reason, "not a JSON object (found an array)");
}

#[test]
fn ndjson_invalid_utf8_and_duplicate_keys_are_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.jsonl");
    std::fs::write(&path, b"\xEF\xBB\xBF{\"a\":\"1\"}\n{\"a\":\"\xFF\"}\n{\"a\":1,\"a\":2}\n{\"a\":\"\"}\n").unwrap();
    let (names, got) = read(&path, FileFormat::Ndjson, 2);
    assert_eq!(names, ["a"]);
    got.assert_conserved(4);
    assert_eq!(got.rows[1].2, [Some(String::new())]);
    let reasons: Vec<&str> = got.rejects.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(reasons, ["invalid UTF-8", "duplicate field a"]);
    assert_eq!(got.batch_sizes, [(1, 1), (1, 1)]);
}

#[test]
fn ndjson_keys_after_inference_are_rejected_not_dropped() {
    let mut text = String::new();
    for i in 0..1000 {
        text.push_str(&format!("{{\"id\":{i}}}\n"));
    }
    text.push_str("{\"id\":1000,\"late\":\"x\"}\n{\"id\":1001}\n");
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "a.ndjson", &text);
    let (names, got) = read(&path, FileFormat::Ndjson, 300);
    assert_eq!(names, ["id"]);
    got.assert_conserved(1002);
    assert_eq!(got.rejects.len(), 1);
    assert_eq!((got.rejects[0].row_index, got.rejects[0].line), (1000, 1001));
    assert!(got.rejects[0].reason.starts_with("unexpected field late"), "{}", got.rejects[0].reason);
    assert_eq!(got.row(1000), ["1001"]);
}

#[test]
fn json_array_streams_elements() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[\n  {\"id\": 1, \"名称\": \"甲\"},\n  {\"id\": 2, \"名称\": \"乙, [丙]\"},\n  {\"id\": 3,, },\n  {\"id\": 12345678901234567890123, \"名称\": null},\n  {\"id\": 5}\n]\n";
    let path = write(&dir, "a.json", text);
    assert_eq!(FileFormat::from_path(&path), Some(FileFormat::JsonArray));
    let (names, got) = read(&path, FileFormat::JsonArray, 2);
    assert_eq!(names, ["id", "名称"]);
    got.assert_conserved(5);
    assert_eq!(got.row(0), ["1", "甲"]);
    assert_eq!(got.row(1), ["2", "乙, [丙]"]);
    assert_eq!(got.row(2), ["12345678901234567890123", "∅"]);
    assert_eq!(got.row(3), ["5", "∅"]);
    let lines: Vec<u64> = got.rows.iter().map(|r| r.1).collect();
    assert_eq!(lines, [1, 2, 4, 5]);
    let reject = &got.rejects[0];
    assert_eq!((reject.row_index, reject.line), (2, 3));
    assert_eq!(reject.raw, "{\"id\": 3,, }");
    assert!(reject.reason.contains("element starts at line 4"), "{}", reject.reason);
    assert_eq!(got.batch_sizes, [(2, 0), (1, 1), (1, 0)]);
}

#[test]
fn json_extension_with_objects_per_line_is_ndjson() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "a.json", "{\"a\":1}\n{\"a\":2}\n");
    let batches: Vec<_> =
        file::open(&path, None, CsvOptions::default(), 10).unwrap().collect::<Result<_, _>>().unwrap();
    let got = Collected::from_batches(batches);
    got.assert_conserved(2);
    assert_eq!(got.rows[1].1, 2);
}

#[test]
fn truncated_json_array_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "a.json", "[{\"a\":\"1\"}, {\"a\":\"2\"}, {\"a\":");
    let results: Vec<_> = JsonReader::open(&path, FileFormat::JsonArray, 10).unwrap().collect();
    assert_eq!(results.len(), 2);
    let batch = results[0].as_ref().unwrap();
    assert_eq!((batch.batch.num_rows(), batch.rejects.len()), (2, 1));
    assert!(matches!(&results[1], Err(Error::Json { .. })));
}

#[test]
fn objects_without_keys_make_zero_column_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "a.ndjson", "{}\n{ }\n");
    let (names, got) = read(&path, FileFormat::Ndjson, 10);
    assert!(names.is_empty());
    got.assert_conserved(2);
}
