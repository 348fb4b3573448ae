//! Where the table is in a sheet: the header row (declared, or found by the
//! names it carries), two-row headers under merged group titles, and the
//! trailer rows below the data.
//!
//! Township and county ledgers (台账) rarely start at `A1`: a merged title
//! (湟中区2025年低保人员台账), a units line or 填报单位：… stand above the
//! header, and 合计 or 制表人：… lines below the data. The rules:
//!
//! * **The header row.** A job's `header_row = N` names it. Otherwise the
//!   reader takes, among the first [`SCAN_ROWS`] rows with a value, the first
//!   whose cells name at least two known columns (one, when only one is
//!   known): the job's source column names and the standard's column names
//!   and titles, compared without whitespace. When no row does, the first
//!   row with a value is the header, and the run says so. Rows above the
//!   header are skipped and recorded, never quarantined.
//! * **Two-row headers.** When the header row has a cell merged across two
//!   or more columns (and only that row high), it is a group title over the
//!   sub-columns in the row below, and the header is both rows. A column under
//!   a group is named `组_子` (`家庭成员_姓名`); a column outside any group
//!   takes the upper row's text (its cell is usually merged down over both
//!   rows), or the lower row's when the upper is empty. A row is read as the
//!   top of a two-row header only when that names more known columns than
//!   reading it alone, so a title merged across the table is never a group.
//! * **Line breaks** inside a header cell (Alt+Enter in Excel) are removed:
//!   they are layout, not part of the name.
//! * **Trailers.** Below the header, a row whose first cell with a value
//!   starts, whitespace aside, with a trailer word is skipped and recorded
//!   with that word: totals (合计, 总计, 小计) and signature lines (制表人,
//!   审核人, 填报日期, …), [`DEFAULT_TRAILER_WORDS`], plus the job's own
//!   `trailer_words`.

use std::collections::HashSet;

use civlink_catalog::model::HeaderFound;

use super::render::Cell;

/// Rows with a value scanned for the header before giving up on finding one.
pub const SCAN_ROWS: usize = 30;

/// Words that start a trailer row's first cell (see the module docs).
/// Longer words first, so a row is recorded under the most specific word.
pub const DEFAULT_TRAILER_WORDS: &[&str] = &[
    "合计",
    "总计",
    "小计",
    "制表人",
    "制表",
    "审核人",
    "审核",
    "审批人",
    "填报日期",
    "填报人",
    "填表人",
    "负责人",
    "经办人",
];

/// One sheet row: its 0-based index and its cells by 0-based column.
#[derive(Debug, Clone, Default)]
pub(super) struct Row {
    pub index: u32,
    pub cells: Vec<(u32, Cell)>,
}

impl Row {
    /// The filled cells' columns.
    fn filled(&self) -> impl Iterator<Item = (u32, &Cell)> {
        self.cells.iter().filter(|(_, cell)| !cell.is_empty()).map(|(c, cell)| (*c, cell))
    }

    pub(super) fn is_blank(&self) -> bool {
        self.filled().next().is_none()
    }

    fn text_at(&self, col: u32) -> &str {
        self.cells.iter().find(|(c, _)| *c == col).map_or("", |(_, cell)| cell.text())
    }

    /// The first and last filled column.
    pub(super) fn span(&self) -> Option<(u32, u32)> {
        let min = self.filled().map(|(c, _)| c).min()?;
        let max = self.filled().map(|(c, _)| c).max()?;
        Some((min, max))
    }
}

/// A merged range of cells, 0-based and inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Region {
    pub top: u32,
    pub left: u32,
    pub bottom: u32,
    pub right: u32,
}

impl Region {
    /// A group title: one row high, two or more columns wide.
    fn is_group_in(&self, row: u32) -> bool {
        self.top == row && self.bottom == row && self.right > self.left
    }

    fn covers_column(&self, col: u32) -> bool {
        (self.left..=self.right).contains(&col)
    }
}

/// What the job says about the sheet's layout.
#[derive(Debug, Clone, Default)]
pub(super) struct Rules {
    /// The job's `header_row` (1-based).
    pub header_row: Option<u32>,
    /// Known column names, whitespace removed.
    pub known: HashSet<String>,
    /// Trailer words, whitespace removed, longest first.
    pub trailer_words: Vec<String>,
}

