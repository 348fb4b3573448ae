//! Integration tests of the synthetic data generator: determinism, a
//! self-consistent ground truth, exports that decode the way the contract
//! says (and fail exactly where malformed rows were planted), valid and
//! unique ID numbers.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use civlink_standards::idcard::CitizenId;
use civlink_synth::{AnomalyKind, GroundTruth, Options, Scale, generate};
use parquet::file::reader::{FileReader, SerializedFileReader};

fn run(dir: &Path, people: u64, seed: u64) -> GroundTruth {
    let options = Options { out: dir.to_path_buf(), scale: Scale::Small, seed, people: Some(people) };
    let mut calls = Vec::new();
    let truth = generate(&options, &mut |done, total| calls.push((done, total))).unwrap();
    assert_eq!(calls.last(), Some(&(people, people)), "progress ends at the total");
    assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0), "progress never goes back");
    truth
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// A CSV export's data lines as raw bytes (CRLF-terminated; no field holds a line break).
fn csv_lines(path: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    let mut lines: Vec<Vec<u8>> =
        bytes.split(|b| *b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec()).collect();
    assert_eq!(lines.pop(), Some(Vec::new()), "{} ends with a line break", path.display());
    lines
}

/// The fields of a CSV line (quotes honoured; no field holds a line break).
fn fields(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                out.last_mut().unwrap().push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(String::new()),
            c => out.last_mut().unwrap().push(c),
        }
    }
    out
}

fn encoding_of(truth: &GroundTruth, id: &str) -> &'static encoding_rs::Encoding {
    match id {
        "gongan.population" | "canlian.disability_certificates" | "canlian.disability_subsidies" => encoding_rs::GBK,
        "weijian.serious_illness" => encoding_rs::GB18030,
        _ => {
            assert!(truth.dataset(id).is_some());
            encoding_rs::UTF_8
        }
    }
}

