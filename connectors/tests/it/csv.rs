//! CSV reading: encodings, headers, rejects, positions, batching.

use std::path::PathBuf;

use civlink_connectors::file::{self, CsvOptions, CsvReader, Encoding, Error, FileFormat};

use crate::Collected;

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write test file");
    path
}

fn read(path: &std::path::Path, options: CsvOptions) -> (Vec<String>, Collected) {
    let reader = CsvReader::open(path, options).expect("open");
    let names = reader.schema().fields().iter().map(|f| f.name().clone()).collect();
    let batches = reader.collect::<Result<Vec<_>, _>>().expect("read");
    (names, Collected::from_batches(batches))
}

fn encode(text: &str, encoding: &'static encoding_rs::Encoding) -> Vec<u8> {
    let (bytes, _, unmappable) = encoding.encode(text);
    assert!(!unmappable, "test text not representable");
    bytes.into_owned()
}

const CHINESE: &str = "姓名,身份证号,地址\n张三,110101199003071234,北京市东城区\n李四,,上海市\"浦东\"新区\n";

fn check_chinese(names: &[String], got: &Collected) {
    assert_eq!(names, ["姓名", "身份证号", "地址"]);
    got.assert_conserved(2);
    assert_eq!(got.row(0), ["张三", "110101199003071234", "北京市东城区"]);
    assert_eq!(got.row(1), ["李四", "∅", "上海市\"浦东\"新区"]);
    assert_eq!(got.rows[0].1, 2);
    assert_eq!(got.rows[1].1, 3);
}

#[test]
fn utf8_without_bom() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "a.csv", CHINESE.as_bytes());
    let (names, got) = read(&path, CsvOptions::default());
    check_chinese(&names, &got);
}

#[test]
fn utf8_with_bom() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(CHINESE.as_bytes());
    let path = write(&dir, "a.csv", &bytes);
    let (names, got) = read(&path, CsvOptions::default());
    check_chinese(&names, &got);
}

#[test]
fn gbk_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "a.csv", &encode(CHINESE, encoding_rs::GBK));
    let options = CsvOptions { encoding: Encoding::Gbk, ..CsvOptions::default() };
    let (names, got) = read(&path, options);
    check_chinese(&names, &got);
}

#[test]
fn gb18030_file_with_four_byte_characters() {
    let text = "姓名,备注\n𠮷野家,€5\n";
    // 𠮷 (U+20BB7) only exists in GB 18030, as a four-byte sequence.
    let bytes = encode(text, encoding_rs::GB18030);
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "a.csv", &bytes);
    let options = CsvOptions { encoding: "GB18030".parse().unwrap(), ..CsvOptions::default() };
    let (names, got) = read(&path, options);
    assert_eq!(names, ["姓名", "备注"]);
    got.assert_conserved(1);
    assert_eq!(got.row(0), ["𠮷野家", "€5"]);
}

#[test]
fn gbk_large_file_crosses_decoder_buffers() {
    // Many rows, so two-byte characters straddle the 64 KiB read buffers.
    let mut text = String::from("编号,名称\n");
    for i in 0..20_000 {
        text.push_str(&format!("{i},民政局第{i}号记录\n"));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "a.csv", &encode(&text, encoding_rs::GBK));
    let options = CsvOptions { encoding: Encoding::Gbk, batch_size: 4096, ..CsvOptions::default() };
    let (_, got) = read(&path, options);
    got.assert_conserved(20_000);
    assert!(got.rejects.is_empty());
    assert_eq!(got.row(12_345), ["12345", "民政局第12345号记录"]);
    assert_eq!(got.rows[12_345].1, 12_347);
    assert_eq!(got.batch_sizes.len(), 5);
}

#[test]
fn invalid_gbk_bytes_reject_the_row_only() {
    let mut bytes = encode("姓名,地址\n张三,北京\n", encoding_rs::GBK);
    // 0x81 followed by 0x20 is not a GBK sequence.
    bytes.extend_from_slice(b"\x81 ,x\n");
    bytes.extend_from_slice(&encode("李四,上海\n", encoding_rs::GBK));
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "a.csv", &bytes);
    let options = CsvOptions { encoding: Encoding::Gbk, ..CsvOptions::default() };
    let (_, got) = read(&path, options);
    got.assert_conserved(3);
    assert_eq!(got.row(0), ["张三", "北京"]);
    assert_eq!(got.row(1), ["李四", "上海"]);
    assert_eq!(got.rows[1].1, 4);
    let reject = &got.rejects[0];
    assert_eq!((reject.row_index, reject.line), (1, 3));
    assert_eq!(reject.reason, "invalid GBK byte sequence");
    assert!(reject.raw.contains('\u{FFFD}'));
}

