//! Grants and the access decision: what one principal may read of one
//! dataset ([`decide`]; the rules are in the [parent module's docs](super)).

use std::collections::{BTreeSet, HashSet};
use std::fmt;

use chrono::{DateTime, Utc};
use civlink_standards::division::Level;
use civlink_standards::mask::MaskStrategy;
use civlink_standards::standard::Standard;
use serde::{Deserialize, Serialize};

use super::principal::{Error, Principal, Result, Role};
use crate::findings::Finding;
use crate::model::{DatasetId, DatasetRecord, Department, SharingType};

/// To whom a grant is made.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "subject", rename_all = "snake_case")]
pub enum GrantSubject {
    /// One principal, by name.
    Principal(String),
    /// Every principal of a department.
    Department(Department),
}

impl GrantSubject {
    /// `principal` or `department`, as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            GrantSubject::Principal(_) => "principal",
            GrantSubject::Department(_) => "department",
        }
    }

    /// The principal's name or the department's code, as stored.
    pub fn subject(&self) -> &str {
        match self {
            GrantSubject::Principal(name) => name,
            GrantSubject::Department(department) => department.code(),
        }
    }

    /// Whether the grant is made to this principal.
    pub fn includes(&self, principal: &Principal) -> bool {
        match self {
            GrantSubject::Principal(name) => *name == principal.name,
            GrantSubject::Department(department) => principal.department == Some(*department),
        }
    }
}

impl fmt::Display for GrantSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind(), self.subject())
    }
}

/// Permission for a subject to read (some columns of) a dataset, and
/// optionally to see them unmasked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Unique id.
    pub id: String,
    /// To whom.
    pub subject: GrantSubject,
    /// Which dataset.
    pub dataset: DatasetId,
    /// Which columns; `None` = every column.
    pub columns: Option<Vec<String>>,
    /// Whether the covered columns are shown in clear.
    pub unmasked: bool,
    /// The stated purpose (legal basis), recorded and audited.
    pub purpose: Option<String>,
    /// Whether its grantees must state a purpose (`x-civlink-purpose`) on
    /// every request that reads the dataset ([`purpose_required`]).
    #[serde(default)]
    pub purpose_required: bool,
    /// When it lapses; `None` = never.
    pub expires_at: Option<DateTime<Utc>>,
}

impl Grant {
    /// Whether the grant is in force at `now` (a grant expiring exactly at
    /// `now` is not).
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|expires| expires > now)
    }

    /// Whether the grant covers `column`.
    pub fn covers(&self, column: &str) -> bool {
        self.columns.as_ref().is_none_or(|columns| columns.iter().any(|c| c == column))
    }
}

/// One readable column and how it is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnAccess {
    /// Column name.
    pub name: String,
    /// The mask applied to its values; [`MaskStrategy::None`] = in clear.
    pub mask: MaskStrategy,
}

/// What one principal may read of one dataset: the single source of truth
/// used by Flight SQL and REST.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    /// The dataset.
    pub dataset: DatasetId,
    /// The column holding each row's division code, when the dataset has one.
    pub division_column: Option<String>,
    /// Rows whose division code starts with this prefix; `None` = every row
    /// (only for the Admin role). Applied on `division_column`; when the
    /// dataset has none, [`decide`] has already established that the
    /// principal (province level) may read all its rows.
    pub row_prefix: Option<String>,
    /// Readable columns in standard order, with masks.
    pub columns: Vec<ColumnAccess>,
}

impl Access {
    /// The readable column named `name`.
    pub fn column(&self, name: &str) -> Option<&ColumnAccess> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The row filter to apply: rows whose `column` value starts with
    /// `prefix`. `None` = no filter (Admin, or an unscoped dataset read at
    /// province level).
    pub fn row_filter(&self) -> Option<(&str, &str)> {
        Some((self.division_column.as_deref()?, self.row_prefix.as_deref()?))
    }

    /// Whether a row with this division code (the division column's value)
    /// may be read. A row without one (`None`) is readable only without a
    /// row filter: it cannot be placed inside anyone's division.
    pub fn admits_division(&self, code: Option<&str>) -> bool {
        match self.row_filter() {
            None => true,
            Some((_, prefix)) => code.is_some_and(|c| c.starts_with(prefix)),
        }
    }
}

