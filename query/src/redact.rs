//! Personal data out of log lines and audit outcomes.
//!
//! Engine messages quote the values they failed on (`Cannot cast string
//! '张三' to value of Int32 type`, `Error parsing timestamp from '…'`). The
//! principal that ran the query may see those values, so its client gets
//! the message whole; the server log and the audit log keep it with every
//! quoted value replaced, and with any run of 15 or more digits (an ID
//! number, a bank account, a phone number with its country code) masked.

/// Whether a log event may be written at all, whatever level the operator
/// asked for. Civlink's own events are written with their values redacted;
/// the engine and storage crates log the data itself below `WARN` (Delta
/// Lake's debug events carry each file's min/max statistics, so the first
/// and last name and ID number of every file; DataFusion's carry plans with
/// their literals), so theirs stop at `WARN`.
pub fn may_log(metadata: &tracing::Metadata<'_>) -> bool {
    metadata.target().starts_with("civlink") || *metadata.level() <= tracing::Level::WARN
}

/// `text` with every single-quoted span replaced by `'…'` and long digit
/// runs masked.
pub fn quoted_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('\'') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('\'') {
            Some(close) => {
                out.push_str("'…'");
                rest = &after[close + 1..];
            }
            None => {
                // An unterminated quote: everything after it may be a value.
                out.push_str("'…");
                rest = "";
            }
        }
    }
    out.push_str(rest);
    digit_runs(&out)
}

/// Runs of 15 or more ASCII digits (an `X` check character included) masked
/// as [`civlink_standards::mask::for_log`] does.
fn digit_runs(text: &str) -> String {
    const LONG: usize = 15;
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_digit() || (i > start && matches!(bytes[i], b'X' | b'x'))) {
                i += 1;
            }
            if i - start >= LONG {
                out.push_str(&text[copied..start]);
                out.push_str(&civlink_standards::mask::for_log(&text[start..i]));
                copied = i;
            }
        } else {
            i += 1;
        }
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_are_replaced() {
        assert_eq!(
            quoted_values("Cannot cast string '张三' to value of Int32 type"),
            "Cannot cast string '…' to value of Int32 type"
        );
        assert_eq!(quoted_values("a 'b' c 'd'"), "a '…' c '…'");
        assert_eq!(quoted_values("open 'tail"), "open '…");
        assert_eq!(quoted_values("no quotes"), "no quotes");
    }

    #[test]
    fn id_numbers_are_masked_anywhere() {
        let text = quoted_values("value 11010519491231002X failed; 630102 is fine");
        assert!(!text.contains("11010519491231002X"), "{text}");
        assert!(text.contains("630102 is fine"));
    }
}
