//! The query string of a rows request, parsed and checked.
//!
//! | parameter | meaning |
//! |---|---|
//! | `limit=N` | rows per page, 1–[`MAX_LIMIT`]; JSON pages default to [`DEFAULT_LIMIT`]; the other formats stream every row when it is absent |
//! | `cursor=…` | the next page: the `next_cursor` of the page before (the request's other parameters must be the same) |
//! | `columns=a,b` | the columns returned, in this order (default: every readable column) |
//! | `sort=a,-b` | the order: ascending, or descending with `-`; ties are broken by the primary key |
//! | `version=N` / `as_of=RFC 3339` | time travel: a committed version, or the newest committed at or before the time |
//! | `bom=true` | CSV only: a UTF-8 byte order mark first |
//! | `c=v`, `c.eq=v` | column `c` equals `v` |
//! | `c.in=v1,v2` | `c` is one of the values (at most [`MAX_IN_VALUES`]) |
//! | `c.gt`, `c.gte`, `c.lt`, `c.lte` | a range bound on `c` |
//! | `c.prefix=6301` | the division column's code starts with these digits |
//! | `c.is_null=true\|false` | `c` is (not) null |
//!
//! Values are typed by the column when the plan is built. Filters apply to
//! what the principal sees: on a masked column they compare the *masked*
//! value, so a filter cannot look up the value behind a mask.

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};

/// Rows per JSON page when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest `limit`.
pub const MAX_LIMIT: usize = 10_000;
/// The most values one `in` filter may list.
pub const MAX_IN_VALUES: usize = 1_000;
/// The most filters one request may carry.
pub const MAX_FILTERS: usize = 64;

/// One comparison of a filter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FilterOp {
    /// Equal to the value.
    Eq(String),
    /// One of the values.
    In(Vec<String>),
    /// Greater than.
    Gt(String),
    /// Greater than or equal.
    Gte(String),
    /// Less than.
    Lt(String),
    /// Less than or equal.
    Lte(String),
    /// The code starts with these digits (the division column only).
    Prefix(String),
    /// Null (`true`) or not null (`false`).
    IsNull(bool),
}

impl FilterOp {
    /// The operator's name as written after the dot.
    pub fn name(&self) -> &'static str {
        match self {
            FilterOp::Eq(_) => "eq",
            FilterOp::In(_) => "in",
            FilterOp::Gt(_) => "gt",
            FilterOp::Gte(_) => "gte",
            FilterOp::Lt(_) => "lt",
            FilterOp::Lte(_) => "lte",
            FilterOp::Prefix(_) => "prefix",
            FilterOp::IsNull(_) => "is_null",
        }
    }
}

/// A filter on one column.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Filter {
    /// The column.
    pub column: String,
    /// The comparison.
    pub op: FilterOp,
}

/// One key of the requested order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SortKey {
    /// The column.
    pub column: String,
    /// Descending (`-column`).
    pub descending: bool,
}

/// Which committed version to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum At {
    /// Exactly this version.
    Version(i64),
    /// The newest committed at or before this time.
    AsOf(DateTime<Utc>),
}

/// The parameters of a rows request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RowParams {
    /// Rows per page; `None`: the format's default (module docs).
    pub limit: Option<usize>,
    /// The cursor of the page before, as sent.
    pub cursor: Option<String>,
    /// The columns to return, in this order; `None` = every readable column.
    pub columns: Option<Vec<String>>,
    /// Filters, in the order given.
    pub filters: Vec<Filter>,
    /// The requested order.
    pub sort: Vec<SortKey>,
    /// Time travel.
    pub at: Option<At>,
    /// CSV: a BOM first.
    pub bom: bool,
}

fn bad(message: String) -> Error {
    Error::BadRequest { message }
}

fn once<T>(slot: &mut Option<T>, key: &str, value: T) -> Result<()> {
    if slot.is_some() {
        return Err(bad(format!("{key} is given more than once")));
    }
    *slot = Some(value);
    Ok(())
}

fn column_list(key: &str, value: &str) -> Result<Vec<String>> {
    let mut list: Vec<String> = Vec::new();
    for name in value.split(',').map(str::trim) {
        if name.is_empty() {
            return Err(bad(format!("{key} must be a comma-separated list of column names")));
        }
        if list.iter().any(|c| c == name) {
            return Err(bad(format!("column \"{name}\" is listed twice in {key}")));
        }
        list.push(name.to_owned());
    }
    Ok(list)
}

