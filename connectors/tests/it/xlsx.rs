//! Excel reading: sheet choice, cell rendering, rejects, positions, batching.
//! The fixture is `tests/data/population.xlsx` (see `tests/data/README.md`).

use std::path::{Path, PathBuf};

use civlink_connectors::file::{self, Error, ExcelOptions, ExcelReader, FileFormat, ReadOptions};

use crate::Collected;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/population.xlsx")
}

fn read(sheet: Option<&str>, batch_size: usize) -> (Vec<String>, Collected) {
    let reader = ExcelReader::open(&fixture(), &ExcelOptions::sheet(sheet), batch_size).expect("open");
    let names = reader.schema().fields().iter().map(|f| f.name().clone()).collect();
    let batches = reader.collect::<Result<Vec<_>, _>>().expect("read");
    (names, Collected::from_batches(batches))
}

#[test]
fn first_sheet_by_default_with_every_cell_type() {
    let (names, got) = read(None, 100);
    assert_eq!(
        names,
        [
            "公民身份号码",
            "姓名",
            "性别",
            "出生日期",
            "登记时间",
            "月补助",
            "是否户主",
            "区划",
            "姓名_2",
            "column_10",
            "备注"
        ]
    );
    // Rows 2, 3, 5, 6, 7 (row 4 is blank); 5 and 6 are rejected.
    got.assert_conserved(5);
    assert_eq!(got.rows.len(), 3);
    assert_eq!(
        got.row(0),
        [
            "110101199003071234",
            "张三",
            "男",
            "1990-03-07",
            "2020-01-02 03:04:05",
            "1234.5",
            "true",
            "630102",
            "别名",
            "∅",
            "  留空格  "
        ]
    );
    // The ID typed as a number shows the digits Excel kept; the validator rejects it.
    assert_eq!(
        got.row(1),
        ["110101199003071200", "李四", "女", "∅", "∅", "1000", "false", "630102000000", "∅", "∅", "∅"]
    );
    assert_eq!(got.row(2), ["-5", "-5", "∅", "13:30:00", "∅", "100000000000000000000", "∅", "0.125", "∅", "∅", "∅"]);
    // Lines are spreadsheet row numbers.
    let lines: Vec<u64> = got.rows.iter().map(|r| r.1).collect();
    assert_eq!(lines, [2, 3, 7]);
    let indices: Vec<u64> = got.rows.iter().map(|r| r.0).collect();
    assert_eq!(indices, [0, 1, 4]);

    assert_eq!(got.rejects.len(), 2);
    let error = &got.rejects[0];
    assert_eq!((error.row_index, error.line), (2, 5));
    assert!(error.reason.contains("C5") && error.reason.contains("#N/A"), "{}", error.reason);
    assert_eq!(error.raw, "11010119900307123X,王五,#N/A");
    let ragged = &got.rejects[1];
    assert_eq!((ragged.row_index, ragged.line), (3, 6));
    assert!(ragged.reason.starts_with("ragged row") && ragged.reason.contains('L'), "{}", ragged.reason);
    assert_eq!(ragged.raw, "110101199003071234,赵六,,,,,,,,,,多余");
}

#[test]
fn sheet_by_name() {
    let (names, got) = read(Some("说明"), 10);
    assert_eq!(names, ["本表由公安厅导出"]);
    got.assert_conserved(0);

    // A table that starts at B3: B..C are the columns, A5 is outside.
    let (names, got) = read(Some("偏移"), 10);
    assert_eq!(names, ["a", "b"]);
    got.assert_conserved(3);
    assert_eq!(got.row(0), ["1", "2"]);
    assert_eq!(got.row(1), ["4", "∅"]);
    assert_eq!(got.rows.iter().map(|r| r.1).collect::<Vec<_>>(), [4, 6]);
    assert_eq!(got.rejects[0].line, 5);
    assert_eq!(got.rejects[0].raw, "left of the header,3");

    let (names, got) = read(Some("空"), 10);
    assert!(names.is_empty());
    got.assert_conserved(0);
}

#[test]
fn missing_sheet_lists_the_sheets() {
    let err = ExcelReader::open(&fixture(), &ExcelOptions::sheet(Some("户籍")), 10).err().expect("missing sheet");
    match &err {
        Error::SheetNotFound { sheet, available, .. } => {
            assert_eq!(sheet, "户籍");
            assert_eq!(available, &["人口", "说明", "偏移", "空"]);
        }
        other => panic!("unexpected error {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("\"人口\", \"说明\", \"偏移\", \"空\""), "{text}");
}

#[test]
fn batches_split_rows_and_rejects() {
    let (_, got) = read(None, 2);
    got.assert_conserved(5);
    // Records per batch: (good, rejects).
    assert_eq!(got.batch_sizes, [(2, 0), (0, 2), (1, 0)]);
}

#[test]
fn early_drop_stops_the_reader() {
    let mut reader = ExcelReader::open(&fixture(), &ExcelOptions::sheet(None), 1).unwrap();
    assert!(reader.next().is_some());
    drop(reader);
}

#[test]
fn not_a_workbook() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fake.xlsx");
    std::fs::write(&path, "姓名,年龄\n张三,30\n").unwrap();
    assert!(matches!(ExcelReader::open(&path, &ExcelOptions::sheet(None), 10), Err(Error::Xlsx { .. })));
    assert!(matches!(
        ExcelReader::open(&dir.path().join("none.xlsx"), &ExcelOptions::sheet(None), 10),
        Err(Error::Io { .. })
    ));
    assert!(matches!(ExcelReader::open(&fixture(), &ExcelOptions::sheet(None), 0), Err(Error::InvalidOptions { .. })));
}

#[test]
fn open_dispatches_xlsx() {
    let batches: Vec<_> =
        file::open(&fixture(), None, Default::default(), 100).unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(Collected::from_batches(batches).rows.len(), 3);
    let options = ReadOptions { excel: ExcelOptions::sheet(Some("偏移")), batch_size: 1, ..Default::default() };
    let batches: Vec<_> =
        file::open_with(&fixture(), Some(FileFormat::Xlsx), &options).unwrap().collect::<Result<_, _>>().unwrap();
    let got = Collected::from_batches(batches);
    assert_eq!(got.batch_sizes, [(1, 0), (0, 1), (1, 0)]);
}

#[test]
fn from_memory() {
    let bytes = std::fs::read(fixture()).unwrap();
    let reader = ExcelReader::from_bytes("mem.xlsx", bytes, &ExcelOptions::sheet(Some("偏移")), 10).unwrap();
    assert_eq!(reader.sheets(), ["偏移"]);
    let batches: Vec<_> = reader.collect::<Result<_, _>>().unwrap();
    Collected::from_batches(batches).assert_conserved(3);
}
