//! Planted anomalies: choosing one, changing exactly what the case needs,
//! and checking every person against the anomaly queries.

use super::write::month_back;
use super::*;

const MINZHENG: &str = "minzheng";
const RENSHE: &str = "renshe";

/// One anomaly query's match: the kind, the divisions of the rows it rests
/// on, the divisions and the department that must act.
pub(super) struct Found {
    kind: AnomalyKind,
    codes: Vec<u64>,
    responsible: Vec<u64>,
    department: &'static str,
}

impl Generator {
    /// The anomaly to plant in this household, if one is due and fits.
    pub(super) fn choose_plant(&mut self, members: &[Person]) -> Option<Plant> {
        let present_alive = |p: &Person| p.present() && p.alive();
        let kinds = AnomalyKind::ALL.len();
        for offset in 1..=kinds {
            let k = (self.planter.last + offset) % kinds;
            if self.people < self.planter.next[k] {
                continue;
            }
            let kind = AnomalyKind::ALL[k];
            let target = match kind {
                AnomalyKind::DibaoDeceased => {
                    members.iter().enumerate().filter(|(_, p)| p.present()).max_by_key(|(_, p)| p.age).map(|(i, _)| i)
                }
                AnomalyKind::DibaoEmployeePension => {
                    members.iter().position(|p| present_alive(p) && (18..=75).contains(&p.age))
                }
                AnomalyKind::DibaoEmployed => {
                    members.iter().position(|p| present_alive(p) && (18..=59).contains(&p.age))
                }
                AnomalyKind::DibaoTwoCounties => members.iter().position(|p| present_alive(p) && p.age >= 18),
                AnomalyKind::MissedAssistance => members.iter().position(present_alive),
                AnomalyKind::DisabledWithoutCareSubsidy => members.iter().position(|p| present_alive(p) && p.age >= 1),
                AnomalyKind::TekunAndDibao => members
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| present_alive(p) && p.age >= 18)
                    .max_by_key(|(_, p)| p.age)
                    .map(|(i, _)| i),
                AnomalyKind::AidAfterDeath => members.iter().position(|p| present_alive(p) && p.age >= 60),
            };
            if let Some(target) = target {
                self.planter.next[k] += self.planter.interval;
                self.planter.last = k;
                let variant = self.planter.variants[k];
                self.planter.variants[k] += 1;
                return Some(Plant { kind, target, variant });
            }
        }
        None
    }

    /// What a planted case needs beyond the household-level changes.
    pub(super) fn apply_plant(&mut self, p: &mut Person, plant: Plant, village: usize, county: usize) {
        match plant.kind {
            AnomalyKind::DibaoEmployeePension => {
                let status = if p.age >= 60 { 4 } else { 1 };
                let start = self.between(self.as_of - days(2000), self.as_of - days(60));
                p.pension =
                    Some(Insurance { kind: 110, status, base: Some(self.amount(3500, 9000)), start, end: None });
                p.pension_paid = (status == 4).then(|| self.amount(2800, 5000));
                if p.pension_paid.is_some() && p.bank.is_empty() {
                    p.bank = self.digits("6217", 15);
                }
                p.jobs.retain(|j| j.end.is_some());
            }
            AnomalyKind::DibaoEmployed => {
                let kind = match plant.variant % 3 {
                    0 => Work::Flexible,
                    1 => Work::SelfEmployed,
                    _ => Work::PublicWelfare,
                };
                let start = self.between(self.as_of - days(900), self.as_of - days(30));
                let employer = self.employer(kind, county, &p.name);
                p.jobs.push(JobRecord { employer, kind, start, end: None });
            }
            AnomalyKind::DibaoTwoCounties => {
                // A second household in a county other than the home one.
                let home_county = self.world.villages[village].county;
                let mut other = village;
                for _ in 0..64 {
                    let candidate = self.rng.below(self.world.villages.len() as u64) as usize;
                    if self.world.villages[candidate].county != home_county {
                        other = candidate;
                        break;
                    }
                }
                let start = self.between(self.as_of - days(1500), self.as_of - days(60));
                let urban = self.world.villages[other].urban;
                let share = if urban { self.amount(420, 520) } else { self.amount(320, 420) };
                let household_id = self.world.dibao_household_id(other);
                p.ghost = Some(Ghost { village: other, household_id, start, share, class: "二类" });
            }
            AnomalyKind::DisabledWithoutCareSubsidy => {
                let grade = 1 + (plant.variant % 2) as u8;
                let earliest = NaiveDate::from_ymd_opt(2012, 1, 1).unwrap_or(self.as_of).max(p.birth + days(366));
                let issue = self.between(earliest, self.as_of - days(60));
                let living = p.current_dibao().then(|| Subsidy {
                    amount: self.amount(80, 150),
                    start: (issue + days(60)).min(self.as_of),
                    end: None,
                });
                let category = 1 + self.rng.below(7) as u8;
                p.disability =
                    Some(Disability { category, grade, issue, status: CertStatus::Valid, care: None, living });
            }
            AnomalyKind::TekunAndDibao => {
                let urban = village_urban(&self.world, village);
                p.tekun = Some(self.tekun(p, urban));
            }
            AnomalyKind::AidAfterDeath => {
                // Dead before the household's programmes were decided (see `household`).
                let Some(known) = p.death.as_ref().map(Death::known) else { return };
                if plant.variant.is_multiple_of(2) {
                    let date = self.between(known + days(1), self.as_of);
                    let amount = self.amount(500, 3000);
                    p.aids.push(Aid { emergency: self.chance(500), reason: "因病", amount, date });
                } else {
                    // 人社 was never told: the pension is still "receiving" and paid every month.
                    let start = self.between(NaiveDate::from_ymd_opt(2013, 1, 1).unwrap_or(known), known);
                    p.pension = Some(Insurance { kind: 170, status: 4, base: None, start, end: None });
                    p.pension_paid = Some(self.amount(180, 650));
                    p.bank = self.digits("6217", 15);
                }
            }
            AnomalyKind::DibaoDeceased | AnomalyKind::MissedAssistance => {}
        }
    }

    /// The findings of the anomaly queries for one person, with the
    /// division codes of the rows each depends on.
    pub(super) fn findings(&self, p: &Person, household: &Household) -> Vec<Found> {
        let home = self.world.villages[household.village].num;
        let home_current = p.current_dibao();
        let ghost_current = p.ghost.is_some();
        let mut member_codes = Vec::new();
        if home_current {
            member_codes.push(home);
        }
        if let Some(g) = &p.ghost {
            member_codes.push(self.world.villages[g.village].num);
        }
        let current = home_current || ghost_current;
        let mut found: Vec<Found> = Vec::new();
        let mut push = |kind, codes: Vec<u64>, responsible: Vec<u64>, department| {
            found.push(Found { kind, codes, responsible, department });
        };
        let with_home = |codes: &[u64]| {
            let mut all = codes.to_vec();
            all.push(home);
            all
        };
        if current && p.death.as_ref().is_some_and(|d| d.registered || d.certificate) {
            push(AnomalyKind::DibaoDeceased, with_home(&member_codes), member_codes.clone(), MINZHENG);
        }
        if current && p.pension.is_some_and(|i| i.kind == 110 && matches!(i.status, 1 | 4)) {
            push(AnomalyKind::DibaoEmployeePension, with_home(&member_codes), member_codes.clone(), MINZHENG);
        }
        if current && p.jobs.iter().any(|j| j.end.is_none()) {
            push(AnomalyKind::DibaoEmployed, with_home(&member_codes), member_codes.clone(), MINZHENG);
        }
        if let Some(g) = &p.ghost
            && home_current
            && self.world.villages[g.village].county != self.world.villages[household.village].county
        {
            push(AnomalyKind::DibaoTwoCounties, member_codes.clone(), member_codes.clone(), MINZHENG);
        }
        let eligible = (p.monitor_row && household.monitor.as_ref().is_some_and(|m| !m.eliminated))
            || (p.poor_row && household.poor.as_ref().is_some_and(|x| !x.lifted));
        let tekun_now = p.tekun.as_ref().is_some_and(|t| t.end.is_none());
        if eligible && !current && !tekun_now {
            push(AnomalyKind::MissedAssistance, vec![home], vec![home], MINZHENG);
        }
        if p.disability.as_ref().is_some_and(|d| d.status == CertStatus::Valid && d.grade <= 2 && d.care.is_none()) {
            push(AnomalyKind::DisabledWithoutCareSubsidy, vec![home], vec![home], MINZHENG);
        }
        if current && p.tekun.as_ref().is_some_and(|t| t.end.is_none()) {
            push(AnomalyKind::TekunAndDibao, with_home(&member_codes), member_codes.clone(), MINZHENG);
        }
        if let Some(known) = p.death.as_ref().map(Death::known) {
            if p.aids.iter().any(|a| a.date > known) {
                push(AnomalyKind::AidAfterDeath, vec![home], vec![home], MINZHENG);
            }
            // Payments are made on the 15th of each of the last three months.
            if p.pension_paid.is_some() && month_back(self.as_of, 0) + days(14) > known {
                push(AnomalyKind::AidAfterDeath, vec![home], vec![home], RENSHE);
            }
        }
        found
    }

    /// Every member matches exactly what was planted on them; the findings
    /// become the ground truth's anomalies.
    pub(super) fn check(&mut self, household: &Household) -> Result<()> {
        for (i, p) in household.members.iter().enumerate() {
            let found = self.findings(p, household);
            let kinds: Vec<AnomalyKind> = found.iter().map(|f| f.kind).collect();
            let expected: Vec<AnomalyKind> = p.planted.into_iter().collect();
            if kinds != expected {
                return Err(Error::Inconsistent {
                    message: format!(
                        "household member {i} ({}) matches {kinds:?}, planted {expected:?}",
                        p.relationship
                    ),
                });
            }
            for Found { kind, mut codes, mut responsible, department } in found {
                codes.sort_unstable();
                codes.dedup();
                responsible.sort_unstable();
                responsible.dedup();
                self.anomalies.push(Anomaly {
                    kind,
                    id_number: p.id.clone(),
                    division_codes: codes.iter().map(|c| format!("{c:012}")).collect(),
                    responsible_divisions: responsible.iter().map(|c| format!("{c:012}")).collect(),
                    department: department.to_owned(),
                });
            }
        }
        Ok(())
    }
}
