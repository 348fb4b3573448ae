//! The process's operational metrics: a tiny registry of counters and
//! histograms, rendered in the Prometheus text exposition format (0.0.4).
//!
//! One process-global [`Registry`] ([`global`]) lives here because every
//! crate that counts something reaches the catalog: the query layer
//! (queries and rows per transport, table-cache hits and misses), the
//! connectors (ingested rows by outcome) and the REST API (requests by route
//! template and status, latency). No metrics crate is pulled in: a series
//! is a map entry behind one mutex, touched a few times per request.
//!
//! Label values are bounded by construction: route *templates* (never raw
//! paths), audit action codes, outcome kinds. Nothing personal, no dataset
//! contents, no principal names.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | [`HTTP_REQUESTS`] | counter | `route`, `method`, `status` |
//! | [`HTTP_DURATION`] | histogram (seconds) | `route` |
//! | [`QUERIES`] | counter | `transport`, `action`, `outcome` |
//! | [`QUERY_ROWS`] | counter | `transport`, `action` |
//! | [`INGEST_ROWS`] | counter | `outcome` (`written`, `quarantined`, `duplicate`) |
//! | [`TABLE_CACHE`] | counter | `result` (`hit`, `miss`) |
//!
//! Audit write failures are the auditor's own count, rendered by the API
//! with these (`civlink_audit_write_failures_total`).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{LazyLock, Mutex, PoisonError};

/// REST requests by route template, method and status.
pub const HTTP_REQUESTS: Metric =
    Metric { name: "civlink_http_requests_total", help: "REST requests, by route template, method and status" };
/// REST request latency by route template, in seconds.
pub const HTTP_DURATION: Metric = Metric {
    name: "civlink_http_request_duration_seconds",
    help: "REST request latency in seconds, by route template",
};
/// Governed queries by transport, audit action and outcome.
pub const QUERIES: Metric =
    Metric { name: "civlink_queries_total", help: "governed queries, by transport, audit action and outcome" };
/// Rows served by governed queries, by transport and audit action.
pub const QUERY_ROWS: Metric =
    Metric { name: "civlink_query_rows_total", help: "rows served by governed queries, by transport and action" };
/// Rows of committed ingestion runs, by outcome.
pub const INGEST_ROWS: Metric = Metric {
    name: "civlink_ingest_rows_total",
    help: "rows of committed ingestion runs, by outcome (written, quarantined, duplicate)",
};
/// Table-cache lookups, by result.
pub const TABLE_CACHE: Metric =
    Metric { name: "civlink_table_cache_lookups_total", help: "table cache lookups, by result (hit, miss)" };

/// Histogram bucket bounds (seconds) for latencies.
pub const LATENCY_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// A metric's name and help text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    /// The exposition name.
    pub name: &'static str,
    /// The `# HELP` text.
    pub help: &'static str,
}

