//! The jobs of a job directory together, and a job's scheduling keys.
//!
//! One file can check its own `missed` and `after` keys (here, called from
//! [`super::Job::load`]); only the whole directory can check that job names
//! are unique, that every `after` names a job that exists, and that no
//! `after` chain comes back to where it started. [`JobSet::load`] makes
//! those checks and lists every problem of every file.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use toml::{Table, Value};

use super::{Checker, Job, JobError};

/// What the scheduler does about occurrences of a job's `schedule` that
/// passed while no scheduler ran (the service was down).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MissedRuns {
    /// Wait for the next occurrence.
    #[default]
    Skip,
    /// Run once when the scheduler starts, however many were missed.
    RunOnce,
}

impl MissedRuns {
    /// The code as written in job files.
    pub fn code(self) -> &'static str {
        match self {
            MissedRuns::Skip => "skip",
            MissedRuns::RunOnce => "run_once",
        }
    }
}

impl fmt::Display for MissedRuns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for MissedRuns {
    type Err = String;

    fn from_str(text: &str) -> Result<MissedRuns, String> {
        match text.trim() {
            "skip" => Ok(MissedRuns::Skip),
            "run_once" | "run-once" => Ok(MissedRuns::RunOnce),
            other => Err(format!("unknown missed-run policy {other:?} (expected skip or run_once)")),
        }
    }
}

/// The checks of `missed` and `after` that one job file can make alone.
pub(super) fn check_own_keys(c: &mut Checker, table: &Table) {
    c.parsed(table, "", "missed", false, MissedRuns::from_str);
    if table.contains_key("missed") && !table.contains_key("schedule") {
        c.problem("missed", "applies to a schedule: give schedule as well, or remove missed");
    }
    if let Some(after) = c.strings(table, "", "after") {
        let own = table.get("name").and_then(Value::as_str);
        let mut seen = BTreeSet::new();
        for name in &after {
            if name.trim().is_empty() {
                c.problem("after", "a job name must not be empty");
            } else if Some(name.as_str()) == own {
                c.problem("after", format!("a job cannot follow itself ({name:?})"));
            } else if !seen.insert(name.as_str()) {
                c.problem("after", format!("{name:?} is named twice"));
            }
        }
    }
}

/// The job files of one directory, checked one by one and together.
#[derive(Debug, Default)]
pub struct JobSet {
    /// Jobs that loaded and pass the checks across jobs, by file name.
    pub jobs: Vec<(PathBuf, Job)>,
    /// Job files with problems, by file name, each with all of its problems.
    pub broken: Vec<(PathBuf, Vec<String>)>,
}

impl JobSet {
    /// Loads every `*.toml` file of `dir`. Only a directory that cannot be
    /// listed is an error; a bad file is listed in [`JobSet::broken`].
    pub fn load(dir: &Path) -> std::io::Result<JobSet> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
            .collect();
        files.sort();
        let loaded = files.into_iter().map(|path| {
            let job = Job::load(&path);
            (path, job)
        });
        Ok(JobSet::check(loaded))
    }

    /// Checks jobs loaded one by one against each other.
    pub fn check(loaded: impl IntoIterator<Item = (PathBuf, Result<Job, JobError>)>) -> JobSet {
        let mut problems: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
        let mut jobs = Vec::new();
        for (path, job) in loaded {
            match job {
                Ok(job) => jobs.push((path, job)),
                Err(JobError::Invalid { problems: found, .. }) => {
                    problems.insert(path, found.iter().map(ToString::to_string).collect());
                }
                Err(other) => {
                    problems.insert(path, vec![other.to_string()]);
                }
            }
        }

        // Names are unique: every file of a name used twice is broken.
        let mut by_name: BTreeMap<&str, Vec<&Path>> = BTreeMap::new();
        for (path, job) in &jobs {
            by_name.entry(job.spec.name.as_str()).or_default().push(path);
        }
        for (name, paths) in &by_name {
            if paths.len() > 1 {
                for path in paths {
                    let others: Vec<String> =
                        paths.iter().filter(|p| *p != path).map(|p| p.display().to_string()).collect();
                    problems
                        .entry(path.to_path_buf())
                        .or_default()
                        .push(format!("name: job name {name:?} is also used by {}", others.join(", ")));
                }
            }
        }

        // `after` names jobs that exist.
        let names: BTreeSet<&str> = by_name.keys().copied().collect();
        for (path, job) in &jobs {
            for upstream in &job.spec.after {
                if !names.contains(upstream.as_str()) {
                    problems.entry(path.clone()).or_default().push(format!(
                        "after: no job named {upstream:?} in this directory (jobs: {})",
                        names.iter().copied().collect::<Vec<_>>().join(", ")
                    ));
                }
            }
        }

        // No cycle among `after`: every job on one is broken, the cycle named.
        let follows: BTreeMap<&str, &[String]> =
            jobs.iter().map(|(_, job)| (job.spec.name.as_str(), job.spec.after.as_slice())).collect();
        for (path, job) in &jobs {
            if let Some(cycle) = cycle_through(&job.spec.name, &follows) {
                problems
                    .entry(path.clone())
                    .or_default()
                    .push(format!("after: a cycle of dependencies, {}", cycle.join(" → ")));
            }
        }

        let jobs = jobs.into_iter().filter(|(path, _)| !problems.contains_key(path)).collect();
        JobSet { jobs, broken: problems.into_iter().collect() }
    }

    /// The job named `name`.
    pub fn get(&self, name: &str) -> Option<&Job> {
        self.jobs.iter().map(|(_, job)| job).find(|job| job.spec.name == name)
    }

    /// The jobs that follow `name` (name it in their `after`).
    pub fn followers<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Job> + 'a {
        self.jobs.iter().map(|(_, job)| job).filter(move |job| job.spec.after.iter().any(|a| a == name))
    }

    /// The names of the loaded jobs, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.jobs.iter().map(|(_, job)| job.spec.name.as_str()).collect();
        names.sort_unstable();
        names
    }
}

