//! Households planted for the household check (核对): the first household
//! of at least two members planted with each kind whose facts a check
//! reports (a death, a pension, a job, 低保 in two counties, 特困 with
//! 低保, aid after death), and one household with nothing planted. The
//! ground truth states, per member, exactly what the data holds.

use chrono::Months;

use super::write::month_back;

use super::*;

/// The kinds an applicant household is chosen for.
const CHOSEN: [AnomalyKind; 6] = [
    AnomalyKind::DibaoDeceased,
    AnomalyKind::DibaoEmployeePension,
    AnomalyKind::DibaoEmployed,
    AnomalyKind::DibaoTwoCounties,
    AnomalyKind::TekunAndDibao,
    AnomalyKind::AidAfterDeath,
];

impl Generator {
    /// Record `household` as an applicant if it is the first of its kind.
    pub(super) fn applicant(&mut self, household: &Household, planted: Option<AnomalyKind>) {
        if household.members.len() < 2 || self.applicant_kinds.contains(&planted) {
            return;
        }
        if planted.is_some_and(|k| !CHOSEN.contains(&k)) {
            return;
        }
        // A household with nothing planted, once a few of the others are in.
        if planted.is_none() && (self.applicant_kinds.len() < 3 || household.members.len() < 3) {
            return;
        }
        self.applicant_kinds.push(planted);
        let since = self.as_of.checked_sub_months(Months::new(12)).unwrap_or(self.as_of);
        let home = self.world.villages[household.village].county;
        let members = household
            .members
            .iter()
            .map(|p| {
                let register_status = match (&p.fate, &p.death) {
                    (Fate::MovedOut(_), _) => "moved_out",
                    (_, Some(d)) if d.registered => "deceased",
                    _ => "normal",
                };
                let certified_death = p.death.as_ref().filter(|d| d.certificate).map(|d| d.date);
                // Payments are made on the 15th of each of the last three months.
                let pension_payments = match p.pension_paid {
                    Some(_) => (0..3)
                        .map(|back| month_back(self.as_of, back) + days(14))
                        .filter(|paid| *paid > since && *paid <= self.as_of)
                        .count() as u32,
                    None => 0,
                };
                let ghost_elsewhere = p.ghost.as_ref().is_some_and(|g| self.world.villages[g.village].county != home);
                let dibao_current = u32::from(p.current_dibao()) + u32::from(p.ghost.is_some());
                let dibao_elsewhere = u32::from(ghost_elsewhere);
                let tekun_current = p.tekun.as_ref().is_some_and(|t| t.end.is_none());
                let temporary_aid = p.aids.iter().filter(|a| a.date > since && a.date <= self.as_of).count() as u32;
                let open_jobs = p.jobs.iter().filter(|j| j.end.is_none()).count() as u32;
                let mut flags = Vec::new();
                if register_status == "deceased" || certified_death.is_some() {
                    flags.push("deceased".to_owned());
                }
                if pension_payments > 0 {
                    flags.push("pension_income".to_owned());
                }
                if open_jobs > 0 {
                    flags.push("employed".to_owned());
                }
                if dibao_elsewhere > 0 {
                    flags.push("assistance_elsewhere".to_owned());
                }
                flags.sort();
                ApplicantMember {
                    id_number: p.id.clone(),
                    register_status: register_status.to_owned(),
                    certified_death,
                    pension_payments,
                    pension_monthly: p.pension_paid.filter(|_| pension_payments > 0).map(|cents| cents as f64 / 100.0),
                    open_jobs,
                    disability_grade: p.disability.as_ref().map(|d| d.grade),
                    poverty_status: (p.poor_row && household.poor.is_some()).then(|| {
                        let lifted = household.poor.as_ref().is_some_and(|x| x.lifted);
                        (if lifted { "lifted" } else { "not_lifted" }).to_owned()
                    }),
                    risk_eliminated: (p.monitor_row && household.monitor.is_some()).then(|| {
                        let eliminated = household.monitor.as_ref().is_some_and(|m| m.eliminated);
                        (if eliminated { "yes" } else { "no" }).to_owned()
                    }),
                    dibao_current,
                    dibao_elsewhere,
                    tekun_current,
                    temporary_aid,
                    flags,
                }
            })
            .collect();
        self.applicants.push(Applicant {
            planted: planted.map_or("none", AnomalyKind::as_str).to_owned(),
            household_division: self.world.villages[household.village].code.clone(),
            members,
        });
    }
}
