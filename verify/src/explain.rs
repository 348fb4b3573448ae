//! Explanation templates: `低保成员 {name}（{id_number}）…`. A `{column}`
//! is that output column's value as text; `{{` and `}}` are literal braces.
//! A NULL value renders as `—`, so a template never prints "null".

use std::collections::BTreeMap;

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Column(String),
}

impl Template {
    /// Parse `text`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) if c.is_ascii_alphanumeric() || c == '_' => name.push(c),
                            Some(c) => return Err(format!("{{{name}{c}…: a placeholder holds a column name only")),
                            None => return Err(format!("{{{name} is not closed with }}")),
                        }
                    }
                    if name.is_empty() {
                        return Err("{} names no column".to_owned());
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Column(name));
                }
                '}' => return Err("a lone } (write }} for a literal brace)".to_owned()),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template { parts })
    }

    /// The columns it names, in order (repeats included).
    pub fn placeholders(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Column(c) => Some(c.as_str()),
            Part::Text(_) => None,
        })
    }

    /// The text, with each placeholder replaced by `values[column]`
    /// (`—` when the value is absent).
    pub fn render(&self, values: &BTreeMap<String, Option<String>>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Column(column) => match values.get(column).and_then(Option::as_deref) {
                    Some(value) => out.push_str(value),
                    None => out.push('—'),
                },
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_render_and_nulls_show_a_dash() {
        let t = Template::parse("低保成员 {name}（{id}）自 {since} 起 {{注}}").unwrap();
        assert_eq!(t.placeholders().collect::<Vec<_>>(), ["name", "id", "since"]);
        let values = BTreeMap::from([
            ("name".to_owned(), Some("张**".to_owned())),
            ("id".to_owned(), Some("ps_1".to_owned())),
            ("since".to_owned(), None),
        ]);
        assert_eq!(t.render(&values), "低保成员 张**（ps_1）自 — 起 {注}");
    }

    #[test]
    fn malformed_templates_say_why() {
        assert!(Template::parse("{name").unwrap_err().contains("not closed"));
        assert!(Template::parse("{}").unwrap_err().contains("no column"));
        assert!(Template::parse("a } b").unwrap_err().contains("lone"));
        assert!(Template::parse("{na me}").unwrap_err().contains("column name only"));
    }
}
