//! `civlink audit verify | log`: the tamper-evident audit log.
//!
//! `verify` recomputes the hash chain and exits 1 when any entry was edited,
//! inserted, deleted or reordered, naming each; it prints the head
//! (`SEQ:HASH`) so that it can be recorded outside the database. A cut tail
//! or a chain rewritten with recomputed hashes only shows against such a
//! record: `--expect-head SEQ:HASH` (or `--checkpoint FILE`, the file
//! `civlink serve` writes with `serve.audit_checkpoint`) checks it.

use std::fmt::Write;

use civlink_catalog::policy::{AuditHead, AuditRecord};
use clap::Subcommand;

use crate::ingest_cmd::OpenCatalog;
use crate::token_cmd::{show_time, table};
use crate::{Error, Outcome, Result};

/// `civlink audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain; exit 1 listing every tampered entry.
    Verify {
        /// A head recorded outside the database (`SEQ:HASH`, as `verify`
        /// prints it and `civlink serve` checkpoints it): a cut tail or a
        /// rewritten chain shows against it. May be given more than once.
        #[arg(long = "expect-head", value_parser = parse_head)]
        expect_head: Vec<AuditHead>,
        /// Also check the head written in this checkpoint file.
        #[arg(long)]
        checkpoint: Option<std::path::PathBuf>,
    },
    /// The latest entries, oldest first.
    Log {
        /// How many entries to show.
        #[arg(long, default_value_t = 20)]
        limit: u64,
    },
}

/// A `SEQ:HASH` argument.
fn parse_head(text: &str) -> std::result::Result<AuditHead, String> {
    text.parse()
}

/// Longest SQL text shown per entry, in characters.
const SQL_WIDTH: usize = 80;

/// Run an `audit` subcommand.
pub async fn run(command: AuditCommand, catalog: &OpenCatalog) -> Result<Outcome> {
    match command {
        AuditCommand::Verify { mut expect_head, checkpoint } => {
            if let Some(path) = checkpoint {
                let text =
                    std::fs::read_to_string(&path).map_err(|source| Error::Read { path: path.clone(), source })?;
                let head = parse_head(&text)
                    .map_err(|e| Error::Config { problems: vec![format!("{}: {e}", path.display())] })?;
                expect_head.push(head);
            }
            let report = catalog.store.verify_audit_anchored(&expect_head).await.map_err(Error::Policy)?;
            let mut out = String::new();
            let head = match &report.head {
                Some(head) => format!("; head {head}"),
                None => String::new(),
            };
            if report.intact() {
                let _ = writeln!(out, "audit log intact: {} entries{head}", report.entries);
                if report.head.is_some() {
                    let _ = writeln!(out, "record the head outside the database; check against it with --expect-head");
                }
                print!("{out}");
                return Ok(Outcome::Clean);
            }
            let _ = writeln!(
                out,
                "audit log TAMPERED: {} problem(s) in {} entries{head}",
                report.problems.len(),
                report.entries
            );
            for problem in &report.problems {
                let _ = writeln!(out, "  entry {:>6}  {:<9}  {}", problem.seq, problem.kind, problem.detail);
            }
            print!("{out}");
            Ok(Outcome::Findings)
        }
        AuditCommand::Log { limit } => {
            let records = catalog.store.audit_entries(Some(limit)).await.map_err(Error::Policy)?;
            if records.is_empty() {
                println!("the audit log is empty");
            } else {
                print!("{}", log_table(&records));
            }
            Ok(Outcome::Clean)
        }
    }
}

/// The entries as a table.
fn log_table(records: &[AuditRecord]) -> String {
    let rows: Vec<[String; 9]> = records
        .iter()
        .map(|r| {
            let e = &r.entry;
            let number = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
            [
                r.seq.to_string(),
                show_time(e.at),
                one_line(&e.principal, 40),
                one_line(e.action.code(), 20),
                number(e.rows),
                number(e.duration_ms),
                if e.datasets.is_empty() { "-".into() } else { one_line(&e.datasets.join(","), 60) },
                e.purpose.as_deref().map(|p| one_line(p, 30)).unwrap_or_else(|| "-".into()),
                one_line(&e.outcome.to_string(), 60),
            ]
        })
        .collect();
    let mut out = table(&["SEQ", "AT", "PRINCIPAL", "ACTION", "ROWS", "MS", "DATASETS", "PURPOSE", "OUTCOME"], &rows);
    // SQL on its own line under each entry: it is long and varies most.
    let mut lines: Vec<String> = out.lines().map(str::to_owned).collect();
    for (i, record) in records.iter().enumerate() {
        if let Some(sql) = &record.entry.sql_text
            && let Some(line) = lines.get_mut(i + 1)
        {
            line.push_str(&format!("\n      sql: {}", one_line(sql, SQL_WIDTH)));
        }
    }
    out = lines.join("\n");
    out.push('\n');
    out
}

/// `text` on one line (control characters as spaces), cut to `width` characters.
fn one_line(text: &str, width: usize) -> String {
    let flat: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if flat.chars().count() <= width {
        flat
    } else {
        let mut cut: String = flat.chars().take(width.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use civlink_catalog::policy::{AuditAction, AuditEntry, AuditOutcome};

    #[test]
    fn lines_are_flattened_and_cut_by_characters() {
        assert_eq!(one_line("a\nb\tc", 10), "a b c");
        assert_eq!(one_line("张三李四王五", 4), "张三李…");
        assert_eq!(one_line("", 0), "");
    }

    #[test]
    fn the_log_table_shows_sql_under_its_entry() {
        let mut with_sql = AuditEntry::new("alice", AuditAction::Query, AuditOutcome::OK);
        with_sql.sql_text = Some("SELECT *\nFROM gongan.population".into());
        with_sql.datasets = vec!["gongan.population".into()];
        with_sql.rows = Some(3);
        let records = [
            AuditRecord {
                seq: 1,
                entry: AuditEntry::new("cli:root", AuditAction::TokenCreate, AuditOutcome::OK),
                prev_hash: String::new(),
                hash: String::new(),
            },
            AuditRecord { seq: 2, entry: with_sql, prev_hash: String::new(), hash: String::new() },
        ];
        let text = log_table(&records);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("SEQ"));
        assert!(lines[1].starts_with("1 ") && lines[1].contains("token_create"), "{text}");
        assert!(lines[2].starts_with("2 ") && lines[2].contains("gongan.population"), "{text}");
        assert_eq!(lines[3], "      sql: SELECT * FROM gongan.population");
    }
}