/// Label pairs, sorted by name when stored.
type Labels = Vec<(&'static str, String)>;

#[derive(Debug)]
enum Family {
    Counters(BTreeMap<Labels, u64>),
    Histograms(BTreeMap<Labels, Histogram>),
}

#[derive(Debug, Clone)]
struct Histogram {
    /// Observations at most each bound of [`LATENCY_BUCKETS`] (not cumulative).
    buckets: [u64; LATENCY_BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// Counters and histograms by metric (see the module docs).
#[derive(Debug, Default)]
pub struct Registry {
    families: Mutex<BTreeMap<&'static str, (Metric, Family)>>,
}

/// The process's registry.
pub fn global() -> &'static Registry {
    static GLOBAL: LazyLock<Registry> = LazyLock::new(Registry::default);
    &GLOBAL
}

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    let mut labels: Labels = pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    labels.sort();
    labels
}

impl Registry {
    /// Add `by` to the counter `metric` with these labels.
    pub fn add(&self, metric: Metric, pairs: &[(&'static str, &str)], by: u64) {
        let mut families = self.families.lock().unwrap_or_else(PoisonError::into_inner);
        let (_, family) = families.entry(metric.name).or_insert_with(|| (metric, Family::Counters(BTreeMap::new())));
        if let Family::Counters(series) = family {
            let value = series.entry(labels(pairs)).or_insert(0);
            *value = value.saturating_add(by);
        }
    }

    /// Add one to the counter `metric` with these labels.
    pub fn inc(&self, metric: Metric, pairs: &[(&'static str, &str)]) {
        self.add(metric, pairs, 1);
    }

    /// Record `seconds` in the histogram `metric` with these labels.
    pub fn observe(&self, metric: Metric, pairs: &[(&'static str, &str)], seconds: f64) {
        let mut families = self.families.lock().unwrap_or_else(PoisonError::into_inner);
        let (_, family) = families.entry(metric.name).or_insert_with(|| (metric, Family::Histograms(BTreeMap::new())));
        if let Family::Histograms(series) = family {
            let h = series.entry(labels(pairs)).or_insert_with(|| Histogram {
                buckets: [0; LATENCY_BUCKETS.len()],
                sum: 0.0,
                count: 0,
            });
            if let Some(i) = LATENCY_BUCKETS.iter().position(|bound| seconds <= *bound) {
                h.buckets[i] += 1;
            }
            h.sum += seconds;
            h.count += 1;
        }
    }

    /// A counter's value now (0 when never counted): for tests and checks.
    pub fn counter(&self, metric: Metric, pairs: &[(&'static str, &str)]) -> u64 {
        let families = self.families.lock().unwrap_or_else(PoisonError::into_inner);
        match families.get(metric.name) {
            Some((_, Family::Counters(series))) => series.get(&labels(pairs)).copied().unwrap_or(0),
            _ => 0,
        }
    }

    /// Every series in the text exposition format, metrics by name.
    pub fn render(&self) -> String {
        let families = self.families.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::new();
        for (metric, family) in families.values() {
            match family {
                Family::Counters(series) => {
                    header(&mut out, metric, "counter");
                    for (labels, value) in series {
                        let _ = writeln!(out, "{}{} {value}", metric.name, render_labels(labels, None));
                    }
                }
                Family::Histograms(series) => {
                    header(&mut out, metric, "histogram");
                    for (labels, h) in series {
                        let mut cumulative = 0;
                        for (bound, n) in LATENCY_BUCKETS.iter().zip(h.buckets) {
                            cumulative += n;
                            let le = bound.to_string();
                            let _ = writeln!(
                                out,
                                "{}_bucket{} {cumulative}",
                                metric.name,
                                render_labels(labels, Some(&le))
                            );
                        }
                        let all = render_labels(labels, Some("+Inf"));
                        let _ = writeln!(out, "{}_bucket{all} {}", metric.name, h.count);
                        let plain = render_labels(labels, None);
                        let _ = writeln!(out, "{}_sum{plain} {}", metric.name, h.sum);
                        let _ = writeln!(out, "{}_count{plain} {}", metric.name, h.count);
                    }
                }
            }
        }
        out
    }
}

/// `# HELP` and `# TYPE` lines.
pub fn header(out: &mut String, metric: &Metric, kind: &str) {
    let _ = writeln!(out, "# HELP {} {}", metric.name, metric.help);
    let _ = writeln!(out, "# TYPE {} {kind}", metric.name);
}

/// `{a="x",le="0.5"}`, or nothing without labels.
fn render_labels(labels: &Labels, le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() { String::new() } else { format!("{{{}}}", parts.join(",")) }
}

/// A label value escaped as the format requires (backslash, quote, newline).
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The transport an audit action's queries arrive by: `rest`, `flight`, or
/// `internal` (rules, checks and the CLI).
pub fn transport(action: crate::policy::AuditAction) -> &'static str {
    use crate::policy::AuditAction as A;
    match action {
        A::RestList | A::RestDescribe | A::RestRows | A::RestPublishStandard | A::RestReadStandard | A::RestRequest => {
            "rest"
        }
        A::Handshake | A::Query | A::Prepare | A::Metadata | A::Cancel => "flight",
        _ => "internal",
    }
}

/// Count a committed run's rows, by outcome ([`INGEST_ROWS`]).
pub fn count_ingested(counts: &crate::model::RunCounts) {
    for (outcome, rows) in
        [("written", counts.written), ("quarantined", counts.quarantined), ("duplicate", counts.duplicate)]
    {
        global().add(INGEST_ROWS, &[("outcome", outcome)], rows);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_render_in_the_text_format() {
        let r = Registry::default();
        r.inc(QUERIES, &[("transport", "rest"), ("action", "rest_rows"), ("outcome", "ok")]);
        r.add(QUERIES, &[("action", "rest_rows"), ("outcome", "ok"), ("transport", "rest")], 2);
        r.observe(HTTP_DURATION, &[("route", "/a/{id}")], 0.003);
        r.observe(HTTP_DURATION, &[("route", "/a/{id}")], 20.0);
        r.inc(TABLE_CACHE, &[("result", "say \"hi\"\n")]);
        let text = r.render();
        assert!(text.contains("# TYPE civlink_queries_total counter\n"), "{text}");
        assert!(text.contains("civlink_queries_total{action=\"rest_rows\",outcome=\"ok\",transport=\"rest\"} 3\n"));
        assert!(text.contains("# TYPE civlink_http_request_duration_seconds histogram\n"));
        assert!(text.contains("civlink_http_request_duration_seconds_bucket{route=\"/a/{id}\",le=\"0.001\"} 0\n"));
        assert!(text.contains("civlink_http_request_duration_seconds_bucket{route=\"/a/{id}\",le=\"0.005\"} 1\n"));
        assert!(text.contains("civlink_http_request_duration_seconds_bucket{route=\"/a/{id}\",le=\"+Inf\"} 2\n"));
        assert!(text.contains("civlink_http_request_duration_seconds_count{route=\"/a/{id}\"} 2\n"));
        assert!(text.contains(r#"result="say \"hi\"\n""#), "{text}");
        assert_eq!(r.counter(QUERIES, &[("outcome", "ok"), ("transport", "rest"), ("action", "rest_rows")]), 3);
        assert_eq!(r.counter(QUERIES, &[("outcome", "denied")]), 0);
    }

    #[test]
    fn committed_rows_are_counted_by_outcome() {
        use crate::model::RunCounts;
        let before = |outcome| global().counter(INGEST_ROWS, &[("outcome", outcome)]);
        let (written, quarantined, duplicate) = (before("written"), before("quarantined"), before("duplicate"));
        count_ingested(&RunCounts { read: 10, written: 7, quarantined: 2, duplicate: 1 });
        assert_eq!(before("written") - written, 7);
        assert_eq!(before("quarantined") - quarantined, 2);
        assert_eq!(before("duplicate") - duplicate, 1);
        assert!(global().render().contains("civlink_ingest_rows_total{outcome=\"written\"}"));
    }
}