/// Decide what `principal` may read of `dataset` (whose bound standard is
/// `standard`), given the grants on it, at `now`. `None` = nothing.
///
/// Pure: no I/O, no clock. The rules are in the [module docs](self). Grants
/// for other datasets or other subjects in `grants` are ignored.
pub fn decide(
    principal: &Principal,
    dataset: &DatasetRecord,
    standard: &Standard,
    grants: &[Grant],
    now: DateTime<Utc>,
) -> Option<Access> {
    let spec = &dataset.spec;
    if standard.id != spec.standard_id || standard.version != spec.standard_version {
        // Not the standard the dataset is bound to: its columns and masks cannot be trusted.
        return None;
    }
    let admin = principal.role == Role::Admin;
    let owner = principal.department == Some(spec.id.department);
    let live: Vec<&Grant> =
        grants.iter().filter(|g| g.dataset == spec.id && g.is_live(now) && g.subject.includes(principal)).collect();

    // Which columns, before masking: `None` = all of them.
    let granted: Option<HashSet<&str>> = if admin || owner {
        None
    } else {
        match spec.sharing {
            SharingType::Unconditional => None,
            SharingType::Conditional => {
                if live.is_empty() {
                    return None;
                }
                if live.iter().any(|g| g.columns.is_none()) {
                    None
                } else {
                    Some(live.iter().flat_map(|g| g.columns.iter().flatten().map(String::as_str)).collect())
                }
            }
            SharingType::NotShared => return None,
        }
    };

    let division_column = spec.division_column.clone().or_else(|| standard.division_column.clone());
    let row_prefix = if admin {
        None
    } else {
        if division_column.is_none() && principal.level() != Level::Province {
            return None;
        }
        Some(principal.division.scope_prefix().to_owned())
    };

    let columns: Vec<ColumnAccess> = standard
        .properties
        .iter()
        .filter(|p| granted.as_ref().is_none_or(|set| set.contains(p.name.as_str())))
        .map(|p| {
            let unmasked = live.iter().any(|g| g.unmasked && g.covers(&p.name));
            ColumnAccess { name: p.name.clone(), mask: if unmasked { MaskStrategy::None } else { p.effective_mask() } }
        })
        .collect();
    if columns.is_empty() {
        return None;
    }
    Some(Access { dataset: spec.id.clone(), division_column, row_prefix, columns })
}
/// Check a grant's columns against its dataset's standard: a list names at
/// least one column, each a property of the standard, each once.
pub(crate) fn check_grant_columns(grant: &Grant, standard: &Standard) -> Result<()> {
    let Some(columns) = &grant.columns else {
        return Ok(());
    };
    if columns.is_empty() {
        return Err(Error::Invalid {
            what: "grant",
            message: "an empty column list grants nothing; omit it to grant every column".into(),
        });
    }
    let mut seen = BTreeSet::new();
    for column in columns {
        if standard.property(column).is_none() {
            return Err(Error::Invalid {
                what: "grant",
                message: format!(
                    "{} has no column \"{}\" (standard {} {})",
                    grant.dataset,
                    column.escape_debug(),
                    standard.id,
                    standard.version
                ),
            });
        }
        if !seen.insert(column) {
            return Err(Error::Invalid { what: "grant", message: format!("column {column} is listed twice") });
        }
    }
    Ok(())
}

/// Whether `principal` may record an outcome on `finding`: it must work for
/// the responsible office's department (an admin may for any), and the
/// finding's division must lie in its own (which the store checks too).
pub fn may_decide(principal: &Principal, finding: &Finding) -> bool {
    let office = principal.role == Role::Admin || principal.department == Some(finding.department);
    office && principal.division.contains(&finding.division)
}

/// Why a request that stated no purpose may not read a dataset: a live grant
/// to the principal on it requires one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurposeRequired {
    /// The dataset.
    pub dataset: DatasetId,
    /// The grant that requires a purpose.
    pub grant: String,
}

impl fmt::Display for PurposeRequired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "reading {} requires a stated purpose under grant {}: send the x-civlink-purpose header",
            self.dataset, self.grant
        )
    }
}

