//! How catalog values are written to and read from the database's portable
//! column types (TEXT and BIGINT), and how URLs are redacted for messages.

use chrono::{DateTime, SecondsFormat, Utc};
use civlink_standards::standard::Sensitivity;

use super::{Error, Result};

/// A timestamp as stored: RFC 3339 UTC with nanoseconds and `Z`.
///
/// Fixed width, so the text is lossless and sorts like the instant for years
/// 0000–9999.
pub(crate) fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Parse a stored timestamp.
pub(crate) fn parse_timestamp(what: impl FnOnce() -> String, text: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| Error::Corrupt { what: what(), message: format!("\"{text}\" is not an RFC 3339 timestamp: {e}") })
}

/// The stored code of a classification.
pub(crate) fn sensitivity_code(s: Sensitivity) -> &'static str {
    match s {
        Sensitivity::Public => "public",
        Sensitivity::Internal => "internal",
        Sensitivity::Sensitive => "sensitive",
        Sensitivity::Secret => "secret",
    }
}

/// Parse a stored classification code.
pub(crate) fn parse_sensitivity(code: &str) -> Option<Sensitivity> {
    [Sensitivity::Public, Sensitivity::Internal, Sensitivity::Sensitive, Sensitivity::Secret]
        .into_iter()
        .find(|s| sensitivity_code(*s) == code)
}

/// A count as a BIGINT. Counts beyond `i64::MAX` cannot be stored.
pub(crate) fn count_to_db(what: &'static str, value: u64) -> Result<i64> {
    i64::try_from(value).map_err(|_| Error::Invalid { what, message: format!("{value} does not fit a BIGINT column") })
}

/// A stored BIGINT count.
pub(crate) fn count_from_db(what: impl FnOnce() -> String, value: i64) -> Result<u64> {
    u64::try_from(value).map_err(|_| Error::Corrupt { what: what(), message: format!("negative count {value}") })
}

/// Query parameters whose values are secrets.
fn secret_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["password", "secret", "token"].iter().any(|s| name.contains(s))
}

/// `url` with its password (user-info or query parameter) replaced by `***`.
///
/// A URL that does not parse is reduced to its scheme: it may hold a
/// password in a place we cannot recognise.
pub(crate) fn redact_url(url: &str) -> String {
    let opaque = || match url.split_once(':') {
        Some((scheme, _))
            if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            format!("{scheme}:…")
        }
        _ => "<unparseable URL>".to_owned(),
    };
    let Ok(mut parsed) = url::Url::parse(url) else {
        return opaque();
    };
    if parsed.password().is_some() && parsed.set_password(Some("***")).is_err() {
        return opaque();
    }
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if secret_parameter(&k) { "***".to_owned() } else { v.into_owned() };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

/// The secrets in `url` (password and secret query parameters, raw and
/// percent-decoded), so that messages can be scrubbed of them.
fn secrets_of(url: &str) -> Vec<String> {
    let mut secrets = Vec::new();
    if let Ok(parsed) = url::Url::parse(url) {
        if let Some(p) = parsed.password() {
            secrets.push(p.to_owned());
            // The user-info is percent-encoded; the driver sees it decoded.
            let decoded: String = url::form_urlencoded::parse(format!("x={}", p.replace('+', "%2B")).as_bytes())
                .map(|(_, v)| v.into_owned())
                .collect();
            secrets.push(decoded);
        }
        for (k, v) in parsed.query_pairs() {
            if secret_parameter(&k) {
                secrets.push(v.into_owned());
            }
        }
    } else if let Some((_, rest)) = url.split_once("://") {
        // Unparseable: treat everything between `user:` and `@` as secret.
        if let Some((userinfo, _)) = rest.rsplit_once('@')
            && let Some((_, password)) = userinfo.split_once(':')
        {
            secrets.push(password.to_owned());
        }
    }
    secrets.retain(|s| !s.is_empty());
    // Longest first, so a secret containing another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets
}

