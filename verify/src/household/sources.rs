//! Which datasets a household check consults, and what each tells: the
//! sources file (`checks/household.toml`, shipped; or a file named by
//! `--sources` / `CIVLINK_CHECK_SOURCES`).
//!
//! A department's new dataset joins the check by adding a `[[source]]`:
//! the check itself knows no dataset by name. Loading checks every source
//! at once against the registered standards ([`CheckSources::check`]): the
//! dataset exists, every column is in its standard, the `as_of` column is a
//! date and the `amount` column a number, and each source's query (with its
//! flags' conditions) plans as SQL over the dataset.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use arrow::datatypes::DataType;
use chrono::NaiveDate;
use civlink_catalog::model::DatasetId;
use civlink_catalog::store::PolicySnapshot;
use serde::Deserialize;

use super::error::Error;
use crate::check::Shapes;

/// The sources compiled into the binary.
pub const SHIPPED: &str = include_str!("../../../checks/household.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourcesFile {
    /// The sources, in report order.
    #[serde(default)]
    source: Vec<SourceFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceFile {
    /// `department.name`.
    dataset: String,
    /// What the source tells (the report's heading).
    section: String,
    /// The column holding the member's ID number.
    person: String,
    /// The columns shown, in order.
    columns: Vec<String>,
    /// The row's own date column.
    as_of: Option<String>,
    /// Only rows whose `as_of` date lies in this many months before the check.
    within_months: Option<u32>,
    /// A money column: each member's total and latest value are reported.
    amount: Option<String>,
    /// Per column, the printable label of each coded value.
    #[serde(default)]
    labels: BTreeMap<String, BTreeMap<String, String>>,
    /// The summary flags this source raises.
    #[serde(default)]
    flag: Vec<FlagFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlagFile {
    /// The flag's id (several sources may raise the same flag).
    id: String,
    /// Its Chinese title.
    title: String,
    /// An SQL condition on the dataset's columns; `None`: any row.
    when: Option<String>,
    /// Only rows whose division lies outside the applicant household's county.
    #[serde(default)]
    outside_household_county: bool,
}

/// One dataset the check consults.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// The dataset.
    pub dataset: DatasetId,
    /// What it tells (the report's heading for it).
    pub section: String,
    /// The column holding the member's ID number.
    pub person: String,
    /// The columns the report shows, in order.
    pub columns: Vec<String>,
    /// The row's own date column.
    pub as_of: Option<String>,
    /// Only rows whose `as_of` lies in this many months before the check.
    pub within_months: Option<u32>,
    /// A money column: each member's total and latest value are reported.
    pub amount: Option<String>,
    /// Per column, the printable label of each coded value.
    pub labels: BTreeMap<String, BTreeMap<String, String>>,
    /// The summary flags it raises.
    pub flags: Vec<Flag>,
}

/// A summary flag a source raises for a member.
#[derive(Debug, Clone, PartialEq)]
pub struct Flag {
    /// Its id, e.g. `deceased`.
    pub id: String,
    /// Its Chinese title.
    pub title: String,
    /// The SQL condition on the dataset's columns; `None`: any row.
    pub when: Option<String>,
    /// Only rows whose division lies outside the applicant household's county.
    pub outside_household_county: bool,
}

/// Output column names the check adds to a source's query (no standard
/// column starts with `__`).
pub(super) const MEMBER_COLUMN: &str = "__member";
/// The row's division (for `outside_household_county`).
pub(super) const DIVISION_COLUMN: &str = "__division";

impl Source {
    /// The output column of flag `index`.
    pub(super) fn flag_column(index: usize) -> String {
        format!("__flag_{index}")
    }

    /// The query for `members` ID numbers (placeholders `$1`…); with a
    /// `window` (after, until), only rows dated after the first and on or
    /// before the second, when the source has a window; `division` is the
    /// dataset's division column.
    pub(super) fn query(
        &self,
        members: usize,
        window: Option<(NaiveDate, NaiveDate)>,
        division: Option<&str>,
    ) -> String {
        let quote = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
        let mut select = vec![format!("{} AS {MEMBER_COLUMN}", quote(&self.person))];
        match division {
            Some(column) => select.push(format!("{} AS {DIVISION_COLUMN}", quote(column))),
            None => select.push(format!("CAST(NULL AS VARCHAR) AS {DIVISION_COLUMN}")),
        }
        select.extend(self.columns.iter().map(|c| quote(c)));
        for (i, flag) in self.flags.iter().enumerate() {
            let condition = flag.when.as_deref().unwrap_or("TRUE");
            select.push(format!("coalesce(({condition}), FALSE) AS {}", Source::flag_column(i)));
        }
        let placeholders: Vec<String> = (1..=members.max(1)).map(|i| format!("${i}")).collect();
        let mut sql = format!(
            "SELECT {} FROM {}.{} WHERE {} IN ({})",
            select.join(", "),
            quote(self.dataset.department.code()),
            quote(&self.dataset.name),
            quote(&self.person),
            placeholders.join(", ")
        );
        if let (Some(column), Some((after, until))) = (&self.as_of, window.filter(|_| self.within_months.is_some())) {
            sql.push_str(&format!(
                " AND {column} > DATE '{}' AND {column} <= DATE '{}'",
                after.format("%Y-%m-%d"),
                until.format("%Y-%m-%d"),
                column = quote(column)
            ));
        }
        sql
    }
}

/// The sources of a household check, in report order.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckSources {
    /// Where they were read from (`shipped` or a path).
    pub origin: String,
    /// The sources.
    pub sources: Vec<Source>,
}