impl Rules {
    pub(super) fn new(header_row: Option<u32>, known: &[String], extra_trailer_words: &[String]) -> Rules {
        let mut trailer_words: Vec<String> = DEFAULT_TRAILER_WORDS
            .iter()
            .map(|w| (*w).to_owned())
            .chain(extra_trailer_words.iter().map(|w| squeeze(w)))
            .filter(|w| !w.is_empty())
            .collect();
        trailer_words.sort_by_key(|w| std::cmp::Reverse(w.chars().count()));
        trailer_words.dedup();
        Rules { header_row, known: known.iter().map(|n| squeeze(n)).filter(|n| !n.is_empty()).collect(), trailer_words }
    }

    /// Names a header must match to be taken for one.
    fn threshold(&self) -> usize {
        self.known.len().clamp(1, 2)
    }

    fn score(&self, names: &[String]) -> usize {
        let matched: HashSet<String> = names.iter().map(|n| squeeze(n)).filter(|n| self.known.contains(n)).collect();
        matched.len()
    }

    /// The trailer word a row's first filled cell starts with.
    pub(super) fn trailer_word(&self, row: &Row) -> Option<&str> {
        let (_, first) = row.filled().min_by_key(|(c, _)| *c)?;
        let text = squeeze(first.text());
        self.trailer_words.iter().find(|w| text.starts_with(w.as_str())).map(String::as_str)
    }
}

/// Text without any whitespace (the ideographic space included).
pub(super) fn squeeze(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

/// A header cell's text as a name: line breaks inside the cell removed.
fn header_text(text: &str) -> String {
    text.chars().filter(|c| *c != '\n' && *c != '\r').collect()
}

/// The header found: where it is and the raw names by column.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Header {
    /// Index in the buffered rows of the header's (top) row.
    pub at: usize,
    /// Whether the row below is part of it.
    pub two_rows: bool,
    pub found: HeaderFound,
    pub first_col: u32,
    pub last_col: u32,
    /// One name per column `first_col..=last_col`, before cleaning.
    pub names: Vec<String>,
}

/// What [`find_header`] decided so far.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Decision {
    /// More rows are needed to decide.
    NeedMore,
    Found(Header),
    /// The declared header row is empty or absent.
    DeclaredRowEmpty,
}

/// The names of a one-row header.
fn single_names(row: &Row) -> Option<(u32, u32, Vec<String>)> {
    let (first, last) = row.span()?;
    let names = (first..=last).map(|c| header_text(row.text_at(c))).collect();
    Some((first, last, names))
}

/// The names of a two-row header with `top`'s group titles over `sub`'s
/// cells (see the module docs); `None` when `top` has no group title.
fn two_row_names(top: &Row, sub: &Row, merges: &[Region]) -> Option<(u32, u32, Vec<String>)> {
    let groups: Vec<&Region> = merges.iter().filter(|m| m.is_group_in(top.index)).collect();
    if groups.is_empty() {
        return None;
    }
    let spans = [top.span(), sub.span()];
    let first = spans.iter().flatten().map(|s| s.0).chain(groups.iter().map(|g| g.left)).min()?;
    let last = spans.iter().flatten().map(|s| s.1).chain(groups.iter().map(|g| g.right)).max()?;
    let names = (first..=last)
        .map(|c| match groups.iter().find(|g| g.covers_column(c)) {
            Some(group) => {
                let title = header_text(top.text_at(group.left));
                let under = header_text(sub.text_at(c));
                match (title.trim().is_empty(), under.trim().is_empty()) {
                    (false, false) => format!("{}_{}", title.trim(), under.trim()),
                    (false, true) => title,
                    (true, _) => under,
                }
            }
            None => {
                let upper = header_text(top.text_at(c));
                if upper.trim().is_empty() { header_text(sub.text_at(c)) } else { upper }
            }
        })
        .collect();
    Some((first, last, names))
}

