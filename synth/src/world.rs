//! Where people live and how they are numbered: Qinghai's villages and
//! counties from the shipped division table, unique GB 11643 ID numbers, and
//! the serial counters behind every record number.
//!
//! ID numbers are unique by construction: the order code (digits 15–17) is a
//! counter per (county, birth date, sex), odd for men and even for women, so
//! a flat table of counters — bounded by counties × days, not by people —
//! is all the state uniqueness needs.

use std::collections::HashMap;

use chrono::NaiveDate;
use civlink_standards::division::{DivisionTable, Level};
use civlink_standards::idcard;

use crate::text::{DateStyle, push_date, push_number};
use crate::{Error, Result};

/// The earliest birth date an ID can carry here.
const FIRST_BIRTH_DAY: Option<NaiveDate> = NaiveDate::from_ymd_opt(1900, 1, 1);
/// Order codes per (county, day, sex): 1–997 odd, 2–998 even.
const ORDERS_PER_SEX: u16 = 499;

/// A village (村委会) or residents' committee (居委会).
#[derive(Debug, Clone)]
pub(crate) struct Village {
    /// Its 12-digit code.
    pub code: String,
    /// The code as a number.
    pub num: u64,
    /// Index of its county in [`World::counties`].
    pub county: usize,
    /// A residents' committee (urban: codes 001–199) rather than a village.
    pub urban: bool,
    /// The address up to the village: 青海省西宁市湟中区田家寨镇某某村.
    pub address: String,
}

/// A county-level division.
#[derive(Debug, Clone)]
pub(crate) struct County {
    /// Its 6-digit GB/T 2260 code.
    pub code6: String,
    /// Its 12-digit code as a number.
    pub num: u64,
    /// Its name (湟中区).
    pub name: String,
}

/// The villages and counties, and every counter.
pub(crate) struct World {
    pub villages: Vec<Village>,
    pub counties: Vec<County>,
    /// Counters per (county, day, sex).
    orders: Vec<u16>,
    days: usize,
    first_day: NaiveDate,
    /// 户号 serial per county.
    household_serial: Vec<u32>,
    /// 低保 household serial per village.
    dibao_serial: Vec<u32>,
    /// 建档立卡/监测 household serial per village.
    poor_serial: Vec<u32>,
    /// Global serials for record numbers.
    pub serial: Serials,
}

/// Global record-number serials.
#[derive(Debug, Default)]
pub(crate) struct Serials {
    pub aid: u64,
    pub payment: u64,
    pub registration: u64,
    pub death: u64,
    pub illness: u64,
}

impl World {
    /// Qinghai's villages from the shipped table; IDs can carry birth dates up to `as_of`.
    pub(crate) fn qinghai(as_of: NaiveDate) -> Result<World> {
        let table = DivisionTable::builtin();
        let mut counties: Vec<County> = Vec::new();
        let mut county_index: HashMap<String, usize> = HashMap::new();
        let mut villages = Vec::new();
        for entry in table.at_level(Level::Village) {
            let code = entry.code.as_str();
            if !code.starts_with("63") {
                continue;
            }
            let Some(county) = entry.code.parent(Level::County) else { continue };
            let code6 = county.as_str()[..6].to_owned();
            let county = match county_index.get(&code6) {
                Some(&i) => i,
                None => {
                    let name = table.name(&county).unwrap_or_default().to_owned();
                    counties.push(County { num: county.as_u64(), name, code6: code6.clone() });
                    county_index.insert(code6, counties.len() - 1);
                    counties.len() - 1
                }
            };
            let full = table.full_name(&entry.code).unwrap_or_default().replace(' ', "");
            villages.push(Village {
                code: code.to_owned(),
                num: entry.code.as_u64(),
                county,
                urban: matches!(code.as_bytes().get(9), Some(b'0' | b'1')),
                address: short_address(&full),
            });
        }
        if villages.is_empty() {
            return Err(Error::NoVillages);
        }
        let first_day = FIRST_BIRTH_DAY.unwrap_or(as_of);
        let days = usize::try_from((as_of - first_day).num_days() + 1).unwrap_or(1);
        Ok(World {
            orders: vec![0; counties.len() * days * 2],
            days,
            first_day,
            household_serial: vec![0; counties.len()],
            dibao_serial: vec![0; villages.len()],
            poor_serial: vec![0; villages.len()],
            villages,
            counties,
            serial: Serials::default(),
        })
    }

