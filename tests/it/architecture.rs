//! The layout `docs/architecture.md` draws, checked against the sources:
//!
//! * crates depend on each other only along the drawn arrows (the
//!   transports are siblings over the query layer, never each other's);
//! * inside every crate, no two sibling modules import each other in a
//!   cycle (a module's children may refer to it: that is how one type's
//!   methods are split over files).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::common::repo;

/// Each crate's directory, and the civlink crates it may depend on (normal dependencies).
const ALLOWED: &[(&str, &str, &[&str])] = &[
    ("civlink-standards", "standards", &[]),
    ("civlink-catalog", "catalog", &["civlink-standards"]),
    ("civlink-connectors", "connectors", &["civlink-standards", "civlink-catalog"]),
    ("civlink-query", "query", &["civlink-standards", "civlink-catalog"]),
    ("civlink-flight", "flight", &["civlink-standards", "civlink-catalog", "civlink-query"]),
    ("civlink-api", "api", &["civlink-standards", "civlink-catalog", "civlink-query", "civlink-verify"]),
    ("civlink-verify", "verify", &["civlink-standards", "civlink-catalog", "civlink-query"]),
    ("civlink-synth", "synth", &["civlink-standards"]),
    ("civlink-testkit", "testkit", &["civlink-standards", "civlink-catalog"]),
];

/// The civlink crates named in a manifest's `[dependencies]` section.
fn civlink_dependencies(manifest: &str) -> BTreeSet<String> {
    let mut in_section = false;
    let mut found = BTreeSet::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == "[dependencies]";
            continue;
        }
        if in_section && let Some(name) = line.split(['.', ' ', '=']).next().filter(|n| n.starts_with("civlink-")) {
            found.insert(name.to_owned());
        }
    }
    found
}

#[test]
fn crates_depend_only_along_the_drawn_arrows() {
    let drawn = std::fs::read_to_string(repo().join("docs/architecture.md")).expect("docs/architecture.md");
    for (name, dir, allowed) in ALLOWED {
        assert!(drawn.contains(name), "docs/architecture.md does not show {name}");
        let manifest = std::fs::read_to_string(repo().join(dir).join("Cargo.toml")).unwrap();
        let found = civlink_dependencies(&manifest);
        let allowed: BTreeSet<String> = allowed.iter().map(|s| (*s).to_owned()).collect();
        let extra: Vec<_> = found.difference(&allowed).collect();
        assert!(extra.is_empty(), "{name} depends on {extra:?}, which docs/architecture.md does not draw");
    }
    let root = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let members: BTreeSet<String> = ALLOWED.iter().map(|(_, dir, _)| format!("\"{dir}\"")).collect();
    for member in members {
        assert!(root.contains(&member), "workspace member {member} missing from the check");
    }
}

/// Every `.rs` file under `src` with its module path (`[]` = the crate root).
fn modules(src: &Path) -> Vec<(Vec<String>, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).unwrap();
            let mut parts: Vec<String> =
                relative.iter().map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned()).collect();
            if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
                parts.pop();
            }
            out.push((parts, path));
        }
    }
    out
}

/// The code of a file without comments and without its test module (by
/// convention the last item of a file).
fn code(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        out.push_str(line.split(" //").next().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// The module paths a file's code refers to, resolved against `module`.
fn references(code: &str, module: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    for (start, _) in code.match_indices("crate::").chain(code.match_indices("super::")) {
        // Only whole paths: not `civlink_crate::`.
        if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
            continue;
        }
        let path: String =
            code[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':').collect();
        let mut segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
        let mut base: Vec<String> = if segments.first() == Some(&"crate") {
            segments.remove(0);
            Vec::new()
        } else {
            let mut base = module.to_vec();
            while segments.first() == Some(&"super") {
                segments.remove(0);
                base.pop();
            }
            base
        };
        base.extend(segments.iter().map(|s| (*s).to_owned()));
        out.push(base);
    }
    out
}

#[test]
fn no_sibling_modules_import_each_other_in_a_cycle() {
    let crates = ["standards", "catalog", "connectors", "query", "flight", "api", "synth", "testkit", "src"];
    let mut cycles = Vec::new();
    for krate in crates {
        let src = if krate == "src" { repo().join("src") } else { repo().join(krate).join("src") };
        let files = modules(&src);
        let known: BTreeSet<Vec<String>> = files.iter().map(|(m, _)| m.clone()).collect();
        // parent → (child → children it refers to)
        let mut graphs: BTreeMap<Vec<String>, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
        for (module, path) in &files {
            let text = std::fs::read_to_string(path).unwrap();
            for target in references(&code(&text), module) {
                // The deepest known module the path names.
                let Some(target) = (0..=target.len()).rev().map(|n| target[..n].to_vec()).find(|t| known.contains(t))
                else {
                    continue;
                };
                // Lift both ends to children of their nearest common ancestor.
                let common = module.iter().zip(&target).take_while(|(a, b)| a == b).count();
                if common == module.len() || common == target.len() {
                    continue; // a module and its own ancestor or descendant
                }
                let parent = module[..common].to_vec();
                graphs
                    .entry(parent)
                    .or_default()
                    .entry(module[common].clone())
                    .or_default()
                    .insert(target[common].clone());
            }
        }
        for (parent, graph) in graphs {
            if let Some(cycle) = find_cycle(&graph) {
                cycles.push(format!("{krate}: under {:?}: {}", parent.join("::"), cycle.join(" → ")));
            }
        }
    }
    assert!(cycles.is_empty(), "modules importing each other in a cycle:\n{}", cycles.join("\n"));
}

/// A cycle of the graph, if it has one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_cycle_check_finds_cycles() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_owned(), ["b".to_owned()].into()),
        ("b".to_owned(), ["c".to_owned()].into()),
        ("c".to_owned(), ["a".to_owned()].into()),
    ]
    .into();
    assert_eq!(find_cycle(&graph).map(|c| c.len()), Some(4));
    let acyclic: BTreeMap<String, BTreeSet<String>> =
        [("a".to_owned(), ["b".to_owned()].into()), ("b".to_owned(), BTreeSet::new())].into();
    assert_eq!(find_cycle(&acyclic), None);
    let module = vec!["service".to_owned(), "cancel".to_owned()];
    let refs = references("use super::CivlinkFlightSql;\nuse crate::error::to_status;", &module);
    assert_eq!(
        refs,
        [vec!["error".to_owned(), "to_status".to_owned()], vec!["service".to_owned(), "CivlinkFlightSql".to_owned()]]
    );
    assert_eq!(
        civlink_dependencies(
            "[dependencies]\ncivlink-query.workspace = true\n[dev-dependencies]\ncivlink-testkit.workspace = true\n"
        ),
        ["civlink-query".to_owned()].into()
    );
}