/// Decide the header among the buffered non-blank `rows` (in sheet order);
/// `complete` when no more rows follow.
pub(super) fn find_header(rows: &[Row], complete: bool, rules: &Rules, merges: &[Region]) -> Decision {
    let below = |i: usize| rows.get(i + 1).filter(|next| next.index == rows[i].index + 1);
    if let Some(declared) = rules.header_row {
        let index = declared.saturating_sub(1);
        let Some(at) = rows.iter().position(|r| r.index == index) else {
            return if complete || rows.last().is_some_and(|r| r.index > index) {
                Decision::DeclaredRowEmpty
            } else {
                Decision::NeedMore
            };
        };
        let has_groups = merges.iter().any(|m| m.is_group_in(index));
        if has_groups && below(at).is_none() && at + 1 == rows.len() && !complete {
            return Decision::NeedMore;
        }
        let two = below(at).and_then(|sub| two_row_names(&rows[at], sub, merges));
        let (two_rows, (first_col, last_col, names)) = match two {
            Some(names) => (true, names),
            None => match single_names(&rows[at]) {
                Some(names) => (false, names),
                None => return Decision::DeclaredRowEmpty,
            },
        };
        return Decision::Found(Header { at, two_rows, found: HeaderFound::Declared, first_col, last_col, names });
    }

    for at in 0..rows.len().min(SCAN_ROWS) {
        let has_groups = merges.iter().any(|m| m.is_group_in(rows[at].index));
        if has_groups && at + 1 == rows.len() && !complete {
            // The row below may be this one's sub-header.
            return Decision::NeedMore;
        }
        let Some(single) = single_names(&rows[at]) else { continue };
        let single_score = rules.score(&single.2);
        let two = below(at).and_then(|sub| two_row_names(&rows[at], sub, merges));
        let two_score = two.as_ref().map_or(0, |t| rules.score(&t.2));
        let (score, two_rows, (first_col, last_col, names)) = if two_score > single_score {
            (two_score, true, two.unwrap_or(single))
        } else {
            (single_score, false, single)
        };
        if score >= rules.threshold() {
            let found = HeaderFound::Matched { names: score as u64 };
            return Decision::Found(Header { at, two_rows, found, first_col, last_col, names });
        }
    }
    if rows.len() < SCAN_ROWS && !complete {
        return Decision::NeedMore;
    }
    match rows.first().and_then(single_names) {
        Some((first_col, last_col, names)) => {
            Decision::Found(Header { at: 0, two_rows: false, found: HeaderFound::FirstRow, first_col, last_col, names })
        }
        None => Decision::NeedMore,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(index: u32, cells: &[(u32, &str)]) -> Row {
        Row {
            index,
            cells: cells
                .iter()
                .map(|(c, t)| (*c, if t.is_empty() { Cell::Empty } else { Cell::Text((*t).to_owned()) }))
                .collect(),
        }
    }

    fn rules(known: &[&str]) -> Rules {
        Rules::new(None, &known.iter().map(|k| (*k).to_owned()).collect::<Vec<_>>(), &[])
    }

    fn found(decision: Decision) -> Header {
        match decision {
            Decision::Found(header) => header,
            other => panic!("no header: {other:?}"),
        }
    }

    #[test]
    fn a_title_above_the_header_is_skipped() {
        let rows = vec![
            row(0, &[(0, "湟中区2025年低保人员台账")]),
            row(1, &[(0, "填报单位：湟中区民政局")]),
            row(2, &[(0, "序号"), (1, "姓名"), (2, "身份证号"), (3, "村")]),
            row(3, &[(0, "1"), (1, "张三"), (2, "630121199001010011"), (3, "某村")]),
        ];
        let title_merge = [Region { top: 0, left: 0, bottom: 0, right: 3 }];
        let header = found(find_header(&rows, true, &rules(&["name", "姓名", "身份证号"]), &title_merge));
        assert_eq!((header.at, header.two_rows, header.found), (2, false, HeaderFound::Matched { names: 2 }));
        assert_eq!(header.names, ["序号", "姓名", "身份证号", "村"]);
    }

    #[test]
    fn a_group_title_makes_a_two_row_header() {
        let rows = vec![
            row(0, &[(0, "序号"), (1, "户主姓名"), (2, "家庭成员"), (5, "备注")]),
            row(1, &[(2, "姓名"), (3, "身份证号"), (4, "与户主关系")]),
            row(2, &[(0, "1"), (1, "李四"), (2, "李小"), (3, "x"), (4, "子"), (5, "")]),
        ];
        let merges = [
            Region { top: 0, left: 0, bottom: 1, right: 0 },
            Region { top: 0, left: 1, bottom: 1, right: 1 },
            Region { top: 0, left: 2, bottom: 0, right: 4 },
            Region { top: 0, left: 5, bottom: 1, right: 5 },
        ];
        let known = rules(&["户主姓名", "家庭成员_姓名", "家庭成员_身份证号"]);
        // The group row alone is not enough to decide: its sub-header may follow.
        assert_eq!(find_header(&rows[..1], false, &known, &merges), Decision::NeedMore);
        let header = found(find_header(&rows, true, &known, &merges));
        assert!(header.two_rows);
        assert_eq!(header.at, 0);
        assert_eq!(
            header.names,
            ["序号", "户主姓名", "家庭成员_姓名", "家庭成员_身份证号", "家庭成员_与户主关系", "备注"]
        );
    }

    #[test]
    fn a_title_merged_across_the_table_is_no_group() {
        let rows =
            vec![row(0, &[(0, "某乡台账")]), row(1, &[(0, "姓名"), (1, "身份证号")]), row(2, &[(0, "王五"), (1, "x")])];
        let merges = [Region { top: 0, left: 0, bottom: 0, right: 1 }];
        let header = found(find_header(&rows, true, &rules(&["姓名", "身份证号"]), &merges));
        assert_eq!((header.at, header.two_rows), (1, false));
    }

    #[test]
    fn without_a_match_the_first_row_is_the_header() {
        let rows = vec![row(0, &[(1, "a"), (2, "b")]), row(1, &[(1, "1"), (2, "2")])];
        assert_eq!(find_header(&rows, false, &rules(&["x", "y"]), &[]), Decision::NeedMore);
        let header = found(find_header(&rows, true, &rules(&["x", "y"]), &[]));
        assert_eq!((header.at, header.found, header.first_col, header.last_col), (0, HeaderFound::FirstRow, 1, 2));
    }

    #[test]
    fn whitespace_and_line_breaks_do_not_hide_a_name() {
        let rows = vec![row(4, &[(0, "姓 名"), (1, "身份证\n号码")])];
        let header = found(find_header(&rows, true, &rules(&["姓名", "身份证号码"]), &[]));
        assert_eq!(header.names, ["姓 名", "身份证号码"]);
    }

    #[test]
    fn a_declared_header_row_is_taken_as_is() {
        let rows = vec![row(0, &[(0, "title")]), row(2, &[(0, "a"), (1, "b")])];
        let declared = Rules { header_row: Some(3), ..rules(&[]) };
        let header = found(find_header(&rows, true, &declared, &[]));
        assert_eq!((header.at, header.found), (1, HeaderFound::Declared));
        let missing = Rules { header_row: Some(2), ..rules(&[]) };
        assert_eq!(find_header(&rows, true, &missing, &[]), Decision::DeclaredRowEmpty);
        assert_eq!(
            find_header(&rows[..1], false, &Rules { header_row: Some(3), ..rules(&[]) }, &[]),
            Decision::NeedMore
        );
    }

    #[test]
    fn trailers_are_recognised_by_their_first_cell() {
        let r = Rules::new(None, &[], &["备 注".to_owned()]);
        assert_eq!(r.trailer_word(&row(9, &[(0, "合 计"), (3, "15")])), Some("合计"));
        assert_eq!(r.trailer_word(&row(9, &[(1, "制表人：张三"), (4, "审核人：李四")])), Some("制表人"));
        assert_eq!(r.trailer_word(&row(9, &[(0, "制表：张三")])), Some("制表"));
        assert_eq!(r.trailer_word(&row(9, &[(0, "备注：无")])), Some("备注"));
        assert_eq!(r.trailer_word(&row(9, &[(0, "1"), (1, "合计")])), None);
        assert_eq!(r.trailer_word(&row(9, &[(0, "张三")])), None);
    }
}
