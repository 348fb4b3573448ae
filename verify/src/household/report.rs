//! The household check's report: JSON (these types, serialized) and a
//! printable Chinese HTML page ([`CheckReport::to_html`]).
//!
//! The report shows values as the checking principal may see them (masked
//! columns stay masked), and each member's ID number only by its first six
//! and last four characters: the officer who typed them knows the rest, and
//! a printed page left on a desk gives nothing more away.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::sources::CheckSources;

/// What a check found, for every member of the household.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    /// The check's id (`hc_…`), as in the audit chain.
    pub check_id: String,
    /// When it ran.
    pub checked_at: DateTime<Utc>,
    /// The date windows count back from (`within_months`).
    pub as_of: NaiveDate,
    /// Who ran it.
    pub principal: String,
    /// The applicant's signed-consent reference (授权书编号).
    pub consent_reference: String,
    /// The purpose given.
    pub purpose: String,
    /// The division the household applies in.
    pub household_division: String,
    /// Its name, when the built-in division table knows it.
    pub household_division_name: Option<String>,
    /// The summary flags, first: what an officer must look at.
    pub flags: Vec<SummaryFlag>,
    /// Each member, in the request's order.
    pub members: Vec<MemberReport>,
    /// Each source the check was to consult: whether it was, at which
    /// version, and why not.
    pub sources: Vec<SourceUsed>,
}

/// A flag raised for one or more members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryFlag {
    /// Its id (`deceased`, `pension_income`, `employed`, `assistance_elsewhere`, …).
    pub id: String,
    /// Its Chinese title.
    pub title: String,
    /// The members it is raised for (1-based, the request's order).
    pub members: Vec<usize>,
    /// The datasets whose rows raise it.
    pub datasets: Vec<String>,
}

/// One member and everything the hub holds about them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberReport {
    /// 1-based, the request's order.
    pub member: usize,
    /// The ID number as given, first six and last four characters only.
    pub id_number: String,
    /// The flags raised for this member.
    pub flags: Vec<String>,
    /// One item per consulted source, in the sources' order.
    pub items: Vec<Item>,
}

/// What one dataset holds about one member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// What it tells (the source's section).
    pub section: String,
    /// The dataset.
    pub dataset: String,
    /// The dataset version read.
    pub version: Option<i64>,
    /// When that version was committed: the data is as of then.
    pub as_of: Option<DateTime<Utc>>,
    /// The columns shown, with their standard titles.
    pub columns: Vec<Column>,
    /// The member's rows (by the source's `as_of`, newest first): column → value
    /// as the principal sees it (`None`: no value).
    pub rows: Vec<BTreeMap<String, Option<String>>>,
    /// With an `amount` column: the rows' total.
    pub total: Option<f64>,
    /// With an `amount` column: the newest row's amount (a monthly amount for a pension).
    pub latest: Option<f64>,
}

/// A column of an item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    /// The standard's column name.
    pub name: String,
    /// Its Chinese title.
    pub title: String,
}

/// One source as the check used it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceUsed {
    /// The dataset.
    pub dataset: String,
    /// What it tells.
    pub section: String,
    /// The dataset version read (`None`: not consulted, or no data yet).
    pub version: Option<i64>,
    /// When that version was committed.
    pub as_of: Option<DateTime<Utc>>,
    /// Whether it was consulted.
    pub consulted: bool,
    /// Rows found for the household.
    pub rows: u64,
    /// Why it was not consulted, or what was left out of it.
    pub note: Option<String>,
}

/// The first six and the last four characters of an ID number.
pub fn partial_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 10 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..6].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 10))
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn date(at: Option<DateTime<Utc>>) -> String {
    at.map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_else(|| "—".into())
}

const STYLE: &str = "body{font-family:'Noto Sans CJK SC','Source Han Sans SC','Microsoft YaHei',sans-serif;\
margin:2em;color:#111}h1{font-size:1.5em;text-align:center}h2{font-size:1.15em;border-bottom:2px solid #333;\
margin-top:1.6em}h3{font-size:1em;margin:1em 0 .3em}table{border-collapse:collapse;width:100%;margin:.3em 0}\
th,td{border:1px solid #999;padding:.25em .5em;text-align:left;font-size:.9em}th{background:#eee}\
.flags li{color:#a00;font-weight:bold}.none{color:#666}.meta td:first-child{width:9em;background:#f6f6f6}\
.note{color:#666;font-size:.85em}@media print{body{margin:1cm}}";