#[test]
fn gbk_file_read_as_utf8_is_a_clear_header_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "a.csv", &encode(CHINESE, encoding_rs::GBK));
    match CsvReader::open(&path, CsvOptions::default()) {
        Err(Error::HeaderEncoding { line: 1, encoding, .. }) => assert_eq!(encoding, Encoding::Utf8),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("GBK header accepted as UTF-8"),
    }
}

#[test]
fn invalid_utf8_line_is_rejected_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "a.csv", b"a,b\n1,x\n2,\xFF\xFEbad\n3,z\n");
    let (_, got) = read(&path, CsvOptions::default());
    got.assert_conserved(3);
    assert_eq!(got.row(0), ["1", "x"]);
    assert_eq!(got.row(1), ["3", "z"]);
    assert_eq!(got.rows[1].0, 2);
    let reject = &got.rejects[0];
    assert_eq!((reject.row_index, reject.line), (1, 3));
    assert_eq!(reject.reason, "invalid UTF-8");
    assert_eq!(reject.raw, "2,\u{FFFD}\u{FFFD}bad");
}

#[test]
fn custom_delimiter_and_quote() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "a.txt", b"id|name|note\n1|'a|b'|'it''s'\n2|plain|\n");
    let options = CsvOptions { delimiter: b'|', quote: b'\'', ..CsvOptions::default() };
    let (names, got) = read(&path, options);
    assert_eq!(names, ["id", "name", "note"]);
    got.assert_conserved(2);
    assert_eq!(got.row(0), ["1", "a|b", "it's"]);
    assert_eq!(got.row(1), ["2", "plain", "∅"]);
}

#[test]
fn tab_delimiter_from_configuration() {
    let options: CsvOptions =
        serde_json::from_str(r#"{"delimiter": "\t", "encoding": "utf-8", "batch_size": 10}"#).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "a.txt", b"a\tb\n1\t2\n");
    let (_, got) = read(&path, options);
    got.assert_conserved(1);
    assert_eq!(got.row(0), ["1", "2"]);
}

#[test]
fn no_header_with_column_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "a.csv", b"1,Alice\n2,Bob\n3\n");
    let options = CsvOptions {
        has_header: false,
        column_names: Some(vec![" id ".into(), "name".into()]),
        ..CsvOptions::default()
    };
    let (names, got) = read(&path, options);
    assert_eq!(names, ["id", "name"]);
    got.assert_conserved(3);
    assert_eq!(got.row(0), ["1", "Alice"]);
    assert_eq!(got.rows[0].1, 1);
    assert_eq!(got.row(1), ["2", "Bob"]);
    assert_eq!((got.rejects[0].row_index, got.rejects[0].line), (2, 3));
    assert_eq!(got.rejects[0].reason, "ragged row: 1 fields, header has 2");
}

#[test]
fn empty_field_is_null_but_blank_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "a.csv", b"a,b,c\n,\"\", \n");
    let (_, got) = read(&path, CsvOptions::default());
    got.assert_conserved(1);
    assert_eq!(got.rows[0].2, [None, None, Some(" ".to_owned())]);
}

#[test]
fn header_names_are_trimmed_and_deduplicated() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "a.csv", " 姓名 ,姓名,,备注\n1,2,3,4\n".as_bytes());
    let (names, got) = read(&path, CsvOptions::default());
    assert_eq!(names, ["姓名", "姓名_2", "column_3", "备注"]);
    got.assert_conserved(1);
}

#[test]
fn ragged_rows_are_rejects_in_row_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "a.csv", b"a,b,c\n1,2,3\n4,5\n6,7,8\n9,10,11,12\n13,14,15\n");
    let (_, got) = read(&path, CsvOptions::default());
    got.assert_conserved(5);
    let good: Vec<(u64, u64)> = got.rows.iter().map(|r| (r.0, r.1)).collect();
    assert_eq!(good, [(0, 2), (2, 4), (4, 6)]);
    assert_eq!(got.row(1), ["6", "7", "8"]);
    let rejects: Vec<_> =
        got.rejects.iter().map(|r| (r.row_index, r.line, r.raw.as_str(), r.reason.as_str())).collect();
    assert_eq!(
        rejects,
        [
            (1, 3, "4,5", "ragged row: 2 fields, header has 3"),
            (3, 5, "9,10,11,12", "ragged row: 4 fields, header has 3"),
        ]
    );
}