#[test]
fn a_small_run_has_a_self_consistent_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    let truth = run(dir.path(), 3000, 11);
    assert_eq!(truth.people, 3000);
    assert_eq!(truth.seed, 11);
    assert_eq!(truth.datasets.len(), 14);
    assert_eq!(GroundTruth::load(&dir.path().join("ground_truth.json")).unwrap(), truth);

    for d in &truth.datasets {
        assert!(d.written > 0, "{}: no rows", d.id);
        assert_eq!(d.rows, d.written + d.quarantined + d.duplicates, "{}", d.id);
        assert!(d.duplicates >= 1 && d.quarantined >= 3, "{}: planted rows missing", d.id);
        let by_rule: u64 = d.quarantined_by_rule.iter().map(|r| r.rows).sum();
        let by_kind: u64 = d.quarantined_by_kind.values().sum();
        assert_eq!(by_rule, d.quarantined, "{}", d.id);
        assert_eq!(by_kind, d.quarantined, "{}", d.id);
        assert_eq!(
            d.quarantined_by_kind.get("source").copied().unwrap_or(0),
            d.quarantine_rules().get(&(String::new(), "source".into())).copied().unwrap_or(0)
        );
        assert_eq!(d.quarantine_rules().get(&(String::new(), "x-civlink-primary-key".into())), Some(&d.duplicates));
        assert_eq!(d.valid_in("63"), d.written, "{}: every row is in Qinghai", d.id);
        // Cities partition the province, counties their city.
        let cities: Vec<&String> =
            d.valid_by_division.keys().filter(|k| k.ends_with("00000000") && !k.ends_with("0000000000")).collect();
        let in_cities: u64 = cities.iter().map(|c| d.valid_in(c)).sum();
        assert_eq!(in_cities, d.written, "{}", d.id);
        for city in cities {
            let prefix = &city[..4];
            let counties: u64 = d
                .valid_by_division
                .iter()
                .filter(|(k, _)| k.starts_with(prefix) && k.ends_with("000000") && &k[4..6] != "00")
                .map(|(_, v)| *v)
                .sum();
            assert_eq!(counties, d.valid_in(city), "{}: counties of {city}", d.id);
        }
        assert!(dir.path().join(&d.job).is_file(), "{}", d.job);
        for export in &d.exports {
            assert!(dir.path().join(export).is_file(), "{export}");
        }
        let job = std::fs::read_to_string(dir.path().join(&d.job)).unwrap();
        assert!(job.contains(&format!("dataset = \"{}\"", d.id)));
        let expected_sharing = if d.id == "xiangcun.registered_poor" { "unconditional" } else { "conditional" };
        assert!(job.contains(&format!("sharing = \"{expected_sharing}\"")), "{}", d.id);
    }
    // Every source-level problem sits in a CSV export.
    for d in &truth.datasets {
        if d.quarantined_by_kind.contains_key("source") {
            assert!(d.exports.iter().all(|e| e.ends_with(".csv")), "{}", d.id);
        }
    }
    let gongan = truth.dataset("gongan.population").unwrap();
    assert_eq!(gongan.written, 3000 + gongan.duplicates, "every person once, plus the originals of planted duplicates");
    for rule in [
        "id_number/format",
        "division_code/format",
        "birth_date/format",
        "sex/x-civlink-code-table",
        "status/enum",
        "/source",
    ] {
        let (column, keyword) = rule.split_once('/').unwrap();
        assert!(
            gongan.quarantined_by_rule.iter().any(|r| r.column == column && r.keyword == keyword && r.rows > 0),
            "{rule}"
        );
    }

    // Every kind is planted, several times, in several counties.
    for kind in AnomalyKind::ALL {
        let cases: Vec<_> = truth.anomalies.iter().filter(|a| a.kind == kind).collect();
        assert!(cases.len() >= 10, "{kind}: {} cases", cases.len());
        let counties: HashSet<&str> = cases.iter().map(|a| &a.division_codes[0][..6]).collect();
        assert!(counties.len() >= 3, "{kind}: only in {counties:?}");
        for case in &cases {
            CitizenId::parse_on(&case.id_number, truth.as_of).unwrap();
            assert!(!case.division_codes.is_empty());
        }
        if kind == AnomalyKind::DibaoTwoCounties {
            assert!(
                cases
                    .iter()
                    .all(|a| a.division_codes.len() == 2 && a.division_codes[0][..6] != a.division_codes[1][..6])
            );
        }
    }
    let visible = truth.visible_in("63");
    assert_eq!(visible.values().sum::<u64>(), truth.anomalies.len() as u64);
    let two = visible["dibao_two_counties"];
    let county_sum: u64 = {
        let counties: HashSet<String> =
            truth.anomalies.iter().flat_map(|a| a.division_codes.iter().map(|c| c[..6].to_owned())).collect();
        counties.iter().map(|c| truth.visible_in(c)["dibao_two_counties"]).sum()
    };
    assert!(two > 0 && county_sum == 0, "a two-county case is visible in no single county");
}

#[test]
fn the_same_seed_gives_the_same_files() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
    run(&a, 1500, 5);
    run(&b, 1500, 5);
    run(&c, 1500, 6);
    let (fa, fb) = (files(&a), files(&b));
    assert_eq!(fa.len(), fb.len());
    assert_eq!(files(&a.join("jobs")).len(), 14, "one job per dataset");
    assert!(fa.contains(&a.join("ground_truth.json")));
    for (x, y) in fa.iter().zip(&fb) {
        assert_eq!(x.strip_prefix(&a).unwrap(), y.strip_prefix(&b).unwrap());
        assert!(std::fs::read(x).unwrap() == std::fs::read(y).unwrap(), "{} differs between runs", x.display());
    }
    let population = |d: &Path| std::fs::read(d.join("exports/gongan/户籍人口_1.csv")).unwrap();
    assert_ne!(population(&a), population(&c), "another seed, other people");

    // A second run into the same directory replaces the register files.
    run(&a, 3000, 5);
    let truth = run(&a, 1000, 5);
    let registers: Vec<PathBuf> =
        files(&a.join("exports/gongan")).into_iter().filter(|p| p.to_string_lossy().contains("户籍人口_")).collect();
    assert_eq!(registers.len(), truth.dataset("gongan.population").unwrap().exports.len());
}