impl RowParams {
    /// Parse the query string's pairs.
    pub fn parse(pairs: Vec<(String, String)>) -> Result<RowParams> {
        let mut limit = None;
        let mut cursor = None;
        let mut columns = None;
        let mut sort = None;
        let mut at = None;
        let mut bom = None;
        let mut filters: Vec<Filter> = Vec::new();
        for (key, value) in pairs {
            match key.as_str() {
                "limit" => {
                    let n = value.trim().parse::<usize>().ok().filter(|n| (1..=MAX_LIMIT).contains(n));
                    let n = n.ok_or_else(|| bad(format!("limit must be a whole number from 1 to {MAX_LIMIT}")))?;
                    once(&mut limit, "limit", n)?;
                }
                "cursor" => once(&mut cursor, "cursor", value)?,
                "columns" => once(&mut columns, "columns", column_list("columns", &value)?)?,
                "sort" => {
                    let keys = column_list("sort", &value)?
                        .into_iter()
                        .map(|c| match c.strip_prefix('-') {
                            Some(name) => SortKey { column: name.trim().to_owned(), descending: true },
                            None => SortKey { column: c, descending: false },
                        })
                        .collect::<Vec<_>>();
                    if keys.iter().any(|k| k.column.is_empty()) {
                        return Err(bad("sort must list column names, each optionally after '-'".into()));
                    }
                    once(&mut sort, "sort", keys)?;
                }
                "version" => {
                    let v = value.trim().parse::<i64>().ok().filter(|v| *v >= 0);
                    let v = v.ok_or_else(|| bad("version must be a whole number from 0".into()))?;
                    once(&mut at, "version or as_of", At::Version(v))?;
                }
                "as_of" => {
                    let t = DateTime::parse_from_rfc3339(value.trim()).map_err(|_| {
                        bad("as_of must be an RFC 3339 date-time, e.g. 2026-12-01T08:00:00+08:00".into())
                    })?;
                    once(&mut at, "version or as_of", At::AsOf(t.with_timezone(&Utc)))?;
                }
                "bom" => {
                    let b = match value.trim() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(bad("bom must be true or false".into())),
                    };
                    once(&mut bom, "bom", b)?;
                }
                "offset" => {
                    return Err(bad("offset is not a parameter: page with the cursor of the page before".into()));
                }
                "" => return Err(bad("a query parameter without a name".into())),
                _ => {
                    let filter = Self::filter(&key, value)?;
                    if filters.iter().any(|f| f.column == filter.column && f.op.name() == filter.op.name()) {
                        return Err(bad(format!(
                            "the {} filter on column \"{}\" is given more than once",
                            filter.op.name(),
                            filter.column
                        )));
                    }
                    filters.push(filter);
                    if filters.len() > MAX_FILTERS {
                        return Err(bad(format!("at most {MAX_FILTERS} filters")));
                    }
                }
            }
        }
        Ok(RowParams { limit, cursor, columns, filters, sort: sort.unwrap_or_default(), at, bom: bom.unwrap_or(false) })
    }

    fn filter(key: &str, value: String) -> Result<Filter> {
        let (column, op) = match key.rsplit_once('.') {
            Some((column, op)) => (column, op),
            None => (key, "eq"),
        };
        if column.is_empty() {
            return Err(bad(format!("\"{key}\" does not name a column")));
        }
        let op = match op {
            "eq" => FilterOp::Eq(value),
            "in" => {
                let values: Vec<String> = value.split(',').map(str::to_owned).collect();
                if values.len() > MAX_IN_VALUES {
                    return Err(bad(format!("an in filter lists at most {MAX_IN_VALUES} values")));
                }
                FilterOp::In(values)
            }
            "gt" => FilterOp::Gt(value),
            "gte" => FilterOp::Gte(value),
            "lt" => FilterOp::Lt(value),
            "lte" => FilterOp::Lte(value),
            "prefix" => {
                if value.is_empty() || value.len() > 12 || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad("a prefix filter takes 1 to 12 digits of a division code".into()));
                }
                FilterOp::Prefix(value)
            }
            "is_null" => FilterOp::IsNull(match value.as_str() {
                "true" => true,
                "false" => false,
                _ => return Err(bad("is_null must be true or false".into())),
            }),
            other => {
                return Err(bad(format!(
                    "unknown filter operator \"{other}\" (eq, in, gt, gte, lt, lte, prefix, is_null)"
                )));
            }
        };
        Ok(Filter { column: column.to_owned(), op })
    }

    /// Every column the request names (selected, filtered, sorted).
    pub fn named_columns(&self) -> impl Iterator<Item = &String> {
        self.columns
            .iter()
            .flatten()
            .chain(self.filters.iter().map(|f| &f.column))
            .chain(self.sort.iter().map(|k| &k.column))
    }

    /// What a cursor is bound to besides the dataset and version: the
    /// selection, the filters and the order, in a canonical text.
    pub fn fingerprint(&self) -> String {
        format!("{:?}|{:?}|{:?}", self.columns, self.filters, self.sort)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn parameters_parse_with_defaults() {
        let p = RowParams::parse(vec![]).unwrap();
        assert_eq!(p, RowParams::default());
        let p = RowParams::parse(pairs(&[
            ("limit", "5"),
            ("columns", "a, b"),
            ("sex", "1"),
            ("age.gte", "60"),
            ("age.lt", "80"),
            ("division_code.prefix", "6301"),
            ("name.in", "x,y"),
            ("death_date.is_null", "true"),
            ("sort", "-age,name"),
            ("as_of", "2026-12-01T08:00:00+08:00"),
            ("bom", "true"),
        ]))
        .unwrap();
        assert_eq!(p.limit, Some(5));
        assert_eq!(p.columns, Some(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(p.filters.len(), 6);
        assert_eq!(p.filters[0], Filter { column: "sex".into(), op: FilterOp::Eq("1".into()) });
        assert_eq!(p.filters[3].op, FilterOp::Prefix("6301".into()));
        assert_eq!(p.filters[4].op, FilterOp::In(vec!["x".into(), "y".into()]));
        assert_eq!(
            p.sort,
            vec![
                SortKey { column: "age".into(), descending: true },
                SortKey { column: "name".into(), descending: false }
            ]
        );
        assert_eq!(p.at, Some(At::AsOf("2026-12-01T00:00:00Z".parse().unwrap())));
        assert!(p.bom);
    }

    #[test]
    fn bad_parameters_are_refused() {
        for bad in [
            vec![("limit", "0")],
            vec![("limit", "10001")],
            vec![("limit", "1000000000")],
            vec![("limit", "-1")],
            vec![("limit", "ten")],
            vec![("offset", "3")],
            vec![("limit", "1"), ("limit", "2")],
            vec![("columns", "a,,b")],
            vec![("columns", "a,a")],
            vec![("sex", "1"), ("sex.eq", "2")],
            vec![("", "x")],
            vec![(".eq", "x")],
            vec![("a.like", "x%")],
            vec![("code.prefix", "63%")],
            vec![("code.prefix", "6301020304050")],
            vec![("a.is_null", "yes")],
            vec![("version", "-1")],
            vec![("version", "1"), ("as_of", "2026-01-01T00:00:00Z")],
            vec![("as_of", "yesterday")],
            vec![("sort", "-")],
            vec![("bom", "maybe")],
        ] {
            assert!(matches!(RowParams::parse(pairs(&bad)), Err(Error::BadRequest { .. })), "{bad:?}");
        }
        let many: Vec<(String, String)> = (0..=MAX_FILTERS).map(|i| (format!("c{i}"), "1".to_owned())).collect();
        assert!(RowParams::parse(many).is_err());
        let values = vec!["1"; MAX_IN_VALUES + 1].join(",");
        assert!(RowParams::parse(pairs(&[("a.in", &values)])).is_err());
    }

    #[test]
    fn the_fingerprint_changes_with_what_selects_rows_only() {
        let a = RowParams::parse(pairs(&[("sex", "1"), ("limit", "5")])).unwrap();
        let b = RowParams::parse(pairs(&[("sex", "1"), ("limit", "50"), ("cursor", "x")])).unwrap();
        let c = RowParams::parse(pairs(&[("sex", "2")])).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
    }
}