impl CheckSources {
    /// The shipped sources, or the file at `path`; parsed and checked
    /// against `snapshot`'s registered datasets, every problem at once.
    pub async fn load(path: Option<&Path>, snapshot: &PolicySnapshot) -> Result<CheckSources, Error> {
        let sources = match path {
            None => CheckSources::parse(SHIPPED, "shipped")?,
            Some(path) => {
                let origin = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|e| Error::Sources {
                    origin: origin.clone(),
                    problems: vec![format!("cannot read it: {e}")],
                })?;
                CheckSources::parse(&text, &origin)?
            }
        };
        sources.check(snapshot).await?;
        Ok(sources)
    }

    /// Parse a sources file: its syntax and everything that needs no catalog.
    pub fn parse(text: &str, origin: &str) -> Result<CheckSources, Error> {
        let problems = |problems: Vec<String>| Error::Sources { origin: origin.to_owned(), problems };
        let file: SourcesFile = toml::from_str(text).map_err(|e| problems(vec![e.message().to_owned()]))?;
        let mut found = Vec::new();
        let mut sources = Vec::new();
        if file.source.is_empty() {
            found.push("no [[source]]: a check must consult at least one dataset".to_owned());
        }
        for (n, source) in file.source.into_iter().enumerate() {
            let at = format!("source {} ({})", n + 1, source.dataset);
            let dataset = match source.dataset.parse::<DatasetId>() {
                Ok(id) => Some(id),
                Err(e) => {
                    found.push(format!("{at}: {e}"));
                    None
                }
            };
            if source.section.trim().is_empty() {
                found.push(format!("{at}: section is empty"));
            }
            if source.columns.is_empty() {
                found.push(format!("{at}: columns is empty"));
            }
            if source.within_months.is_some() && source.as_of.is_none() {
                found.push(format!("{at}: within_months needs as_of (the date it counts from)"));
            }
            if source.within_months == Some(0) {
                found.push(format!("{at}: within_months must be 1 or more"));
            }
            let mut shown = BTreeSet::new();
            for column in &source.columns {
                if column.starts_with("__") {
                    found.push(format!("{at}: column {column:?}: names starting with __ are the check's own"));
                }
                if !shown.insert(column) {
                    found.push(format!("{at}: column {column:?} is listed twice"));
                }
            }
            if let Some(amount) = &source.amount
                && !source.columns.contains(amount)
            {
                found.push(format!("{at}: amount {amount:?} is not one of its columns"));
            }
            for column in source.labels.keys() {
                if !source.columns.contains(column) {
                    found.push(format!("{at}: labels for {column:?}, which is not one of its columns"));
                }
            }
            let mut flags = Vec::new();
            for flag in source.flag {
                if !valid_flag_id(&flag.id) {
                    found.push(format!(
                        "{at}: flag id {:?} must be lower-case letters, digits and _ (starting with a letter)",
                        flag.id
                    ));
                }
                if flag.title.trim().is_empty() {
                    found.push(format!("{at}: flag {}: title is empty", flag.id));
                }
                if flag.when.as_deref().is_some_and(|w| w.trim().is_empty()) {
                    found.push(format!("{at}: flag {}: when is empty (leave it out for any row)", flag.id));
                }
                flags.push(Flag {
                    id: flag.id,
                    title: flag.title,
                    when: flag.when,
                    outside_household_county: flag.outside_household_county,
                });
            }
            if let Some(dataset) = dataset {
                sources.push(Source {
                    dataset,
                    section: source.section,
                    person: source.person,
                    columns: source.columns,
                    as_of: source.as_of,
                    within_months: source.within_months,
                    amount: source.amount,
                    labels: source.labels,
                    flags,
                });
            }
        }
        // A flag raised by several sources means one thing: one title.
        let mut titles: BTreeMap<&str, &str> = BTreeMap::new();
        for flag in sources.iter().flat_map(|s| &s.flags) {
            match titles.get(flag.id.as_str()) {
                Some(title) if *title != flag.title => {
                    found.push(format!("flag {}: titled both {title:?} and {:?}", flag.id, flag.title));
                }
                _ => {
                    titles.insert(&flag.id, &flag.title);
                }
            }
        }
        if found.is_empty() { Ok(CheckSources { origin: origin.to_owned(), sources }) } else { Err(problems(found)) }
    }

    /// Check every source against the datasets registered in `snapshot`.
    pub async fn check(&self, snapshot: &PolicySnapshot) -> Result<(), Error> {
        let shapes = Shapes::of_snapshot(snapshot);
        let mut found = Vec::new();
        for (n, source) in self.sources.iter().enumerate() {
            let at = format!("source {} ({})", n + 1, source.dataset);
            let Some(shape) = shapes.shape(&source.dataset) else {
                found.push(format!("{at}: no such dataset is registered"));
                continue;
            };
            let type_of = |column: &str| shape.schema.field_with_name(column).ok().map(|f| f.data_type().clone());
            let mut missing = false;
            for column in std::iter::once(&source.person).chain(&source.columns).chain(&source.as_of) {
                if type_of(column).is_none() {
                    missing = true;
                    found.push(format!("{at}: column {column:?} is not in the dataset's standard"));
                }
            }
            if let Some(column) = &source.as_of
                && type_of(column).is_some_and(|t| t != DataType::Date32)
            {
                found.push(format!("{at}: as_of {column:?} is not a date"));
            }
            if let Some(column) = &source.amount
                && type_of(column).is_some_and(|t| !t.is_numeric())
            {
                found.push(format!("{at}: amount {column:?} is not a number"));
            }
            if missing {
                continue;
            }
            let division = snapshot
                .datasets()
                .iter()
                .find(|r| r.spec.id == source.dataset)
                .and_then(|r| snapshot.standard(r))
                .and_then(|s| s.division_column.clone());
            if division.is_none() && source.flags.iter().any(|f| f.outside_household_county) {
                found.push(format!("{at}: outside_household_county needs a dataset with a division column"));
            }
            let window = NaiveDate::from_ymd_opt(2000, 1, 1).zip(NaiveDate::from_ymd_opt(2001, 1, 1));
            if let Err(message) = shapes.plan(&source.query(1, window, division.as_deref())).await {
                found.push(format!("{at}: its query (with its flags' conditions) does not plan: {message}"));
            }
        }
        if found.is_empty() { Ok(()) } else { Err(Error::Sources { origin: self.origin.clone(), problems: found }) }
    }
}