#[test]
fn multi_line_quoted_fields_report_start_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "a.csv", "id,地址\n1,\"第一行\n第二行\n第三行\"\n2,x\n3,\"a\r\nb\"\r\n4,y\n".as_bytes());
    let (_, got) = read(&path, CsvOptions::default());
    got.assert_conserved(4);
    let lines: Vec<u64> = got.rows.iter().map(|r| r.1).collect();
    assert_eq!(lines, [2, 5, 6, 8]);
    assert_eq!(got.row(0), ["1", "第一行\n第二行\n第三行"]);
    assert_eq!(got.row(2), ["3", "a\r\nb"]);
}

#[test]
fn batch_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "a.csv", b"a\n1\n2\n3\n4\n5\n");
    let options = CsvOptions { batch_size: 2, ..CsvOptions::default() };
    let batches: Vec<_> = CsvReader::open(&path, options).unwrap().collect::<Result<_, _>>().unwrap();
    let shape: Vec<(u64, usize, Vec<u64>)> =
        batches.iter().map(|b| (b.first_row, b.batch.num_rows(), b.lines.clone())).collect();
    assert_eq!(shape, [(0, 2, vec![2, 3]), (2, 2, vec![4, 5]), (4, 1, vec![6])]);
    Collected::from_batches(batches).assert_conserved(5);
}

#[test]
fn batch_of_only_rejects_is_still_emitted() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "a.csv", b"a,b\n1,2\n3,4\nx\ny\n5,6\n");
    let options = CsvOptions { batch_size: 2, ..CsvOptions::default() };
    let batches: Vec<_> = CsvReader::open(&path, options).unwrap().collect::<Result<_, _>>().unwrap();
    let shape: Vec<(u64, usize, usize)> =
        batches.iter().map(|b| (b.first_row, b.batch.num_rows(), b.rejects.len())).collect();
    assert_eq!(shape, [(0, 2, 0), (2, 0, 2), (4, 1, 0)]);
    let got = Collected::from_batches(batches);
    got.assert_conserved(5);
    let rejects: Vec<(u64, u64)> = got.rejects.iter().map(|r| (r.row_index, r.line)).collect();
    assert_eq!(rejects, [(2, 4), (3, 5)]);
}

#[test]
fn streams_many_rows_with_default_batches() {
    let mut text = String::from("id,name,note\n");
    for i in 0..50_000u32 {
        if i % 10_000 == 7 {
            text.push_str("broken\n");
        } else {
            text.push_str(&format!("{i},n{i},\n"));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "a.csv", text.as_bytes());
    let (_, got) = read(&path, CsvOptions::default());
    got.assert_conserved(50_000);
    assert_eq!(got.rejects.len(), 5);
    assert_eq!(got.batch_sizes.len(), 7); // ceil(50_000 / 8192)
    assert!(got.rejects.iter().all(|r| r.line == r.row_index + 2));
}

#[test]
fn open_dispatches_on_extension() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "a.CSV", b"a\n1\n2\n3\n");
    let batches: Vec<_> = file::open(&path, None, CsvOptions::default(), 2).unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(batches.len(), 2);
    assert_eq!(FileFormat::from_path(&path), Some(FileFormat::Csv));
    let unknown = write(&dir, "a.xlsm", b"");
    assert!(matches!(file::open(&unknown, None, CsvOptions::default(), 2), Err(Error::UnknownFormat { .. })));
    let missing = dir.path().join("missing.csv");
    assert!(matches!(file::open(&missing, None, CsvOptions::default(), 2), Err(Error::Io { .. })));
}

#[test]
fn garbage_input_never_panics() {
    let inputs: Vec<Vec<u8>> = vec![
        b"\"".to_vec(),
        b"a,b\n\"\"\"\n".to_vec(),
        b"\xEF\xBB\xBF".to_vec(),
        b"\xFF\xFE\x00a\x00".to_vec(),
        b"a\n\x00\x00\x00\n".to_vec(),
        vec![0x81; 1000],
        b"\r\r\r\n\n".to_vec(),
    ];
    for encoding in [Encoding::Utf8, Encoding::Gbk, Encoding::Gb18030] {
        for (has_header, input) in [true, false].into_iter().flat_map(|h| inputs.iter().map(move |i| (h, i))) {
            let options = CsvOptions { encoding, has_header, batch_size: 3, ..CsvOptions::default() };
            if let Ok(reader) = CsvReader::from_reader("g", Box::new(std::io::Cursor::new(input.clone())), options) {
                for item in reader {
                    let _ = item;
                }
            }
        }
    }
}
