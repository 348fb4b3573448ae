//! Programmes a household's members receive: 特困 support, 低保, insurance,
//! jobs, pensions, disability certificates and subsidies, illnesses.

use super::*;

impl Generator {
    pub(super) fn tekun(&mut self, p: &Person, urban: bool) -> Tekun {
        let latest = match &p.death {
            Some(d) => d.date - days(30),
            None => self.as_of - days(30),
        };
        let start = self.between(NaiveDate::from_ymd_opt(2015, 1, 1).unwrap_or(latest), latest);
        let end = p.death.as_ref().map(|d| (d.date + days(15 + self.rng.below(45) as i64)).min(self.as_of));
        let self_care = match self.rng.below(100) {
            0..=59 => "完全自理",
            60..=84 => "部分自理",
            _ => "完全不能自理",
        };
        let amount = if urban { self.amount(1100, 1500) } else { self.amount(850, 1200) };
        Tekun { centralized: self.chance(250), self_care, amount, start, end }
    }

    /// The household's 低保 record and its members' memberships.
    pub(super) fn dibao(
        &mut self,
        members: &mut [Person],
        village: usize,
        current: bool,
        plant: Option<Plant>,
    ) -> DibaoHousehold {
        let urban = self.world.villages[village].urban;
        let class = match self.rng.below(10) {
            0..=2 => "一类",
            3..=7 => "二类",
            _ => "三类",
        };
        let share_range = match (urban, class) {
            (true, "一类") => (700, 820),
            (true, "二类") => (420, 520),
            (true, _) => (250, 330),
            (false, "一类") => (550, 650),
            (false, "二类") => (320, 420),
            (false, _) => (150, 250),
        };
        let first = NaiveDate::from_ymd_opt(2015, 1, 1).unwrap_or(self.as_of);
        let (start, end) = if current {
            (self.between(first, self.as_of - days(90)), None)
        } else {
            let start = self.between(first, NaiveDate::from_ymd_opt(2021, 12, 31).unwrap_or(self.as_of));
            (start, Some(self.between(start + days(180), self.as_of - days(30))))
        };
        let deceased_target = plant.filter(|p| p.kind == AnomalyKind::DibaoDeceased).map(|p| p.target);
        let mut any_current = false;
        let mut last_end = start;
        for (i, p) in members.iter_mut().enumerate() {
            // Children born later join the household's support.
            let member_start = start.max(p.birth).min(self.as_of);
            if !p.present() || end.is_some_and(|e| member_start >= e) {
                continue;
            }
            let share = share_range.0 * 100 + self.rng.below((share_range.1 - share_range.0) * 100 + 1);
            let member_end = match (&p.death, end) {
                // The planted case: dead, yet still receiving.
                (Some(_), None) if deceased_target == Some(i) => None,
                (Some(d), _) if d.date <= member_start => continue,
                (Some(d), household_end) => {
                    let died = (d.date + days(15 + self.rng.below(45) as i64)).min(self.as_of);
                    Some(household_end.map_or(died, |e| e.min(died)))
                }
                (None, household_end) => household_end,
            };
            any_current |= member_end.is_none();
            if let Some(e) = member_end {
                last_end = last_end.max(e);
            }
            p.dibao = Some(Membership { start: member_start, end: member_end, share });
        }
        let end = if current && !any_current { Some(last_end) } else { end };
        DibaoHousehold {
            id: self.world.dibao_household_id(village),
            urban,
            class,
            start,
            end,
            suspended: end.is_none() && self.chance(30),
            phone: self.phone(),
            bank: self.digits("6228", 15),
            remark: if self.chance(100) { Some("动态管理") } else { None },
        }
    }

