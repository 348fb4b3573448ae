//! A household check's request, and its validation: every problem at once,
//! except a missing consent, which refuses the request outright.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use civlink_standards::division::{DivisionCode, DivisionTable, Level};
use civlink_standards::idcard::CitizenId;
use serde::{Deserialize, Serialize};

use super::error::Error;

/// The most members a household may have (the 低保 standard's household_size).
pub const MAX_MEMBERS: usize = 20;
/// The longest consent reference or purpose accepted, in characters.
const MAX_TEXT: usize = 200;

/// What an officer asks for (`POST /api/v1/checks`, `civlink check household`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// The members' ID numbers (GB 11643), the applicant first.
    pub members: Vec<String>,
    /// The applicant's signed-consent reference (授权书编号); required.
    #[serde(default)]
    pub consent_reference: Option<String>,
    /// Why the check is made (e.g. 低保申请审核); required.
    #[serde(default)]
    pub purpose: Option<String>,
    /// The division the household applies in: a county, township or village
    /// code (12 digits, or a 6-digit county code).
    pub household_division: String,
    /// The date windows count back from; default: today.
    #[serde(default)]
    pub as_of: Option<NaiveDate>,
}

/// A request that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidRequest {
    /// The members' ID numbers, upper-cased, in order.
    pub members: Vec<String>,
    /// The consent reference, trimmed.
    pub consent_reference: String,
    /// The purpose, trimmed.
    pub purpose: String,
    /// The household's division.
    pub household_division: DivisionCode,
    /// The date windows count back from.
    pub as_of: NaiveDate,
}

fn text_problem(field: &str, value: &str) -> Option<String> {
    if value.chars().count() > MAX_TEXT {
        Some(format!("{field} is longer than {MAX_TEXT} characters"))
    } else if value.chars().any(char::is_control) {
        Some(format!("{field} holds control characters"))
    } else {
        None
    }
}

/// What is wrong with an ID number, without its digits.
fn id_problem(error: &civlink_standards::idcard::Error) -> &'static str {
    use civlink_standards::idcard::Error as E;
    match error {
        E::UnknownProvince { .. } => "its first two digits are no province",
        E::InvalidBirthDate { .. } => "its birth date is no calendar date",
        E::FutureBirthDate { .. } => "its birth date is in the future",
        E::CheckCharacter { .. } => "its check character does not match",
        _ => "it is not 17 digits and a check character",
    }
}

impl CheckRequest {
    /// Validate against `today` (the default `as_of`, and the latest birth date).
    pub fn validate(&self, today: NaiveDate) -> Result<ValidRequest, Error> {
        let consent = self.consent_reference.as_deref().map(str::trim).unwrap_or_default();
        if consent.is_empty() {
            return Err(Error::NoConsent);
        }
        let mut problems = Vec::new();
        problems.extend(text_problem("consent_reference", consent));
        let purpose = self.purpose.as_deref().map(str::trim).unwrap_or_default();
        if purpose.is_empty() {
            problems.push("purpose is required (why the check is made, e.g. 低保申请审核)".to_owned());
        }
        problems.extend(text_problem("purpose", purpose));
        if self.members.is_empty() {
            problems.push("members is empty: give each member's ID number".to_owned());
        }
        if self.members.len() > MAX_MEMBERS {
            problems.push(format!("{} members: a household has at most {MAX_MEMBERS}", self.members.len()));
        }
        let as_of = self.as_of.unwrap_or(today);
        let mut members = Vec::with_capacity(self.members.len());
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for (i, member) in self.members.iter().enumerate() {
            let n = i + 1;
            let normalized = member.trim().to_uppercase();
            match CitizenId::parse_on(&normalized, today) {
                // The message names what is wrong, never any of the number's digits.
                Err(e) => problems.push(format!("member {n}: not a valid ID number ({})", id_problem(&e))),
                Ok(_) => {
                    if let Some(first) = seen.get(&normalized) {
                        problems.push(format!("member {n}: the same ID number as member {first}"));
                    } else {
                        seen.insert(normalized.clone(), n);
                    }
                }
            }
            members.push(normalized);
        }
        let code = self.household_division.trim();
        let division = if code.len() == 6 { DivisionCode::from_county_code(code) } else { DivisionCode::parse(code) };
        let household_division = match division {
            Err(e) => {
                problems.push(format!("household_division {code:?}: {e}"));
                None
            }
            Ok(d) if matches!(d.level(), Level::Province | Level::City) => {
                problems.push(format!(
                    "household_division {code}: give the county, township or village the household applies in"
                ));
                None
            }
            Ok(d) if DivisionTable::builtin().get(&d).is_none() => {
                problems.push(format!("household_division {code}: not in the division table"));
                None
            }
            Ok(d) => Some(d),
        };
        match (problems.is_empty(), household_division) {
            (true, Some(household_division)) => Ok(ValidRequest {
                members,
                consent_reference: consent.to_owned(),
                purpose: purpose.to_owned(),
                household_division,
                as_of,
            }),
            _ => Err(Error::BadRequest { problems }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 3).unwrap()
    }

    fn request(members: &[&str]) -> CheckRequest {
        CheckRequest {
            members: members.iter().map(|m| (*m).to_owned()).collect(),
            consent_reference: Some("SQ-2026-0001".into()),
            purpose: Some("低保申请审核".into()),
            household_division: "630102001001".into(),
            as_of: None,
        }
    }

    #[test]
    fn a_valid_request_is_normalized() {
        let valid = request(&[" 11010519491231002x "]).validate(today()).unwrap();
        assert_eq!(valid.members, ["11010519491231002X"]);
        assert_eq!(valid.as_of, today());
    }

    #[test]
    fn no_consent_is_refused_before_anything_else() {
        let mut r = request(&["bad"]);
        r.consent_reference = Some("  ".into());
        assert!(matches!(r.validate(today()), Err(Error::NoConsent)));
        r.consent_reference = None;
        assert!(matches!(r.validate(today()), Err(Error::NoConsent)));
    }

    #[test]
    fn every_problem_is_reported_without_echoing_numbers() {
        let mut r = request(&["110105194912310021", "11010519491231002X", "11010519491231002X", "12345"]);
        r.purpose = None;
        r.household_division = "630000000000".into();
        let Err(Error::BadRequest { problems }) = r.validate(today()) else { panic!() };
        let all = problems.join("\n");
        assert!(all.contains("member 1: not a valid ID number"), "{all}");
        assert!(all.contains("member 3: the same ID number as member 2"), "{all}");
        assert!(all.contains("member 4"), "{all}");
        assert!(all.contains("purpose is required"), "{all}");
        assert!(all.contains("county, township or village"), "{all}");
        assert!(!all.contains("11010519491231002"), "{all}");
        let many: Vec<&str> = vec!["11010519491231002X"; MAX_MEMBERS + 1];
        let Err(Error::BadRequest { problems }) = request(&many).validate(today()) else { panic!() };
        assert!(problems.iter().any(|p| p.contains("at most 20")), "{problems:?}");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let text = r#"{"members":[],"household_division":"630102","consent":"x"}"#;
        assert!(serde_json::from_str::<CheckRequest>(text).is_err());
    }
}