    /// A new unique ID number for someone of `county` born on or shortly
    /// before `birth` (a day earlier per full day); returns it with the
    /// birth date it carries.
    pub(crate) fn new_id(&mut self, county: usize, birth: NaiveDate, male: bool) -> (String, NaiveDate) {
        let mut birth = birth.max(self.first_day);
        loop {
            let day = usize::try_from((birth - self.first_day).num_days()).unwrap_or(0).min(self.days - 1);
            let index = ((county * self.days) + day) * 2 + usize::from(male);
            if let Some(count) = self.orders.get_mut(index)
                && *count < ORDERS_PER_SEX
            {
                *count += 1;
                // The order code's parity is the sex: odd for men, even for women.
                let order = u64::from(*count) * 2 - u64::from(male);
                let mut id = String::with_capacity(18);
                id.push_str(&self.counties[county].code6);
                push_date(&mut id, birth, DateStyle::Compact);
                push_number(&mut id, order, 3);
                let check = idcard::check_character(&id).unwrap_or('0');
                id.push(check);
                return (id, birth);
            }
            match birth.pred_opt() {
                Some(earlier) if earlier >= self.first_day => birth = earlier,
                // Every slot down to 1900 taken: start over from the latest day (never happens in practice).
                _ => birth = self.first_day + chrono::Duration::days(self.days as i64 - 1),
            }
        }
    }

    /// The next 户号 of a county: its 6-digit code and a 6-digit serial.
    pub(crate) fn household_number(&mut self, county: usize) -> String {
        let serial = &mut self.household_serial[county];
        *serial += 1;
        let mut number = String::with_capacity(12);
        number.push_str(&self.counties[county].code6);
        push_number(&mut number, u64::from(*serial % 1_000_000), 6);
        number
    }

    /// The next 低保 household number of a village: `DB`, its code, a 6-digit serial.
    pub(crate) fn dibao_household_id(&mut self, village: usize) -> String {
        let serial = &mut self.dibao_serial[village];
        *serial += 1;
        let mut id = String::with_capacity(20);
        id.push_str("DB");
        id.push_str(&self.villages[village].code);
        push_number(&mut id, u64::from(*serial % 1_000_000), 6);
        id
    }

    /// The next 建档立卡/监测 household number of a village: its code and a 4-digit serial.
    pub(crate) fn poor_household_id(&mut self, village: usize) -> String {
        let serial = &mut self.poor_serial[village];
        *serial += 1;
        let mut id = String::with_capacity(16);
        id.push_str(&self.villages[village].code);
        push_number(&mut id, u64::from(*serial % 10_000), 4);
        id
    }
}

/// The village's full name as an address: `村民委员会` → `村`, `居民委员会` → `社区`.
fn short_address(full: &str) -> String {
    const SUFFIXES: [(&str, &str); 9] = [
        ("社区居民委员会", "社区"),
        ("社区委员会", "社区"),
        ("社区居委会", "社区"),
        ("居民委员会", "社区"),
        ("村牧民委员会", "村"),
        ("牧民委员会", "村"),
        ("村民委员会", "村"),
        ("村委会", "村"),
        ("牧委会", "村"),
    ];
    for (suffix, replacement) in SUFFIXES {
        if let Some(stem) = full.strip_suffix(suffix) {
            return format!("{stem}{replacement}");
        }
    }
    full.to_owned()
}

/// A well-formed 12-digit code in the same township as `code` that is not a
/// division: the last three digits replaced by 999, 998, … (no Qinghai
/// village uses them).
pub(crate) fn unknown_village_code(code: &str) -> String {
    let table = DivisionTable::builtin();
    let stem = code.get(..9).unwrap_or("630102001");
    for serial in (900..1000).rev() {
        let candidate = format!("{stem}{serial}");
        if !table.contains_str(&candidate) {
            return candidate;
        }
    }
    format!("{stem}999")
}

#[cfg(test)]
mod tests {
    use civlink_standards::idcard::CitizenId;

    use super::*;

    #[test]
    fn ids_are_valid_unique_and_carry_the_sex() {
        let as_of = NaiveDate::from_ymd_opt(2026, 6, 30).unwrap();
        let mut world = World::qinghai(as_of).unwrap();
        assert!(world.villages.len() > 4000, "{}", world.villages.len());
        assert!(world.counties.len() > 40);
        let day = NaiveDate::from_ymd_opt(1980, 5, 17).unwrap();
        let mut seen = std::collections::HashSet::new();
        for i in 0..1200 {
            let male = i % 2 == 0;
            let (id, birth) = world.new_id(3, day, male);
            let parsed = CitizenId::parse_on(&id, as_of).unwrap();
            assert_eq!(parsed.birth_date(), birth);
            assert_eq!(parsed.sex().gb2261_code(), if male { "1" } else { "2" });
            assert!(seen.insert(id));
        }
        assert!(!DivisionTable::builtin().contains_str(&unknown_village_code(&world.villages[0].code)));
        assert!(world.villages.iter().all(|v| !v.address.ends_with("委员会") && v.address.starts_with("青海省")));
        assert_eq!(world.dibao_household_id(0).len(), 20);
        assert_eq!(world.poor_household_id(0).len(), 16);
        assert_eq!(world.household_number(0).len(), 12);
    }
}
