//! Access policy: principals, API tokens, grants, the access decision, and
//! the tamper-evident audit log.
//!
//! [`decide`] is the single source of truth for what a principal may read of
//! a dataset; Flight SQL and REST both ask it (through
//! [`MetadataStore::access`](crate::store::MetadataStore::access)) and apply
//! the [`Access`] it returns: the readable columns with their masks, and the
//! division prefix rows must start with.
//!
//! # The rules
//!
//! **Who may read a dataset** follows its GB/T 21063 sharing type:
//!
//! | sharing | who reads | which columns |
//! |---|---|---|
//! | `unconditional` (无条件共享) | every authenticated principal | all |
//! | `conditional` (有条件共享) | principals with a live grant (to themselves or to their department) | the union of the live grants' columns (`None` = all) |
//! | `not_shared` (不予共享) | principals of the owning department | all |
//!
//! On top of the table:
//!
//! * **Admin** reads every dataset, every column and every row.
//! * **The owning department** (`dataset.spec.id.department`) reads all
//!   columns of its own datasets whatever their sharing type: it is the
//!   source of the data, so a grant to read its own conditional dataset
//!   would be a formality. (Rows are still scoped, see below.)
//! * **Grants never open a `not_shared` dataset** to anyone outside the
//!   owning department: 不予共享 means not shared. On such a dataset a grant
//!   can only unmask columns for the owner's principals.
//! * A grant is **live** while `expires_at` is `None` or later than `now`
//!   (a grant expiring exactly at `now` is expired). Its `purpose` is the
//!   recorded legal basis, shown and audited; it is not matched against
//!   anything here. A grant with `purpose_required` makes the dataset, for
//!   its grantees, readable only by requests that state a purpose
//!   (`x-civlink-purpose`): [`purpose_required`] is the refusal, asked by
//!   the query layer before any query runs (Flight SQL and REST alike).
//! * The roles other than Admin (`analyst`, `department_service`,
//!   `standards_admin`) read under the same rules: the role gates
//!   administrative operations (registering standards, issuing tokens),
//!   not data.
//!
//! **Masking**: every column whose property's
//! [`effective_mask`](civlink_standards::standard::Property::effective_mask)
//! is not `None` (sensitive and secret columns, and any column with an
//! explicit `x-civlink-mask`) is masked, unless a live grant that applies to
//! the principal, covers the column and has `unmasked = true`. This holds
//! for Admin and the owning department too: seeing personal information in
//! clear always takes an explicit, expiring, audited grant.
//!
//! **Row scope**: every principal except Admin is confined to the rows
//! whose division code starts with its division's
//! [`scope_prefix`](civlink_standards::division::DivisionCode::scope_prefix)
//! (a county analyst at `630102000000` sees rows `630102…`). A dataset
//! without a division column cannot be scoped, so it is readable only by
//! province-level principals (and Admin): a county analyst must not see
//! province-wide data it has no way to be confined in. Admin's `row_prefix`
//! is `None`.
//!
//! Anything inconsistent fails closed: a standard that is not the one the
//! dataset is bound to, or a grant whose columns name nothing readable,
//! yields no access.
//!
//! # Tokens
//!
//! A token is `clk_<id>_<secret>`: a 16-hex-digit id (what `token list` and
//! `token revoke` name) and 64 hex digits of secret. The store keeps only the
//! SHA-256 of the whole token, compares hashes in constant time, and never
//! writes the token anywhere; [`IssuedToken`]'s `Debug` hides it.
//!
//! # The audit log
//!
//! Every entry carries `hash = SHA-256(prev_hash ‖ canonical JSON of the
//! entry)`, the JSON including the entry's `seq` and `at`, and the first
//! entry chaining from [`GENESIS_HASH`]. Appends are serialised (one writer
//! at a time) so the chain never forks, and `seq` runs 1, 2, 3, … without
//! gaps. [`MetadataStore::verify_audit`](crate::store::MetadataStore::verify_audit)
//! recomputes the chain and names every edited, inserted, deleted or
//! reordered entry. What a hash chain without a secret key cannot show is a
//! truncated tail, or a rewrite of the chain from some entry onwards with
//! recomputed hashes: [`AuditReport::head`] is printed so that operators can
//! anchor the head outside the database and compare.

//!
//! # Layout
//!
//! | module | what lives there |
//! |---|---|
//! | [`principal`] | [`Error`], [`Role`], [`Principal`] |
//! | [`access`] | grants ([`Grant`], [`GrantSubject`]), [`Access`] and [`decide`], the purpose a grant may require ([`purpose_required`]) |
//! | [`token`] | API tokens: their shape, issuing, hashing ([`IssuedToken`], [`TokenInfo`]) |
//! | [`audit`] | the hash-chained audit log: [`AuditEntry`] with its [`AuditAction`] and [`AuditOutcome`], chain checking |

pub mod access;
pub mod audit;
pub mod principal;
pub mod token;

pub(crate) use access::check_grant_columns;
pub use access::{Access, ColumnAccess, Grant, GrantSubject, PurposeRequired, decide, may_decide, purpose_required};
pub use audit::*;
pub(crate) use principal::check_name;
pub use principal::{Error, Principal, Result, Role};
pub use token::{IssuedToken, TOKEN_PREFIX, TokenInfo};
pub(crate) use token::{constant_time_eq, new_token, token_hash, token_id};