fn valid_flag_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && id.len() <= 64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_sources_parse() {
        let sources = CheckSources::parse(SHIPPED, "shipped").unwrap();
        assert!(sources.sources.len() >= 12, "{}", sources.sources.len());
        let flags: BTreeSet<&str> = sources.sources.iter().flat_map(|s| &s.flags).map(|f| f.id.as_str()).collect();
        for flag in ["deceased", "pension_income", "employed", "assistance_elsewhere"] {
            assert!(flags.contains(flag), "{flag}");
        }
    }

    #[test]
    fn every_static_problem_is_reported_at_once() {
        let text = r#"
[[source]]
dataset = "not-an-id"
section = ""
person = "id_number"
columns = ["a", "a", "__x"]
within_months = 3
amount = "b"
labels.c = { x = "y" }
[[source.flag]]
id = "Bad"
title = ""
"#;
        let Err(Error::Sources { problems, .. }) = CheckSources::parse(text, "t.toml") else { panic!() };
        let all = problems.join("\n");
        for expected in [
            "not-an-id",
            "section is empty",
            "listed twice",
            "__",
            "within_months needs as_of",
            "amount \"b\"",
            "labels for \"c\"",
            "flag id \"Bad\"",
            "title is empty",
        ] {
            assert!(all.contains(expected), "{expected}: {all}");
        }
        let Err(Error::Sources { problems, .. }) = CheckSources::parse("[[source]]\nbogus = 1\n", "t.toml") else {
            panic!()
        };
        assert!(problems[0].contains("bogus"), "{problems:?}");
    }

    #[test]
    fn the_query_matches_members_and_windows_rows() {
        let sources = CheckSources::parse(SHIPPED, "shipped").unwrap();
        let pensions = sources.sources.iter().find(|s| s.dataset.name == "pension_payments").unwrap();
        let window = NaiveDate::from_ymd_opt(2025, 12, 3).zip(NaiveDate::from_ymd_opt(2026, 12, 3));
        let sql = pensions.query(3, window, Some("division_code"));
        assert!(sql.contains("\"id_number\" IN ($1, $2, $3)"), "{sql}");
        assert!(
            sql.contains("\"paid_date\" > DATE '2025-12-03' AND \"paid_date\" <= DATE '2026-12-03'"),
            "12 months, no more: {sql}"
        );
        assert!(sql.contains("coalesce((TRUE), FALSE) AS __flag_0"), "{sql}");
        let population = sources.sources.iter().find(|s| s.dataset.name == "population").unwrap();
        let sql = population.query(1, window, Some("division_code"));
        assert!(!sql.contains(">= DATE"), "no window without within_months: {sql}");
    }
}