    /// Insurance, work, pensions, disability, illness and aid of one person.
    pub(super) fn programmes(&mut self, p: &mut Person, county: usize, urban: bool) {
        if !p.present() {
            return;
        }
        let dibao_now = p.current_dibao();
        let adult_since = p.birth + days(18 * 366);
        let insured_from = NaiveDate::from_ymd_opt(2012, 7, 1).unwrap_or(self.as_of).max(adult_since);
        if let Some(death) = p.death.clone() {
            if p.age >= 18 && self.chance(900) {
                let kind = if urban && self.chance(300) { 110 } else { 170 };
                let start = self.between(insured_from.min(death.date), death.date);
                p.pension = Some(Insurance { kind, status: 3, base: None, start, end: Some(death.date) });
            }
            if self.chance(950) {
                let first = NaiveDate::from_ymd_opt(2016, 1, 1).unwrap_or(death.date).max(p.birth).min(death.date);
                let start = self.between(first, death.date);
                p.medical = Some(Insurance { kind: 390, status: 3, base: None, start, end: Some(death.date) });
            }
        } else {
            let work = if p.age < 18 || dibao_now {
                Work::None
            } else {
                let employee = if urban { 350 } else { 120 };
                let draw = self.rng.below(1000);
                if draw < employee {
                    Work::Employee
                } else if draw < employee + 40 {
                    Work::Civil
                } else if p.age >= 60 {
                    Work::None
                } else if draw < employee + 120 {
                    Work::SelfEmployed
                } else if draw < employee + 200 {
                    Work::Flexible
                } else if !urban && draw < employee + 230 {
                    Work::PublicWelfare
                } else {
                    Work::None
                }
            };
            let retired = p.age >= 60;
            if p.age >= 18 && self.chance(950) {
                let (kind, base) = match work {
                    Work::Employee => (110, Some(self.amount(3500, 12000))),
                    Work::Civil => (120, Some(self.amount(5000, 15000))),
                    Work::SelfEmployed if self.chance(300) => (110, Some(self.amount(3500, 6000))),
                    // Laid-off workers: an employee pension whose payments are suspended.
                    _ if dibao_now && (30..=59).contains(&p.age) && self.chance(100) => (110, None),
                    _ => (170, None),
                };
                let status = if kind == 110 && dibao_now {
                    2
                } else if retired {
                    4
                } else if self.chance(30) {
                    2
                } else {
                    1
                };
                let start = self.between(insured_from, self.as_of - days(30));
                p.pension = Some(Insurance { kind, status, base, start, end: None });
                if status == 4 {
                    p.pension_paid = Some(match kind {
                        110 => self.amount(2800, 5500),
                        120 => self.amount(4500, 8000),
                        _ => self.amount(180, 650),
                    });
                }
            }
            if self.chance(970) {
                let employed = matches!(work, Work::Employee | Work::Civil);
                let start = self.between(
                    NaiveDate::from_ymd_opt(2016, 1, 1).unwrap_or(self.as_of).max(p.birth),
                    self.as_of - days(1),
                );
                let (kind, base) = if employed { (310, p.pension.and_then(|i| i.base)) } else { (390, None) };
                p.medical = Some(Insurance { kind, status: 1, base, start, end: None });
            }
            if work == Work::Employee && !retired {
                let start = self.between(adult_since.max(insured_from), self.as_of - days(30));
                p.unemployment =
                    Some(Insurance { kind: 210, status: 1, base: p.pension.and_then(|i| i.base), start, end: None });
            }
            // An earlier job that ended (current 低保 members have only these).
            if p.age >= 20 && self.chance(if dibao_now { 200 } else { 150 }) {
                let start = self.between(adult_since, self.as_of - days(400));
                let end = self.between(start + days(60), self.as_of - days(200));
                let kind = if self.chance(500) { Work::Flexible } else { Work::Employee };
                let employer = self.employer(kind, county, &p.name);
                p.jobs.push(JobRecord { employer, kind, start, end: Some(end) });
            }
            if work != Work::None && !retired {
                let start = self.between(adult_since, self.as_of - days(30));
                let employer = self.employer(work, county, &p.name);
                p.jobs.push(JobRecord { employer, kind: work, start, end: None });
            }
            if (!dibao_now && self.chance(10)) || (dibao_now && self.chance(60)) {
                let date = self.between(self.as_of - days(365), self.as_of - days(1));
                let reason = match self.rng.below(20) {
                    0..=8 => "因病",
                    9..=11 => "因灾",
                    12..=14 => "意外事故",
                    15..=17 => "因学",
                    _ => "其他",
                };
                let amount = self.amount(500, 5000);
                p.aids.push(Aid { emergency: self.chance(400), reason, amount, date });
            }
        }
        if p.pension_paid.is_some() {
            p.bank = self.digits("6217", 15);
        }
        self.disability(p, dibao_now);
        self.illnesses(p, county);
    }