/// The shortest `after` path from `start` back to itself, as job names
/// (`start` first and last), if there is one. Breadth-first, so each job is
/// visited once.
fn cycle_through(start: &str, follows: &BTreeMap<&str, &[String]>) -> Option<Vec<String>> {
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(name) = queue.pop_front() {
        for next in follows.get(name).copied().unwrap_or_default() {
            let next = next.as_str();
            if next == start {
                let mut path = vec![start.to_owned()];
                let mut at = name;
                while at != start {
                    path.push(at.to_owned());
                    at = came_from.get(at).copied().unwrap_or(start);
                }
                path.push(start.to_owned());
                // Collected backwards from the end of the cycle: reverse to read it in `after` order.
                path.reverse();
                return Some(path);
            }
            if follows.contains_key(next) && !came_from.contains_key(next) {
                came_from.insert(next, name);
                queue.push_back(next);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str, extra: &str) -> String {
        format!(
            "name = \"{name}\"\ndataset = \"gongan.population\"\nstandard = \"gongan.population\"\n{extra}\n\
             [dataset_info]\nsharing = \"conditional\"\nupdate_cycle = \"daily\"\n\
             [source]\nlocation = \"exports/{name}.csv\"\n"
        )
    }

    fn set(files: &[(&str, String)]) -> JobSet {
        JobSet::check(files.iter().map(|(file, text)| (PathBuf::from(file), Job::from_str(text, Path::new(".")))))
    }

    fn problems_of<'a>(set: &'a JobSet, file: &str) -> &'a [String] {
        set.broken.iter().find(|(p, _)| p == Path::new(file)).map(|(_, p)| p.as_slice()).unwrap_or_default()
    }

    #[test]
    fn a_job_checks_its_own_scheduling_keys_and_reports_all_at_once() {
        let text = job("a", "missed = \"sometimes\"\nafter = [\"a\", \"b\", \"b\", \"\"]");
        let Err(JobError::Invalid { problems, .. }) = Job::from_str(&text, Path::new(".")) else { panic!("accepted") };
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        let all = text.join("\n");
        assert!(all.contains("unknown missed-run policy \"sometimes\""), "{all}");
        assert!(all.contains("applies to a schedule"), "{all}");
        assert!(all.contains("cannot follow itself"), "{all}");
        assert!(all.contains("\"b\" is named twice"), "{all}");
        assert!(all.contains("must not be empty"), "{all}");
        let good = Job::from_str(
            &job("a", "schedule = \"0 0 2 * * *\"\nmissed = \"run_once\"\nafter = [\"b\"]"),
            Path::new("."),
        )
        .unwrap();
        assert_eq!(good.spec.missed, MissedRuns::RunOnce);
        assert_eq!(good.spec.after, vec!["b".to_owned()]);
        assert_eq!(Job::from_str(&job("a", ""), Path::new(".")).unwrap().spec.missed, MissedRuns::Skip);
    }

    #[test]
    fn unknown_dependencies_duplicate_names_and_cycles_break_the_files_concerned() {
        let set = set(&[
            ("a.toml", job("a", "after = [\"c\"]")),
            ("b.toml", job("b", "after = [\"a\"]")),
            ("c.toml", job("c", "after = [\"b\"]")),
            ("d.toml", job("d", "after = [\"nowhere\"]")),
            ("e.toml", job("e", "")),
            ("e2.toml", job("e", "")),
            ("f.toml", job("f", "after = [\"a\"]")),
            ("g.toml", job("g", "schedule = \"not cron\"")),
        ]);
        assert_eq!(set.names(), vec!["f"], "only f is sound: {:?}", set.broken);
        assert_eq!(problems_of(&set, "a.toml"), ["after: a cycle of dependencies, a → c → b → a"]);
        assert_eq!(problems_of(&set, "b.toml"), ["after: a cycle of dependencies, b → a → c → b"]);
        assert!(problems_of(&set, "d.toml")[0].starts_with("after: no job named \"nowhere\""));
        assert!(problems_of(&set, "e.toml")[0].contains("also used by e2.toml"));
        assert!(problems_of(&set, "e2.toml")[0].contains("also used by e.toml"));
        assert!(problems_of(&set, "g.toml")[0].contains("invalid cron expression"));
        // f follows a, which is broken: f itself is sound, and waits for a forever.
        assert_eq!(set.get("f").unwrap().spec.after, ["a"]);
    }

    #[test]
    fn followers_are_the_jobs_naming_a_job_in_after() {
        let set = set(&[
            ("a.toml", job("a", "")),
            ("b.toml", job("b", "after = [\"a\"]")),
            ("c.toml", job("c", "after = [\"a\", \"b\"]")),
        ]);
        assert!(set.broken.is_empty(), "{:?}", set.broken);
        let names = |of: &str| set.followers(of).map(|j| j.spec.name.clone()).collect::<Vec<_>>();
        assert_eq!(names("a"), ["b", "c"]);
        assert_eq!(names("b"), ["c"]);
        assert!(names("c").is_empty());
    }
}