/// The refusal of a request that stated no purpose (`purpose` is `None`) and
/// reads `dataset`, when a live grant to `principal` on it requires one
/// ([`Grant::purpose_required`]); `None` = no refusal.
///
/// A purpose-requiring grant makes the dataset, for its grantees, readable
/// only with a stated purpose: whatever else they may read of it, a read
/// without one is refused, not answered with less. Pure, like [`decide`],
/// which it complements: both transports ask it before running a query.
pub fn purpose_required(
    principal: &Principal,
    dataset: &DatasetId,
    grants: &[Grant],
    purpose: Option<&str>,
    now: DateTime<Utc>,
) -> Option<PurposeRequired> {
    if purpose.is_some_and(|p| !p.trim().is_empty()) {
        return None;
    }
    grants
        .iter()
        .find(|g| g.purpose_required && g.dataset == *dataset && g.is_live(now) && g.subject.includes(principal))
        .map(|g| PurposeRequired { dataset: dataset.clone(), grant: g.id.clone() })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use civlink_standards::division::DivisionCode;

    use super::*;

    #[test]
    fn only_the_responsible_office_decides() {
        use crate::findings::{FindingStatus, Severity, SubjectKind};
        use std::collections::BTreeMap;
        let finding = Finding {
            finding_id: "f_1".into(),
            rule_id: "r".into(),
            rule_version: 1,
            subject_kind: SubjectKind::Person,
            subject: "ps_a".into(),
            department: Department::Minzheng,
            division: DivisionCode::parse("630102001001").unwrap(),
            severity: Severity::High,
            status: FindingStatus::Open,
            outcome: None,
            explanation: String::new(),
            evidence: BTreeMap::new(),
            rests_on: Vec::new(),
            dataset_versions: BTreeMap::new(),
            first_seen: chrono::Utc::now(),
            last_seen: chrono::Utc::now(),
        };
        let who = |department, role, division: &str| Principal {
            name: "p".into(),
            department,
            role,
            division: DivisionCode::parse(division).unwrap(),
        };
        assert!(may_decide(&who(Some(Department::Minzheng), Role::Analyst, "630102000000"), &finding));
        assert!(!may_decide(&who(Some(Department::Gongan), Role::Analyst, "630102000000"), &finding));
        assert!(!may_decide(&who(None, Role::Analyst, "630102000000"), &finding));
        assert!(may_decide(&who(None, Role::Admin, "630000000000"), &finding));
        assert!(!may_decide(&who(Some(Department::Minzheng), Role::Analyst, "630105000000"), &finding));
    }

    use crate::model::{DatasetSpec, UpdateCycle};
    use chrono::TimeZone;
    use civlink_standards::standard::Sensitivity;

    const STANDARD: &str = r#"{
      "$schema": "https://json-schema.org/draft/2020-12/schema",
      "x-civlink-id": "gongan.population",
      "x-civlink-version": "1.0.0",
      "x-civlink-division-column": "division_code",
      "title": "人口",
      "type": "object",
      "required": ["id_number"],
      "properties": {
        "division_code": {"type": "string", "title": "区划代码", "format": "division-code"},
        "name": {"type": "string", "title": "姓名", "x-civlink-sensitivity": "sensitive",
                 "x-civlink-mask": {"strategy": "name"}},
        "id_number": {"type": "string", "title": "公民身份号码", "format": "gb11643",
                      "x-civlink-sensitivity": "sensitive",
                      "x-civlink-mask": {"strategy": "keep_ends", "first": 6, "last": 4}},
        "amount": {"type": "number", "title": "金额"}
      }
    }"#;

    /// The same columns without a division column anywhere.
    const UNSCOPED_STANDARD: &str = r#"{
      "$schema": "https://json-schema.org/draft/2020-12/schema",
      "x-civlink-id": "gongan.population",
      "x-civlink-version": "1.0.0",
      "title": "人口",
      "type": "object",
      "properties": {
        "name": {"type": "string", "title": "姓名", "x-civlink-sensitivity": "secret"},
        "amount": {"type": "number", "title": "金额"}
      }
    }"#;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap()
    }

    fn standard() -> Standard {
        Standard::from_json_str(STANDARD).unwrap()
    }

    fn dataset_id() -> DatasetId {
        "gongan.population".parse().unwrap()
    }

    fn dataset(sharing: SharingType, division_column: Option<&str>) -> DatasetRecord {
        DatasetRecord {
            spec: DatasetSpec {
                id: dataset_id(),
                title: "人口".into(),
                owner: "户籍处".into(),
                description: String::new(),
                standard_id: "gongan.population".into(),
                standard_version: "1.0.0".into(),
                classification: Sensitivity::Sensitive,
                sharing,
                update_cycle: UpdateCycle::Daily,
                division_column: division_column.map(Into::into),
                primary_key: vec!["id_number".into()],
            },
            table_uri: "file:///t".into(),
            quarantine_uri: "file:///q".into(),
            current_version: Some(1),
            quarantine_version: Some(1),
            created_at: now(),
            updated_at: None,
        }
    }

    fn principal(name: &str, department: Option<Department>, role: Role, division: &str) -> Principal {
        Principal { name: name.into(), department, role, division: DivisionCode::parse(division).unwrap() }
    }

    /// A: a county analyst of another department; O: a city analyst of the
    /// owning department; S: a province service account of another department;
    /// T: a township standards admin of no department; M: an admin.
    fn principals() -> Vec<(&'static str, Principal)> {
        vec![
            ("A", principal("a", Some(Department::Minzheng), Role::Analyst, "630102000000")),
            ("O", principal("o", Some(Department::Gongan), Role::Analyst, "630100000000")),
            ("S", principal("s", Some(Department::Renshe), Role::DepartmentService, "630000000000")),
            ("T", principal("t", None, Role::StandardsAdmin, "630102001000")),
            ("M", principal("m", None, Role::Admin, "630105000000")),
        ]
    }

    fn grant(subject: GrantSubject, columns: Option<&[&str]>, unmasked: bool, expires: Option<i64>) -> Grant {
        Grant {
            id: "g".into(),
            subject,
            dataset: dataset_id(),
            columns: columns.map(|c| c.iter().map(|s| (*s).to_owned()).collect()),
            unmasked,
            purpose: Some("低保资格核查".into()),
            purpose_required: false,
            expires_at: expires.map(|hours| now() + chrono::Duration::hours(hours)),
        }
    }

    /// The grant cases: none; P a live, masked grant of three columns to the
    /// principal; D a live, masked grant of every column to its department;
    /// X an expired unmasked grant to the principal; U a live unmasked grant
    /// of every column to the principal.
    fn grants_for(case: &str, p: &Principal) -> Vec<Grant> {
        let me = GrantSubject::Principal(p.name.clone());
        match case {
            "-" => vec![],
            "P" => vec![grant(me, Some(&["division_code", "name", "amount"]), false, Some(24))],
            // A principal without a department gets a grant for another department: it must not apply.
            "D" => {
                vec![grant(GrantSubject::Department(p.department.unwrap_or(Department::Weijian)), None, false, None)]
            }
            "X" => vec![grant(me, None, true, Some(-1))],
            "U" => vec![grant(me, None, true, None)],
            other => panic!("unknown case {other}"),
        }
    }

    /// Columns as `name` (clear) or `name~` (masked), space separated in the
    /// standard's property order; `-` = no access.
    /// The readable columns (`~` = masked), sorted by name so the tables below
    /// read the same whatever the standard's order; the order itself is checked
    /// by `columns_follow_the_standard_order`.
    fn render(access: &Option<Access>) -> String {
        match access {
            None => "-".into(),
            Some(a) => {
                let mut names: Vec<String> = a
                    .columns
                    .iter()
                    .map(|c| if c.mask.is_none() { c.name.clone() } else { format!("{}~", c.name) })
                    .collect();
                names.sort();
                names.join(" ")
            }
        }
    }

    #[test]
    fn columns_follow_the_standard_order() {
        let standard = standard();
        let admin = principals().into_iter().find(|(k, _)| *k == "M").unwrap().1;
        let access =
            decide(&admin, &dataset(SharingType::Unconditional, Some("division_code")), &standard, &[], now()).unwrap();
        let order: Vec<&str> = access.columns.iter().map(|c| c.name.as_str()).collect();
        let document: Vec<&str> = standard.properties.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(order, document);
    }

    const MASKED: &str = "amount division_code id_number~ name~";
    const CLEAR: &str = "amount division_code id_number name";
    const P_COLS: &str = "amount division_code name~";

    #[test]
    fn decide_exhaustive_table() {
        use SharingType::*;
        // (sharing, principal, grant case, expected columns)
        #[rustfmt::skip]
        let table: &[(SharingType, &str, &str, &str)] = &[
            (Unconditional, "A", "-", MASKED), (Unconditional, "A", "P", MASKED), (Unconditional, "A", "D", MASKED),
            (Unconditional, "A", "X", MASKED), (Unconditional, "A", "U", CLEAR),
            (Unconditional, "O", "-", MASKED), (Unconditional, "O", "P", MASKED), (Unconditional, "O", "D", MASKED),
            (Unconditional, "O", "X", MASKED), (Unconditional, "O", "U", CLEAR),
            (Unconditional, "S", "-", MASKED), (Unconditional, "S", "P", MASKED), (Unconditional, "S", "D", MASKED),
            (Unconditional, "S", "X", MASKED), (Unconditional, "S", "U", CLEAR),
            (Unconditional, "T", "-", MASKED), (Unconditional, "T", "P", MASKED), (Unconditional, "T", "D", MASKED),
            (Unconditional, "T", "X", MASKED), (Unconditional, "T", "U", CLEAR),
            (Unconditional, "M", "-", MASKED), (Unconditional, "M", "P", MASKED), (Unconditional, "M", "D", MASKED),
            (Unconditional, "M", "X", MASKED), (Unconditional, "M", "U", CLEAR),

            (Conditional, "A", "-", "-"), (Conditional, "A", "P", P_COLS), (Conditional, "A", "D", MASKED),
            (Conditional, "A", "X", "-"), (Conditional, "A", "U", CLEAR),
            (Conditional, "O", "-", MASKED), (Conditional, "O", "P", MASKED), (Conditional, "O", "D", MASKED),
            (Conditional, "O", "X", MASKED), (Conditional, "O", "U", CLEAR),
            (Conditional, "S", "-", "-"), (Conditional, "S", "P", P_COLS), (Conditional, "S", "D", MASKED),
            (Conditional, "S", "X", "-"), (Conditional, "S", "U", CLEAR),
            (Conditional, "T", "-", "-"), (Conditional, "T", "P", P_COLS), (Conditional, "T", "D", "-"),
            (Conditional, "T", "X", "-"), (Conditional, "T", "U", CLEAR),
            (Conditional, "M", "-", MASKED), (Conditional, "M", "P", MASKED), (Conditional, "M", "D", MASKED),
            (Conditional, "M", "X", MASKED), (Conditional, "M", "U", CLEAR),

            (NotShared, "A", "-", "-"), (NotShared, "A", "P", "-"), (NotShared, "A", "D", "-"),
            (NotShared, "A", "X", "-"), (NotShared, "A", "U", "-"),
            (NotShared, "O", "-", MASKED), (NotShared, "O", "P", MASKED), (NotShared, "O", "D", MASKED),
            (NotShared, "O", "X", MASKED), (NotShared, "O", "U", CLEAR),
            (NotShared, "S", "-", "-"), (NotShared, "S", "P", "-"), (NotShared, "S", "D", "-"),
            (NotShared, "S", "X", "-"), (NotShared, "S", "U", "-"),
            (NotShared, "T", "-", "-"), (NotShared, "T", "P", "-"), (NotShared, "T", "D", "-"),
            (NotShared, "T", "X", "-"), (NotShared, "T", "U", "-"),
            (NotShared, "M", "-", MASKED), (NotShared, "M", "P", MASKED), (NotShared, "M", "D", MASKED),
            (NotShared, "M", "X", MASKED), (NotShared, "M", "U", CLEAR),
        ];
        assert_eq!(table.len(), 3 * 5 * 5);
        let standard = standard();
        let prefixes: HashMap<&str, Option<&str>> =
            [("A", Some("630102")), ("O", Some("6301")), ("S", Some("63")), ("T", Some("630102001")), ("M", None)]
                .into();
        let mut failures = Vec::new();
        for (sharing, who, case, expected) in table {
            let p = &principals().into_iter().find(|(k, _)| k == who).unwrap().1;
            let access = decide(p, &dataset(*sharing, Some("division_code")), &standard, &grants_for(case, p), now());
            let got = render(&access);
            if got != *expected {
                failures.push(format!("{sharing:?} {who} {case}: expected {expected}, got {got}"));
            }
            if let Some(a) = &access {
                assert_eq!(a.row_prefix.as_deref(), prefixes[who], "{sharing:?} {who} {case}");
                assert_eq!(a.division_column.as_deref(), Some("division_code"));
                assert_eq!(a.dataset, dataset_id());
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn masks_come_from_the_standard() {
        let p = &principals()[0].1;
        let access =
            decide(p, &dataset(SharingType::Unconditional, Some("division_code")), &standard(), &[], now()).unwrap();
        assert_eq!(access.column("name").unwrap().mask, MaskStrategy::Name);
        assert_eq!(access.column("id_number").unwrap().mask, MaskStrategy::KeepEnds { first: 6, last: 4 });
        assert_eq!(access.column("amount").unwrap().mask, MaskStrategy::None);
        // A secret column without an explicit mask is fully starred.
        let unscoped = Standard::from_json_str(UNSCOPED_STANDARD).unwrap();
        let province = &principals()[2].1;
        let access = decide(province, &dataset(SharingType::Unconditional, None), &unscoped, &[], now()).unwrap();
        assert_eq!(access.column("name").unwrap().mask, MaskStrategy::Full);
    }

    #[test]
    fn unmasking_is_per_covered_column_and_grants_combine() {
        let p = &principals()[0].1;
        let me = || GrantSubject::Principal(p.name.clone());
        let ds = dataset(SharingType::Conditional, Some("division_code"));
        // Read three columns, see one of them in clear.
        let grants = [
            grant(me(), Some(&["division_code", "name", "id_number"]), false, None),
            grant(me(), Some(&["name"]), true, None),
        ];
        assert_eq!(render(&decide(p, &ds, &standard(), &grants, now())), "division_code id_number~ name");
        // An unmasked grant on an unconditional dataset unmasks only its columns.
        let ds = dataset(SharingType::Unconditional, Some("division_code"));
        let grants = [grant(me(), Some(&["id_number"]), true, None)];
        assert_eq!(render(&decide(p, &ds, &standard(), &grants, now())), "amount division_code id_number name~");
    }

    #[test]
    fn grants_for_others_or_other_datasets_or_expiring_now_do_not_apply() {
        let p = &principals()[0].1;
        let ds = dataset(SharingType::Conditional, Some("division_code"));
        let mut other_dataset = grant(GrantSubject::Principal(p.name.clone()), None, true, None);
        other_dataset.dataset = "gongan.households".parse().unwrap();
        let other_principal = grant(GrantSubject::Principal("b".into()), None, true, None);
        let other_department = grant(GrantSubject::Department(Department::Weijian), None, true, None);
        let mut expiring_now = grant(GrantSubject::Principal(p.name.clone()), None, true, None);
        expiring_now.expires_at = Some(now());
        for g in [other_dataset, other_principal, other_department, expiring_now] {
            assert_eq!(decide(p, &ds, &standard(), std::slice::from_ref(&g), now()), None, "{g:?}");
        }
        // One nanosecond before its expiry, it applies.
        let mut live = grant(GrantSubject::Principal(p.name.clone()), None, false, None);
        live.expires_at = Some(now() + chrono::Duration::nanoseconds(1));
        assert!(decide(p, &ds, &standard(), &[live], now()).is_some());
    }

    #[test]
    fn a_grant_naming_no_readable_column_grants_nothing() {
        let p = &principals()[0].1;
        let ds = dataset(SharingType::Conditional, Some("division_code"));
        let g = grant(GrantSubject::Principal(p.name.clone()), Some(&["no_such_column"]), false, None);
        assert_eq!(decide(p, &ds, &standard(), &[g], now()), None);
    }

    #[test]
    fn unscoped_datasets_are_for_province_level_and_admin_only() {
        let unscoped = Standard::from_json_str(UNSCOPED_STANDARD).unwrap();
        let ds = dataset(SharingType::Unconditional, None);
        for (who, p) in principals() {
            let access = decide(&p, &ds, &unscoped, &[], now());
            match who {
                "S" => {
                    assert_eq!(render(&access), "amount name~");
                    let a = access.unwrap();
                    assert_eq!((a.division_column.as_deref(), a.row_prefix.as_deref()), (None, Some("63")));
                    assert_eq!(a.row_filter(), None);
                }
                "M" => assert_eq!(access.unwrap().row_prefix, None),
                _ => assert_eq!(access, None, "{who}: {:?}", p.level()),
            }
        }
    }

    #[test]
    fn the_division_column_falls_back_to_the_standards() {
        let p = &principals()[0].1;
        let access = decide(p, &dataset(SharingType::Unconditional, None), &standard(), &[], now()).unwrap();
        assert_eq!(access.row_filter(), Some(("division_code", "630102")));
        assert!(access.admits_division(Some("630102001001")));
        assert!(!access.admits_division(Some("630103001001")));
        assert!(!access.admits_division(None));
    }

    #[test]
    fn a_standard_that_is_not_the_bound_one_fails_closed() {
        let p = &principals()[4].1;
        let mut ds = dataset(SharingType::Unconditional, Some("division_code"));
        ds.spec.standard_version = "2.0.0".into();
        assert_eq!(decide(p, &ds, &standard(), &[], now()), None);
    }

    #[test]
    fn admin_filters_nothing() {
        let m = &principals()[4].1;
        let a = decide(m, &dataset(SharingType::NotShared, Some("division_code")), &standard(), &[], now()).unwrap();
        assert_eq!(a.row_filter(), None);
        assert!(a.admits_division(None));
    }

    #[test]
    fn grant_subjects_serialise_with_their_kind() {
        let s = GrantSubject::Department(Department::Minzheng);
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"{"kind":"department","subject":"minzheng"}"#);
        assert_eq!(s.to_string(), "department minzheng");
        assert_eq!(GrantSubject::Principal("张三".into()).subject(), "张三");
    }

    #[test]
    fn grant_columns_are_checked_against_the_standard() {
        let s = standard();
        let g = |cols: Option<&[&str]>| grant(GrantSubject::Department(Department::Minzheng), cols, false, None);
        assert!(check_grant_columns(&g(None), &s).is_ok());
        assert!(check_grant_columns(&g(Some(&["name", "amount"])), &s).is_ok());
        for bad in [&[][..], &["nope"][..], &["name", "name"][..]] {
            assert!(matches!(check_grant_columns(&g(Some(bad)), &s), Err(Error::Invalid { .. })), "{bad:?}");
        }
    }

    #[test]
    fn principals_know_their_level() {
        let levels: Vec<Level> = principals().iter().map(|(_, p)| p.level()).collect();
        assert_eq!(levels, [Level::County, Level::City, Level::Province, Level::Township, Level::County]);
    }
    #[test]
    fn a_purpose_requiring_grant_refuses_requests_without_a_purpose() {
        let p = &principals()[0].1;
        let mut g = grant(GrantSubject::Principal(p.name.clone()), None, true, None);
        g.purpose_required = true;
        let refused = purpose_required(p, &dataset_id(), std::slice::from_ref(&g), None, now());
        assert_eq!(refused, Some(PurposeRequired { dataset: dataset_id(), grant: "g".into() }));
        assert!(refused.unwrap().to_string().contains("x-civlink-purpose"));
        assert!(purpose_required(p, &dataset_id(), std::slice::from_ref(&g), Some("  "), now()).is_some());
        assert_eq!(purpose_required(p, &dataset_id(), std::slice::from_ref(&g), Some("低保复核"), now()), None);
        // Not for others, not once expired, not when the grant does not require one.
        let other = &principals()[1].1;
        assert_eq!(purpose_required(other, &dataset_id(), std::slice::from_ref(&g), None, now()), None);
        let mut expired = g.clone();
        expired.expires_at = Some(now());
        assert_eq!(purpose_required(p, &dataset_id(), &[expired], None, now()), None);
        g.purpose_required = false;
        assert_eq!(purpose_required(p, &dataset_id(), &[g], None, now()), None);
    }
}