/// `message` with every secret of `url` replaced by `***`.
pub(crate) fn scrub(message: &str, url: &str) -> String {
    secrets_of(url).iter().fold(message.to_owned(), |m, secret| m.replace(secret.as_str(), "***"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn timestamps_are_fixed_width_and_lossless() {
        let t = Utc.with_ymd_and_hms(2024, 2, 29, 23, 59, 58).unwrap() + chrono::Duration::nanoseconds(123_456_789);
        let text = timestamp(t);
        assert_eq!(text, "2024-02-29T23:59:58.123456789Z");
        assert_eq!(parse_timestamp(|| "t".into(), &text).unwrap(), t);
        let whole = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(timestamp(whole).len(), text.len());
        assert!(timestamp(whole) < text);
    }

    #[test]
    fn offsets_are_normalised_to_utc() {
        let t = parse_timestamp(|| "t".into(), "2024-01-01T08:00:00+08:00").unwrap();
        assert_eq!(t, Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap());
    }

    #[test]
    fn bad_timestamps_are_corrupt_not_panics() {
        for bad in ["", "yesterday", "2024-13-01T00:00:00Z", "２０２４", "\u{0}"] {
            let err = parse_timestamp(|| "runs.started_at".into(), bad).unwrap_err();
            assert!(matches!(err, Error::Corrupt { ref what, .. } if what == "runs.started_at"), "{err}");
        }
    }

    #[test]
    fn sensitivity_codes_round_trip_and_match_serde() {
        for s in [Sensitivity::Public, Sensitivity::Internal, Sensitivity::Sensitive, Sensitivity::Secret] {
            assert_eq!(parse_sensitivity(sensitivity_code(s)), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::Value::from(sensitivity_code(s)));
        }
        assert_eq!(parse_sensitivity("Secret"), None);
    }

    #[test]
    fn counts_fit_or_fail() {
        assert_eq!(count_to_db("rows", 7).unwrap(), 7);
        assert!(matches!(count_to_db("rows", u64::MAX), Err(Error::Invalid { what: "rows", .. })));
        assert_eq!(count_from_db(|| "c".into(), 3).unwrap(), 3);
        assert!(matches!(count_from_db(|| "c".into(), -1), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn passwords_never_survive_redaction() {
        let cases = [
            "postgres://civlink:s3cr%40t@db.example:5432/catalog",
            "postgresql://civlink:s3cr%40t@db.example/catalog?sslmode=disable",
            "postgres://civlink@db.example/catalog?password=s3cr%40t&application_name=x",
            "postgres://civlink:s3cr@t@db.example/catalog",
            "mysql://root:s3cr%40t@localhost/x",
        ];
        for url in cases {
            let redacted = redact_url(url);
            assert!(!redacted.contains("s3cr"), "{url} -> {redacted}");
        }
        assert_eq!(redact_url("postgres://civlink:pw@db:5432/catalog"), "postgres://civlink:***@db:5432/catalog");
        assert_eq!(redact_url("sqlite:///data/catalog.db?mode=rwc"), "sqlite:///data/catalog.db?mode=rwc");
        assert_eq!(redact_url("postgres://civlink@db/catalog"), "postgres://civlink@db/catalog");
    }

    #[test]
    fn unparseable_urls_are_reduced_to_their_scheme() {
        assert_eq!(redact_url("postgres://u:pw@[bad/x"), "postgres:…");
        assert_eq!(redact_url("no scheme at all, pw"), "<unparseable URL>");
        assert_eq!(redact_url("名字:秘密"), "<unparseable URL>");
    }

    #[test]
    fn messages_are_scrubbed_of_secrets() {
        let url = "postgres://civlink:s3cr%40t@db/catalog?password=other";
        let message = "failed for civlink with s3cr@t / s3cr%40t / other";
        let scrubbed = scrub(message, url);
        assert!(!scrubbed.contains("s3cr") && !scrubbed.contains("other"), "{scrubbed}");
        assert_eq!(scrub("x", "postgres://u:pw@[bad/x"), "x");
        assert_eq!(scrub("u:pw@", "postgres://u:pw@[bad/x"), "u:***@");
    }
}