#[test]
fn exports_decode_in_their_encodings_except_planted_lines() {
    let dir = tempfile::tempdir().unwrap();
    let truth = run(dir.path(), 2500, 3);
    for d in &truth.datasets {
        let source = d.quarantined_by_kind.get("source").copied().unwrap_or(0);
        let mut rows = 0u64;
        let mut undecodable = 0u64;
        for export in &d.exports {
            let path = dir.path().join(export);
            if export.ends_with(".csv") {
                let encoding = encoding_of(&truth, &d.id);
                let mut lines = csv_lines(&path);
                let mut header = lines.remove(0);
                if encoding == encoding_rs::UTF_8 {
                    assert!(header.starts_with("\u{feff}".as_bytes()), "{export}: UTF-8 with a BOM");
                    header.drain(..3);
                }
                let (header, _, errors) = encoding.decode(&header);
                assert!(!errors, "{export}: header");
                let width = fields(&header).len();
                for line in &lines {
                    let (text, _, errors) = encoding.decode(line);
                    if errors || fields(&text).len() != width {
                        undecodable += 1;
                    }
                }
                rows += lines.len() as u64;
            } else if export.ends_with(".ndjson") {
                let text = std::fs::read_to_string(&path).unwrap();
                for line in text.lines() {
                    let value: serde_json::Value = serde_json::from_str(line).unwrap();
                    assert!(value.is_object());
                    rows += 1;
                }
            } else if export.ends_with(".json") {
                let value: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                rows += value.as_array().unwrap().len() as u64;
            } else if export.ends_with(".parquet") {
                let reader = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
                rows += reader.metadata().file_metadata().num_rows() as u64;
            } else {
                assert!(export.ends_with(".xlsx"));
                let bytes = std::fs::read(&path).unwrap();
                assert!(bytes.starts_with(b"PK"), "{export}: an xlsx is a zip archive");
                rows = d.rows;
            }
        }
        assert_eq!(rows, d.rows, "{}: data rows in the exports", d.id);
        assert_eq!(undecodable, source, "{}: lines the reader cannot split or decode", d.id);
    }
}

#[test]
fn ids_are_valid_and_unique_except_planted_ones() {
    let dir = tempfile::tempdir().unwrap();
    let truth = run(dir.path(), 2500, 9);
    let d = truth.dataset("gongan.population").unwrap();
    let mut ids: BTreeMap<String, u64> = BTreeMap::new();
    let mut invalid = 0;
    for export in &d.exports {
        let lines = csv_lines(&dir.path().join(export));
        for line in &lines[1..] {
            let (text, _, errors) = encoding_rs::GBK.decode(line);
            let fields = fields(&text);
            if errors || fields.len() != 11 {
                continue;
            }
            match CitizenId::parse_on(&fields[0], truth.as_of) {
                Ok(id) => {
                    // The order code's parity is the sex (but for planted bad sex codes).
                    if fields[2] == "男" || fields[2] == "女" {
                        assert_eq!(id.sex().gb2261_code() == "1", fields[2] == "男", "{}", fields[0]);
                    }
                    *ids.entry(fields[0].clone()).or_default() += 1;
                }
                Err(_) => invalid += 1,
            }
        }
    }
    let planted_ids =
        d.quarantined_by_rule.iter().find(|r| r.column == "id_number" && r.keyword == "format").map_or(0, |r| r.rows);
    assert_eq!(invalid, planted_ids);
    let repeated: u64 = ids.values().filter(|n| **n > 1).map(|n| n - 1).sum();
    assert_eq!(repeated, d.duplicates, "only planted duplicates repeat an ID");
    for anomaly in &truth.anomalies {
        assert!(ids.contains_key(&anomaly.id_number), "planted people are registered");
    }
}
