//! Who may run household economic-status checks (核对): a duty given to a
//! named principal on top of its role (migration `0007_check_officers`).

use chrono::Utc;

use super::codec::timestamp;
use super::{MetadataStore, Result, db_err};

impl MetadataStore {
    /// Let principal `name` run household checks (idempotent); `by` is who
    /// decided it.
    pub async fn allow_checks(&self, name: &str, by: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO check_officers (principal, granted_by, granted_at) VALUES ($1, $2, $3) \
             ON CONFLICT (principal) DO NOTHING",
        )
        .bind(name)
        .bind(by)
        .bind(timestamp(Utc::now()))
        .execute(&self.pool)
        .await
        .map_err(db_err("allow checks"))?;
        Ok(())
    }

    /// Withdraw the duty from principal `name` (nothing if it had none).
    pub async fn disallow_checks(&self, name: &str) -> Result<()> {
        sqlx::query("DELETE FROM check_officers WHERE principal = $1")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(db_err("disallow checks"))?;
        Ok(())
    }

    /// Whether principal `name` may run household checks.
    pub async fn may_check(&self, name: &str) -> Result<bool> {
        let row = sqlx::query("SELECT principal FROM check_officers WHERE principal = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err("read check officers"))?;
        Ok(row.is_some())
    }
}

#[cfg(test)]
mod tests {
    use civlink_standards::division::DivisionCode;

    use crate::model::Department;
    use crate::policy::{Principal, Role};
    use crate::store::MetadataStore;

    #[tokio::test]
    async fn the_duty_is_given_and_withdrawn_by_name() {
        let store = MetadataStore::connect("sqlite::memory:").await.unwrap();
        let officer = Principal {
            name: "hd-officer".into(),
            department: Some(Department::Minzheng),
            role: Role::Analyst,
            division: DivisionCode::parse("630000000000").unwrap(),
        };
        store.create_principal(&officer).await.unwrap();
        assert!(!store.may_check("hd-officer").await.unwrap());
        store.allow_checks("hd-officer", "admin").await.unwrap();
        store.allow_checks("hd-officer", "admin").await.unwrap();
        assert!(store.may_check("hd-officer").await.unwrap());
        assert!(!store.may_check("someone-else").await.unwrap());
        store.disallow_checks("hd-officer").await.unwrap();
        assert!(!store.may_check("hd-officer").await.unwrap());
        assert!(store.allow_checks("nobody", "admin").await.is_err(), "only a known principal");
        store.close().await;
    }
}
