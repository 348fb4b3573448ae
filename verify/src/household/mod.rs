//! Household economic-status checks (核对): before aid is approved, an
//! officer with the check duty asks what every department holds about the
//! members of an applicant household, under the applicant's signed consent.
//!
//! | module | what lives there |
//! |---|---|
//! | [`sources`] | [`CheckSources`]: which datasets a check consults (`checks/household.toml`), checked at load |
//! | [`request`] | [`CheckRequest`]: members, consent reference, purpose, division; validated at once |
//! | [`run`] | [`run_check`]: one governed query per source, the audit entry |
//! | [`report`] | [`CheckReport`]: JSON, and the printable Chinese page |
//! | [`error`] | [`Error`]: one variant per cause |
//!
//! A check is a read through the governed query layer like any other: the
//! principal sees only the rows and columns its policy gives it, masked as
//! the policy says. What makes it a check is the duty (`civlink token create
//! --checks`, the catalog's `check_officers`), the consent it must carry,
//! and its audit entry.

pub mod error;
pub mod report;
pub mod request;
pub mod run;
pub mod sources;

pub use error::Error;
pub use report::CheckReport;
pub use request::CheckRequest;
pub use run::run_check;
pub use sources::CheckSources;
