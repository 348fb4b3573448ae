//! Checking the settings of the sources that are not files: a database
//! (`[source.database]`) and an HTTP API (`[source.http]`), every problem
//! at once, like the rest of the job file.

use super::Checker;

/// An HTTP API source's settings, every problem at once.
pub(super) fn check_http(
    c: &mut Checker,
    location: &str,
    http: &crate::source::http::HttpSpec,
    job: &toml::Table,
    source: &toml::Table,
) {
    use crate::source::http::Pagination;
    match url::Url::parse(location) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => {
            if url.password().is_some() {
                c.problem("source.location", "the location carries a password: name a token_env or token_file");
            }
        }
        _ => c.problem("source.location", "an HTTP API source needs an http:// or https:// URL"),
    }
    if http.token_env.is_some() && http.token_file.is_some() {
        c.problem("source.http", "give either token_env or token_file, not both");
    }
    if http.auth.is_some() && http.token_env.is_none() && http.token_file.is_none() {
        c.problem("source.http.auth", "needs token_env or token_file");
    }
    if http.pagination == Some(Pagination::NextLink) && http.next_link.is_none() {
        c.problem("source.http.next_link", "next_link pagination needs the path of the next page's URL");
    }
    if http.page_size == Some(0) {
        c.problem("source.http.page_size", "must be 1 or more");
    }
    for key in ["format", "sheet", "sheets", "header_row", "trailer_words", "csv"] {
        if source.contains_key(key) {
            c.problem(format!("source.{key}"), "applies to files, not to an HTTP API source");
        }
    }
    let mode = job.get("mode").and_then(|v| v.as_str()).unwrap_or("append");
    match (&http.cursor_field, &http.cursor_param) {
        (Some(_), Some(_)) if mode != "upsert" => c.problem(
            "source.http.cursor_field",
            format!("an incremental source needs mode = \"upsert\" (found {mode:?}): records at the boundary are read again"),
        ),
        (Some(_), None) | (None, Some(_)) => {
            c.problem("source.http", "cursor_field and cursor_param go together")
        }
        (None, None) if !matches!(mode, "overwrite" | "upsert") => c.problem(
            "mode",
            format!("an HTTP API source is read in full each run: it needs mode = \"overwrite\" or \"upsert\" (found {mode:?})"),
        ),
        _ => {}
    }
}

/// A database source's settings, every problem at once.
pub(super) fn check_database(
    c: &mut Checker,
    location: &str,
    database: &crate::source::database::DatabaseSpec,
    job: &toml::Table,
    source: &toml::Table,
) {
    if crate::source::database::Engine::of_location(location).is_none() {
        c.problem("source.location", "a database source needs a postgres:// or mysql:// (mariadb://) URL");
    }
    if crate::source::database::location_has_password(location) {
        c.problem(
            "source.location",
            "the location carries a password (or does not parse): name it with source.database.password_env or \
             password_file instead",
        );
    }
    match (&database.table, &database.query) {
        (Some(_), Some(_)) => c.problem("source.database", "give either table or query, not both"),
        (None, None) => c.problem("source.database", "give the table or the query to read"),
        (Some(t), None) if t.trim().is_empty() => c.problem("source.database.table", "is empty"),
        (None, Some(q)) if q.trim().is_empty() => c.problem("source.database.query", "is empty"),
        _ => {}
    }
    if database.password_env.is_some() && database.password_file.is_some() {
        c.problem("source.database", "give either password_env or password_file, not both");
    }
    if let Some(deletions) = &database.deletions {
        if job.get("mode").and_then(toml::Value::as_str).is_none_or(|m| m != "upsert" && m != "merge") {
            c.problem("source.database.deletions", "marks rows in place, so the job's mode must be upsert");
        }
        if deletions.column.trim().is_empty() {
            c.problem("source.database.deletions.column", "must name the standard's soft-delete column");
        }
        if deletions.every_hours.is_some_and(|h| h > 87_600) {
            c.problem("source.database.deletions.every_hours", "at most 87600 (ten years)");
        }
        if deletions.max_share_percent.is_some_and(|p| p == 0 || p > 100) {
            c.problem("source.database.deletions.max_share_percent", "must be 1 to 100");
        }
    }
    for key in ["format", "sheet", "sheets", "header_row", "trailer_words", "csv"] {
        if source.contains_key(key) {
            c.problem(format!("source.{key}"), "applies to files, not to a database source");
        }
    }
    let mode = job.get("mode").and_then(|v| v.as_str()).unwrap_or("append");
    if database.cursor.is_none() && !matches!(mode, "overwrite" | "upsert") {
        c.problem(
            "mode",
            format!(
                "a database source is read in full each run: it needs mode = \"overwrite\" or \"upsert\" \
                 (found {mode:?}), or an incremental cursor with upsert"
            ),
        );
    }
    if database.read_retries.is_some_and(|r| r > 10) {
        c.problem("source.database.read_retries", "at most 10");
    }
    if database.connect_retries.is_some_and(|r| r > 20) {
        c.problem("source.database.connect_retries", "at most 20");
    }
    if database.cursor.is_some() {
        if mode != "upsert" {
            c.problem(
                "source.database.cursor",
                format!(
                    "an incremental source needs mode = \"upsert\" (found {mode:?}): rows at the cursor boundary \
                     are read again and must replace themselves"
                ),
            );
        }
    } else if database.lookback.is_some() {
        c.problem("source.database.lookback", "needs a cursor");
    }
}
