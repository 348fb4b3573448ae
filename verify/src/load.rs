//! Loading the rule set: the shipped rules, then each configured directory's
//! `*.toml` (a directory's rule replaces a shipped one of the same id, which
//! is how a province revises a rule without a release), every rule parsed
//! and checked against the datasets. Every broken rule, with every one of
//! its problems, is reported at once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::check::{CheckedRule, Shapes, check_rule};
use crate::error::{Error, Problem, Result, RuleProblems};
use crate::rule::Rule;
use crate::shipped::SHIPPED;

/// Where a rule came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Shipped in the binary.
    Shipped,
    /// A file.
    File(PathBuf),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Shipped => f.write_str("shipped"),
            Origin::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// The loaded, checked rules, by id.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: BTreeMap<String, (CheckedRule, Origin)>,
}

impl RuleSet {
    /// Load the shipped rules and those in `dirs`, checking each against `shapes`.
    pub async fn load(dirs: &[PathBuf], shapes: &Shapes) -> Result<RuleSet> {
        let mut parsed: BTreeMap<String, (Rule, Origin)> = BTreeMap::new();
        let mut broken = Vec::new();
        for (stem, text) in SHIPPED {
            match Rule::parse(text, Some(stem)) {
                Ok(rule) => {
                    parsed.insert(rule.id.clone(), (rule, Origin::Shipped));
                }
                Err(problems) => broken.push(problems),
            }
        }
        for dir in dirs {
            let mut from_dir: BTreeMap<String, PathBuf> = BTreeMap::new();
            for path in rule_files(dir)? {
                match Rule::read(&path) {
                    Ok(rule) => {
                        if let Some(other) = from_dir.get(&rule.id) {
                            broken.push(RuleProblems::new(
                                &rule.id,
                                vec![Problem::DuplicateId { other: other.display().to_string() }],
                            ));
                            continue;
                        }
                        from_dir.insert(rule.id.clone(), path.clone());
                        parsed.insert(rule.id.clone(), (rule, Origin::File(path)));
                    }
                    Err(problems) => broken.push(problems),
                }
            }
        }
        let mut rules = BTreeMap::new();
        for (id, (rule, origin)) in parsed {
            match check_rule(rule, shapes).await {
                Ok(checked) => {
                    rules.insert(id, (checked, origin));
                }
                Err(problems) => broken.push(problems),
            }
        }
        if broken.is_empty() {
            Ok(RuleSet { rules })
        } else {
            broken.sort_by(|a, b| a.rule.cmp(&b.rule));
            Err(Error::Rules(broken))
        }
    }

    /// Every rule, by id, with where it came from.
    pub fn iter(&self) -> impl Iterator<Item = (&CheckedRule, &Origin)> {
        self.rules.values().map(|(rule, origin)| (rule, origin))
    }

    /// The rule with this id.
    pub fn get(&self, id: &str) -> Option<&CheckedRule> {
        self.rules.get(id).map(|(rule, _)| rule)
    }

    /// The rules `names` names, in that order; with no names, every enabled rule.
    pub fn select(&self, names: &[String]) -> Result<Vec<&CheckedRule>> {
        if names.is_empty() {
            return Ok(self.rules.values().map(|(r, _)| r).filter(|r| r.rule.enabled).collect());
        }
        names
            .iter()
            .map(|name| {
                self.get(name).ok_or_else(|| Error::UnknownRule {
                    rule: name.clone(),
                    loaded: self.rules.keys().cloned().collect::<Vec<_>>().join(", "),
                })
            })
            .collect()
    }

    /// The enabled rules scheduled to run after an ingestion of `dataset`
    /// commits (those that read it), by id.
    pub fn after_ingest_of(&self, dataset: &civlink_catalog::model::DatasetId) -> Vec<&CheckedRule> {
        self.rules
            .values()
            .map(|(r, _)| r)
            .filter(|r| r.rule.enabled && r.rule.after_ingest.is_some() && r.datasets.contains(dataset))
            .collect()
    }

    /// How many rules are loaded.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// The `*.toml` files of `dir`, by name.
fn rule_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let listing = std::fs::read_dir(dir)
        .map_err(|e| Error::Directory { path: dir.display().to_string(), message: e.to_string() })?;
    let mut files = Vec::new();
    for entry in listing {
        let entry = entry.map_err(|e| Error::Directory { path: dir.display().to_string(), message: e.to_string() })?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_file_in_the_project_is_shipped_and_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");
        let mut on_disk: Vec<String> =
            rule_files(&dir).unwrap().iter().map(|p| p.file_stem().unwrap().to_string_lossy().into_owned()).collect();
        on_disk.sort();
        let mut shipped: Vec<String> = SHIPPED.iter().map(|(stem, _)| (*stem).to_owned()).collect();
        shipped.sort();
        assert_eq!(on_disk, shipped, "rules/ and verify/src/shipped.rs disagree");
        for (stem, text) in SHIPPED {
            Rule::parse(text, Some(stem)).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[tokio::test]
    async fn a_missing_directory_is_a_clear_error() {
        let err =
            RuleSet::load(&[PathBuf::from("/nonexistent/rules")], &Shapes::new(BTreeMap::new())).await.unwrap_err();
        assert!(matches!(err, Error::Directory { .. }), "{err}");
    }
}