    pub(super) fn employer(&mut self, kind: Work, county: usize, name: &str) -> String {
        let county_name = &self.world.counties[county].name;
        match kind {
            Work::Employee => self.rng.pick(&EMPLOYERS).copied().unwrap_or("青海银行股份有限公司").to_owned(),
            Work::Civil => {
                let office = match self.rng.below(4) {
                    0 => "人民政府办公室",
                    1 => "教育局",
                    2 => "人民医院",
                    _ => "农业农村和科技局",
                };
                format!("{county_name}{office}")
            }
            Work::SelfEmployed => {
                let family: String = name.chars().take(1).collect();
                let shop = self.rng.pick(&SHOPS).copied().unwrap_or("便利店");
                format!("{county_name}{family}记{shop}")
            }
            Work::Flexible => self.rng.pick(&FLEXIBLE).copied().unwrap_or("灵活就业").to_owned(),
            Work::PublicWelfare | Work::None => {
                let post = self.rng.pick(&WELFARE).copied().unwrap_or("公益性岗位");
                format!("{county_name}{post}")
            }
        }
    }

    pub(super) fn disability(&mut self, p: &mut Person, dibao_now: bool) {
        let per_mille = match p.age {
            0 => 0,
            1..=17 => 10,
            18..=59 => 35,
            _ => 90,
        };
        if !self.chance(per_mille) {
            return;
        }
        let category = match self.rng.below(100) {
            0..=11 => 1,
            12..=29 => 2,
            30..=31 => 3,
            32..=76 => 4,
            77..=84 => 5,
            85..=94 => 6,
            _ => 7,
        };
        let grade = match self.rng.below(100) {
            0..=11 => 1,
            12..=31 => 2,
            32..=64 => 3,
            _ => 4,
        };
        let latest = p.death.as_ref().map_or(self.as_of - days(30), |d| d.date - days(1));
        let earliest = NaiveDate::from_ymd_opt(2008, 1, 1).unwrap_or(latest).max(p.birth + days(366));
        let issue = self.between(earliest, latest);
        let status = if p.death.is_some() {
            CertStatus::Cancelled
        } else if self.chance(60) {
            CertStatus::Expired
        } else {
            CertStatus::Valid
        };
        let closed = p.death.as_ref().map_or(self.as_of - days(10), |d| (d.date + days(30)).min(self.as_of));
        let care = if grade <= 2 && (status == CertStatus::Valid || self.chance(500)) {
            let start = self.between(issue + days(30), (issue + days(180)).min(self.as_of));
            let end = (status != CertStatus::Valid).then(|| closed.max(start));
            Some(Subsidy { amount: self.amount(100, 200), start, end })
        } else {
            None
        };
        let living = if status == CertStatus::Valid && dibao_now {
            let start = self.between(issue + days(30), (issue + days(365)).min(self.as_of));
            Some(Subsidy { amount: self.amount(80, 150), start, end: None })
        } else {
            None
        };
        p.disability = Some(Disability { category, grade, issue, status, care, living });
    }

    pub(super) fn illnesses(&mut self, p: &mut Person, county: usize) {
        let per_mille = if p.age >= 60 { 70 } else { 25 };
        if !self.chance(per_mille) {
            return;
        }
        let count = if self.chance(150) { 2 } else { 1 };
        let latest = p.death.as_ref().map_or(self.as_of - days(1), |d| d.date - days(1));
        for _ in 0..count {
            let admission = self.between((self.as_of - days(730)).max(p.birth), latest);
            let discharge = admission + days(3 + self.rng.below(28) as i64);
            let discharge = (discharge <= latest.max(admission)).then_some(discharge).or_else(|| {
                // Still in hospital (or died there).
                p.death.as_ref().map(|d| d.date.max(admission))
            });
            let hospital = if self.chance(600) {
                format!("{}人民医院", self.world.counties[county].name)
            } else {
                self.rng.pick(&HOSPITALS).copied().unwrap_or("青海省人民医院").to_owned()
            };
            let total = self.amount(20_000, 300_000);
            let paid = total * (55 + self.rng.below(26)) / 100;
            let icd = self.rng.pick(&ICD_ILLNESS).copied().unwrap_or("I63.9");
            p.illnesses.push(Illness { hospital, icd, admission, discharge, total, paid });
        }
    }
}