impl CheckReport {
    /// The printable Chinese page; `sources` gives the coded values' labels.
    pub fn to_html(&self, sources: &CheckSources) -> String {
        let labels: BTreeMap<String, &BTreeMap<String, BTreeMap<String, String>>> =
            sources.sources.iter().map(|s| (s.dataset.to_string(), &s.labels)).collect();
        let mut page = String::new();
        let _ = write!(
            page,
            "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>家庭经济状况核对报告 {}</title>\
             <style>{STYLE}</style></head><body><h1>家庭经济状况核对报告</h1><table class=\"meta\">",
            escape(&self.check_id)
        );
        let division = match &self.household_division_name {
            Some(name) => format!("{} {}", self.household_division, name),
            None => self.household_division.clone(),
        };
        for (label, value) in [
            ("核对编号", self.check_id.clone()),
            ("核对时间", self.checked_at.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
            ("核对截止日期", self.as_of.to_string()),
            ("核对人", self.principal.clone()),
            ("授权书编号", self.consent_reference.clone()),
            ("核对用途", self.purpose.clone()),
            ("申请地", division),
            ("家庭成员", format!("{} 人", self.members.len())),
        ] {
            let _ = write!(page, "<tr><td>{label}</td><td>{}</td></tr>", escape(&value));
        }
        page.push_str("</table><h2>核对提示</h2>");
        if self.flags.is_empty() {
            page.push_str("<p class=\"none\">未发现需要提示的情况。</p>");
        } else {
            page.push_str("<ul class=\"flags\">");
            for flag in &self.flags {
                let members: Vec<String> = flag.members.iter().map(|m| format!("成员 {m}")).collect();
                let _ = write!(
                    page,
                    "<li>{}：{}（来源：{}）</li>",
                    escape(&flag.title),
                    members.join("、"),
                    escape(&flag.datasets.join("、"))
                );
            }
            page.push_str("</ul>");
        }
        for member in &self.members {
            let _ = write!(page, "<h2>成员 {}：{}</h2>", member.member, escape(&member.id_number));
            for item in &member.items {
                let _ = write!(
                    page,
                    "<h3>{}</h3><p class=\"note\">来源：{}，版本 {}，数据截至 {}</p>",
                    escape(&item.section),
                    escape(&item.dataset),
                    item.version.map(|v| v.to_string()).unwrap_or_else(|| "—".into()),
                    date(item.as_of)
                );
                if item.rows.is_empty() {
                    page.push_str("<p class=\"none\">无记录</p>");
                    continue;
                }
                page.push_str("<table><tr>");
                for column in &item.columns {
                    let _ = write!(page, "<th>{}</th>", escape(&column.title));
                }
                page.push_str("</tr>");
                let coded = labels.get(&item.dataset);
                for row in &item.rows {
                    page.push_str("<tr>");
                    for column in &item.columns {
                        let value = row.get(&column.name).cloned().flatten().unwrap_or_default();
                        let shown = coded
                            .and_then(|l| l.get(&column.name))
                            .and_then(|l| l.get(&value))
                            .cloned()
                            .unwrap_or(value);
                        let _ = write!(page, "<td>{}</td>", escape(&shown));
                    }
                    page.push_str("</tr>");
                }
                page.push_str("</table>");
                if let (Some(total), Some(latest)) = (item.total, item.latest) {
                    let _ = write!(page, "<p>合计 {total:.2} 元；最近一笔 {latest:.2} 元</p>");
                }
            }
        }
        page.push_str("<h2>数据来源</h2><table><tr><th>数据集</th><th>内容</th><th>版本</th><th>数据截至</th><th>记录</th><th>说明</th></tr>");
        for source in &self.sources {
            let _ = write!(
                page,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&source.dataset),
                escape(&source.section),
                source.version.map(|v| v.to_string()).unwrap_or_else(|| "—".into()),
                date(source.as_of),
                if source.consulted { source.rows.to_string() } else { "未查询".into() },
                escape(source.note.as_deref().unwrap_or(""))
            );
        }
        page.push_str(
            "</table><p class=\"note\">本报告依申请人签署的授权书查询，仅用于所列用途；核对结果是审核确认的依据之一，\
             不是结论。</p></body></html>\n",
        );
        page
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_show_only_their_ends() {
        assert_eq!(partial_id("630102199001011234"), "630102********1234");
        assert_eq!(partial_id("12345"), "*****");
    }

    #[test]
    fn html_escapes_every_value() {
        let sources = CheckSources::parse(super::super::sources::SHIPPED, "shipped").unwrap();
        let report = CheckReport {
            check_id: "hc_1".into(),
            checked_at: Utc::now(),
            as_of: NaiveDate::from_ymd_opt(2026, 6, 30).unwrap(),
            principal: "<script>".into(),
            consent_reference: "SQ-1".into(),
            purpose: "低保审核".into(),
            household_division: "630102001001".into(),
            household_division_name: None,
            flags: vec![SummaryFlag {
                id: "deceased".into(),
                title: "家庭成员已死亡".into(),
                members: vec![2],
                datasets: vec!["gongan.population".into()],
            }],
            members: vec![MemberReport {
                member: 1,
                id_number: partial_id("630102199001011234"),
                flags: vec![],
                items: vec![Item {
                    section: "户籍登记".into(),
                    dataset: "gongan.population".into(),
                    version: Some(3),
                    as_of: None,
                    columns: vec![Column { name: "status".into(), title: "户籍状态".into() }],
                    rows: vec![BTreeMap::from([("status".to_owned(), Some("deceased".to_owned()))])],
                    total: None,
                    latest: None,
                }],
            }],
            sources: vec![],
        };
        let html = report.to_html(&sources);
        assert!(html.contains("&lt;script&gt;") && !html.contains("<script>"), "{html}");
        assert!(html.contains("死亡注销"), "coded values are labelled: {html}");
        assert!(html.contains("家庭成员已死亡：成员 2"), "{html}");
        assert!(!html.contains("199001011"), "{html}");
    }
}
