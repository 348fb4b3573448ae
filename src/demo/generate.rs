//! A synthetic household-registration (公安户籍) export: Qinghai residents in
//! real villages, grouped in households, with valid ID numbers, written the way
//! the department delivers it — a GBK-encoded CSV — and with a planted share
//! of malformed rows whose expected rejection reasons are returned as ground truth.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{Datelike, Duration, NaiveDate};
use civlink_standards::division::{DivisionTable, Level};
use civlink_standards::idcard;
use civlink_standards::rng::Rng;

/// A malformed row planted on purpose, and the rule that must reject it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planted {
    /// 0-based data-row index.
    pub row: u64,
    /// The column the violation is on ("" for whole-row problems).
    pub column: &'static str,
    /// The keyword that must reject it.
    pub keyword: &'static str,
}

/// What was generated.
#[derive(Debug)]
pub struct Generated {
    /// The CSV export.
    pub path: PathBuf,
    /// Data rows written (valid and malformed).
    pub rows: u64,
    /// Every planted malformed row.
    pub planted: Vec<Planted>,
}

const HAN_SURNAMES: [&str; 16] =
    ["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "马", "韩", "祁", "鲁", "冶", "白"];
const HAN_GIVEN: [&str; 20] = [
    "建国", "秀英", "玉兰", "永福", "海", "明", "芳", "强", "桂花", "志刚", "国庆", "淑珍", "晓燕", "文", "丽", "军",
    "德福", "春梅", "红", "磊",
];
const TIBETAN_NAMES: [&str; 14] =
    ["才让", "卓玛", "扎西", "拉毛", "索南", "多杰", "措吉", "尼玛", "旦增", "央金", "贡保", "德吉", "更登", "完德"];
/// GB 3304 codes weighted roughly as Qinghai's population: 汉 藏 回 土 撒拉 蒙古.
const ETHNIC_WEIGHTS: [(&str, usize); 6] = [("01", 50), ("04", 24), ("03", 15), ("30", 5), ("35", 3), ("02", 3)];

/// The header of the export, in the standard's column names.
pub const HEADER: [&str; 11] = [
    "id_number",
    "name",
    "sex",
    "ethnic_group",
    "birth_date",
    "household_number",
    "relationship",
    "division_code",
    "address",
    "status",
    "status_date",
];

/// One person as exported.
struct Person {
    fields: [String; 11],
}

/// Generate `people` residents with `seed` into `out/gongan_population.csv` (GBK).
pub fn population(out: &Path, people: u64, seed: u64) -> std::io::Result<Generated> {
    std::fs::create_dir_all(out)?;
    let path = out.join("gongan_population.csv");
    let mut writer = BufWriter::new(File::create(&path)?);
    let table = DivisionTable::builtin();
    let villages: Vec<_> =
        table.at_level(Level::Village).into_iter().filter(|v| v.code.as_str().starts_with("63")).collect();
    if villages.is_empty() {
        return Err(std::io::Error::other("the shipped division table has no Qinghai villages"));
    }
    let mut rng = Rng::new(seed);
    let mut orders: HashMap<(String, NaiveDate), u32> = HashMap::new();
    let today = idcard::today_in_china();
    let mut planted = Vec::new();
    write_line(&mut writer, &HEADER.map(str::to_owned))?;

    let mut row: u64 = 0;
    let mut household: u64 = 0;
    while row < people {
        household += 1;
        let Some(village) = rng.pick(&villages) else { break };
        let village_code = village.code.as_str().to_owned();
        let household_number = format!("{}{:03}", &village_code[..9], household % 1000);
        let address =
            format!("{}{}号", table.full_name(&village.code).unwrap_or_default().replace(' ', ""), 1 + rng.below(200));
        let ethnic = weighted(&mut rng);
        let size = 1 + rng.below(5);
        let head_age = 25 + rng.below(55) as i64;
        // Heads of household are men two times in three; a spouse is of the other sex.
        let head_male = rng.below(3) > 0;
        for member in 0..size {
            if row >= people {
                break;
            }
            let (relationship, age, male) = match member {
                0 => ("02", head_age, head_male),
                1 => ("10", head_age - 3 + rng.below(7) as i64, !head_male),
                _ => {
                    let male = rng.below(2) == 0;
                    (if male { "20" } else { "30" }, (head_age - 22 - rng.below(10) as i64).max(0), male)
                }
            };
            let birth = today - Duration::days(age * 365 + rng.below(365) as i64 + 1);
            let county = village_code[..6].to_owned();
            let counter = orders.entry((county.clone(), birth)).or_insert(0);
            *counter += 1;
            // The order code's parity is the sex: odd men, even women.
            let order = (*counter * 2 - u32::from(male)) % 1000;
            let body = format!("{county}{}{order:03}", birth.format("%Y%m%d"));
            let check = idcard::check_character(&body).unwrap_or('0');
            let name = if ethnic == "04" || ethnic == "30" {
                format!(
                    "{}{}",
                    one_of(&mut rng, &TIBETAN_NAMES),
                    if rng.below(2) == 0 { one_of(&mut rng, &TIBETAN_NAMES) } else { "" }
                )
            } else {
                format!("{}{}", one_of(&mut rng, &HAN_SURNAMES), one_of(&mut rng, &HAN_GIVEN))
            };
            let deceased = age > 70 && rng.below(20) == 0;
            let (status, status_date) = if deceased {
                ("deceased", (today - Duration::days(1 + rng.below(700) as i64)).format("%Y-%m-%d").to_string())
            } else {
                ("normal", String::new())
            };
            let mut person = Person {
                fields: [
                    format!("{body}{check}"),
                    name,
                    if male { "1" } else { "2" }.to_owned(),
                    ethnic.to_owned(),
                    birth.format("%Y-%m-%d").to_string(),
                    household_number.clone(),
                    relationship.to_owned(),
                    village_code.clone(),
                    address.clone(),
                    status.to_owned(),
                    status_date,
                ],
            };
            let ragged = plant(&mut person, row, &mut planted, birth);
            if ragged {
                write_line(&mut writer, &person.fields[..HEADER.len() - 2])?;
            } else {
                write_line(&mut writer, &person.fields)?;
            }
            row += 1;
        }
    }
    writer.flush()?;
    Ok(Generated { path, rows: row, planted })
}

/// One of a list of names ("" for an empty list).
fn one_of(rng: &mut Rng, names: &[&'static str]) -> &'static str {
    rng.pick(names).copied().unwrap_or_default()
}

fn weighted(rng: &mut Rng) -> &'static str {
    let total: usize = ETHNIC_WEIGHTS.iter().map(|(_, w)| w).sum();
    let mut draw = rng.below(total as u64) as usize;
    for (code, weight) in ETHNIC_WEIGHTS {
        if draw < weight {
            return code;
        }
        draw -= weight;
    }
    "01"
}

/// Every 50th row (offset 7) is malformed in one of five ways, in turn.
/// Returns whether the row must be written ragged.
fn plant(person: &mut Person, row: u64, planted: &mut Vec<Planted>, birth: NaiveDate) -> bool {
    if row % 50 != 7 {
        return false;
    }
    let (column, keyword) = match (row / 50) % 5 {
        0 => {
            // A wrong check character: shift it by one.
            let id = &mut person.fields[0];
            let last = id.pop().unwrap_or('0');
            id.push(if last == '0' { '1' } else { '0' });
            ("id_number", "format")
        }
        1 => {
            // A village code that does not exist (Qinghai villages never use 999).
            let code = &mut person.fields[7];
            code.replace_range(9.., "999");
            ("division_code", "format")
        }
        2 => {
            // February 30th.
            person.fields[4] = format!("{}-02-30", birth.year());
            ("birth_date", "format")
        }
        3 => {
            // A sex code outside GB/T 2261.1.
            person.fields[2] = "5".into();
            ("sex", "x-civlink-code-table")
        }
        _ => ("", "source"),
    };
    planted.push(Planted { row, column, keyword });
    keyword == "source"
}

/// Write one CSV line in GBK, quoting fields that need it.
fn write_line(writer: &mut impl Write, fields: &[String]) -> std::io::Result<()> {
    let mut line = String::new();
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        if field.contains([',', '"', '\n', '\r']) {
            line.push('"');
            line.push_str(&field.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(field);
        }
    }
    line.push_str("\r\n");
    let (bytes, _, unmappable) = encoding_rs::GBK.encode(&line);
    if unmappable {
        return Err(std::io::Error::other(format!("a generated value has no GBK encoding: {line}")));
    }
    writer.write_all(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_data_and_ids_are_valid_and_unique() {
        let dir = tempfile::tempdir().unwrap();
        let a = population(&dir.path().join("a"), 500, 7).unwrap();
        let b = population(&dir.path().join("b"), 500, 7).unwrap();
        assert_eq!(std::fs::read(&a.path).unwrap(), std::fs::read(&b.path).unwrap());
        assert_eq!(a.rows, 500);
        assert_eq!(a.planted.len(), 10);
        let bytes = std::fs::read(&a.path).unwrap();
        let (text, _, had_errors) = encoding_rs::GBK.decode(&bytes);
        assert!(!had_errors);
        let planted: Vec<u64> = a.planted.iter().map(|p| p.row).collect();
        let mut seen = std::collections::HashSet::new();
        for (row, line) in text.lines().skip(1).enumerate() {
            let id = line.split(',').next().unwrap();
            assert!(seen.insert(id.to_owned()), "duplicate id at row {row}");
            if !planted.contains(&(row as u64)) {
                idcard::CitizenId::parse(id).unwrap_or_else(|e| panic!("row {row}: {e}"));
            }
        }
    }
}
