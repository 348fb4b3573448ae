//! Writing a household's rows for every department, with a planted
//! malformed row of a throw-away person now and then.

use super::*;

impl Generator {
    /// Writes a row from `self.row`, then a planted malformed row if one is due.
    pub(super) fn emit(&mut self, ds: Ds, code: u64) -> Result<()> {
        self.exports.valid(ds, &self.row, code)?;
        if let Some(junk) = self.exports.junk_due(ds) {
            let code = self.junk_row(ds);
            self.exports.junk(ds, junk, &mut self.junk, code)?;
        }
        Ok(())
    }

    /// Every row about a household.
    pub(super) fn write(&mut self, h: &Household) -> Result<()> {
        let village = &self.world.villages[h.village];
        let (vcode, vnum, county) = (village.code.clone(), village.num, village.county);
        let county_num = self.world.counties[county].num;
        let county6 = self.world.counties[county].code6.clone();
        let address = format!("{}{}号", village.address, h.door);

        for p in &h.members {
            self.row.clear();
            fill_population(&mut self.row, p, &h.number, &vcode, &address);
            self.emit(Ds::Population, vnum)?;
        }

        if let Some(d) = &h.dibao {
            let head =
                h.members.iter().find(|p| p.current_dibao()).or_else(|| h.members.iter().find(|p| p.dibao.is_some()));
            let counted: Vec<&Person> = h
                .members
                .iter()
                .filter(|p| p.dibao.is_some_and(|m| if d.end.is_none() { m.end.is_none() } else { true }))
                .collect();
            let amount: u64 = counted.iter().filter_map(|p| p.dibao.map(|m| m.share)).sum();
            if let Some(head) = head {
                self.row.clear();
                fill_dibao_household(&mut self.row, d, head.who(), &vcode, counted.len() as i64, amount);
                self.emit(Ds::DibaoHouseholds, vnum)?;
            }
            for p in h.members.iter().filter(|p| p.dibao.is_some()) {
                if let Some(m) = p.dibao {
                    self.row.clear();
                    fill_dibao_member(&mut self.row, &d.id, p.who(), p.relationship, &vcode, m);
                    self.emit(Ds::DibaoMembers, vnum)?;
                }
            }
        }

        for p in &h.members {
            if let Some(g) = &p.ghost {
                let ghost_village = &self.world.villages[g.village];
                let (gcode, gnum, gurban) = (ghost_village.code.clone(), ghost_village.num, ghost_village.urban);
                let household = DibaoHousehold {
                    id: g.household_id.clone(),
                    urban: gurban,
                    class: g.class,
                    start: g.start,
                    end: None,
                    suspended: false,
                    phone: self.phone(),
                    bank: self.digits("6228", 15),
                    remark: None,
                };
                self.row.clear();
                fill_dibao_household(&mut self.row, &household, p.who(), &gcode, 1, g.share);
                self.emit(Ds::DibaoHouseholds, gnum)?;
                self.row.clear();
                let m = Membership { start: g.start, end: None, share: g.share };
                fill_dibao_member(&mut self.row, &g.household_id, p.who(), RELATIONSHIP_HEAD, &gcode, m);
                self.emit(Ds::DibaoMembers, gnum)?;
            }
            if let Some(t) = &p.tekun {
                self.row.clear();
                fill_tekun(&mut self.row, p.who(), &vcode, village_urban(&self.world, h.village), t);
                self.emit(Ds::Tekun, vnum)?;
            }
            for a in &p.aids {
                let aid_id = self.next_aid_id(a.date);
                self.row.clear();
                fill_aid(&mut self.row, &aid_id, p.who(), &vcode, a);
                self.emit(Ds::TemporaryAid, vnum)?;
            }
        }

        for p in &h.members {
            for insurance in [p.pension, p.medical, p.unemployment].into_iter().flatten() {
                self.row.clear();
                fill_insurance(&mut self.row, p.who(), &vcode, &insurance);
                self.emit(Ds::SocialInsurance, vnum)?;
            }
            if let (Some(amount), Some(pension)) = (p.pension_paid, p.pension) {
                for back in (0..3).rev() {
                    let month = month_back(self.as_of, back);
                    let id = self.next_payment_id(month);
                    self.row.clear();
                    fill_payment(&mut self.row, &id, p.who(), &vcode, pension.kind, month, amount, &p.bank);
                    self.emit(Ds::PensionPayments, vnum)?;
                }
            }
            for job in &p.jobs {
                let id = self.next_registration_id(job.start);
                self.row.clear();
                fill_employment(&mut self.row, &id, p.who(), &vcode, job);
                self.emit(Ds::Employment, vnum)?;
            }
        }

        for p in &h.members {
            if let Some(death) = p.death.as_ref().filter(|d| d.certificate) {
                let number = self.next_certificate_number(county);
                self.row.clear();
                fill_death(&mut self.row, &number, p.who(), death, &vcode);
                self.emit(Ds::DeathCertificates, vnum)?;
            }
            for illness in &p.illnesses {
                let id = self.next_illness_id(illness.admission);
                self.row.clear();
                fill_illness(&mut self.row, &id, p.who(), &county6, illness);
                self.emit(Ds::SeriousIllness, county_num)?;
            }
        }

        for p in &h.members {
            if let Some(d) = &p.disability {
                self.row.clear();
                fill_certificate(&mut self.row, p.who(), &vcode, d);
                self.emit(Ds::DisabilityCertificates, vnum)?;
                for (living, subsidy) in [(true, d.living), (false, d.care)] {
                    if let Some(s) = subsidy {
                        self.row.clear();
                        fill_subsidy(&mut self.row, p.who(), &vcode, living, &s);
                        self.emit(Ds::DisabilitySubsidies, vnum)?;
                    }
                }
            }
        }

        for p in &h.members {
            if let (true, Some(poor)) = (p.poor_row, &h.poor) {
                self.row.clear();
                fill_poor(&mut self.row, p.who(), poor, p.relationship, &vcode);
                self.emit(Ds::RegisteredPoor, vnum)?;
            }
            if let (true, Some(m)) = (p.monitor_row, &h.monitor) {
                self.row.clear();
                fill_monitor(&mut self.row, p.who(), m, &vcode);
                self.emit(Ds::Monitoring, vnum)?;
            }
        }
        Ok(())
    }

    pub(super) fn next_aid_id(&mut self, date: NaiveDate) -> String {
        self.world.serial.aid += 1;
        let mut id = String::from("LS");
        push_date(&mut id, date, DateStyle::Compact);
        push_number(&mut id, self.world.serial.aid % 1_000_000, 6);
        id
    }

    pub(super) fn next_payment_id(&mut self, month: NaiveDate) -> String {
        self.world.serial.payment += 1;
        let mut id = String::from("YL");
        push_number(&mut id, month.year() as u64, 4);
        push_number(&mut id, u64::from(month.month()), 2);
        push_number(&mut id, self.world.serial.payment % 10_000_000_000, 10);
        id
    }

    pub(super) fn next_registration_id(&mut self, start: NaiveDate) -> String {
        self.world.serial.registration += 1;
        let mut id = String::from("JY");
        push_number(&mut id, start.year() as u64, 4);
        push_number(&mut id, self.world.serial.registration % 10_000_000_000, 10);
        id
    }

    pub(super) fn next_certificate_number(&mut self, county: usize) -> String {
        self.world.serial.death += 1;
        let mut id = String::new();
        id.push(char::from(b'A' + (county % 26) as u8));
        push_number(&mut id, self.world.serial.death % 1_000_000_000, 9);
        id
    }

    pub(super) fn next_illness_id(&mut self, admission: NaiveDate) -> String {
        self.world.serial.illness += 1;
        let mut id = String::from("ZY");
        push_number(&mut id, admission.year() as u64, 4);
        push_number(&mut id, self.world.serial.illness % 10_000_000_000, 10);
        id
    }

    /// A valid, harmless row of a throw-away person in `self.junk`, ready to
    /// be made malformed; returns its division code. The person appears
    /// nowhere else, so no anomaly query can match them.
    pub(super) fn junk_row(&mut self, ds: Ds) -> u64 {
        let village = self.rng.below(self.world.villages.len() as u64) as usize;
        let county = self.world.villages[village].county;
        let male = self.chance(500);
        let age = 25 + self.rng.below(50) as u32;
        let birth = self.birth_for_age(age);
        let (id, birth) = self.world.new_id(county, birth, male);
        // Three characters: a mixed-encoding line is then undecodable in every charset.
        let family = self.rng.pick(&["王", "李", "张", "刘", "陈", "马"]).copied().unwrap_or("王");
        let given: &[&str] =
            if male { &["建国", "永福", "海龙", "志刚"] } else { &["秀英", "玉兰", "春梅", "桂花"] };
        let given = self.rng.pick(given).copied().unwrap_or("文华");
        let name = format!("{family}{given}");
        let vcode = self.world.villages[village].code.clone();
        let vnum = self.world.villages[village].num;
        let urban = self.world.villages[village].urban;
        let who = Who { id: &id, name: &name, male };
        let recent = self.between(self.as_of - days(700), self.as_of - days(30));
        self.junk.clear();
        match ds {
            Ds::Population => {
                let p = Person::fresh(id.clone(), name.clone(), male, Ethnic::Han, birth, age, RELATIONSHIP_HEAD);
                let number = self.world.household_number(county);
                let address = format!("{}{}号", self.world.villages[village].address, 1 + self.rng.below(300));
                fill_population(&mut self.junk, &p, &number, &vcode, &address);
            }
            Ds::DibaoHouseholds => {
                let d = DibaoHousehold {
                    id: self.world.dibao_household_id(village),
                    urban,
                    class: "二类",
                    start: recent,
                    end: None,
                    suspended: false,
                    phone: "13800000000".into(),
                    bank: "6228000000000000000".into(),
                    remark: None,
                };
                fill_dibao_household(&mut self.junk, &d, who, &vcode, 1, 40_000);
            }
            Ds::DibaoMembers => {
                let household = self.world.dibao_household_id(village);
                let m = Membership { start: recent, end: None, share: 40_000 };
                fill_dibao_member(&mut self.junk, &household, who, RELATIONSHIP_HEAD, &vcode, m);
            }
            Ds::Tekun => {
                let t =
                    Tekun { centralized: false, self_care: "完全自理", amount: 110_000, start: recent, end: None };
                fill_tekun(&mut self.junk, who, &vcode, urban, &t);
            }
            Ds::TemporaryAid => {
                let a = Aid { emergency: true, reason: "因病", amount: 200_000, date: recent };
                let aid_id = {
                    self.world.serial.aid += 1;
                    let mut s = String::from("LS");
                    push_date(&mut s, recent, DateStyle::Compact);
                    push_number(&mut s, self.world.serial.aid % 1_000_000, 6);
                    s
                };
                fill_aid(&mut self.junk, &aid_id, who, &vcode, &a);
            }
            Ds::SocialInsurance => {
                let i = Insurance { kind: 390, status: 1, base: None, start: recent, end: None };
                fill_insurance(&mut self.junk, who, &vcode, &i);
            }
            Ds::PensionPayments => {
                let month = month_back(self.as_of, 0);
                self.world.serial.payment += 1;
                let mut pid = String::from("YL");
                push_number(&mut pid, month.year() as u64, 4);
                push_number(&mut pid, u64::from(month.month()), 2);
                push_number(&mut pid, self.world.serial.payment % 10_000_000_000, 10);
                fill_payment(&mut self.junk, &pid, who, &vcode, 170, month, 30_000, "6217000000000000000");
            }
            Ds::Employment => {
                let job =
                    JobRecord { employer: FLEXIBLE[0].to_owned(), kind: Work::Flexible, start: recent, end: None };
                self.world.serial.registration += 1;
                let mut rid = String::from("JY");
                push_number(&mut rid, recent.year() as u64, 4);
                push_number(&mut rid, self.world.serial.registration % 10_000_000_000, 10);
                fill_employment(&mut self.junk, &rid, who, &vcode, &job);
            }
            Ds::DeathCertificates => {
                let death = Death {
                    date: recent,
                    registered: false,
                    cancelled: recent,
                    certificate: true,
                    cause: "I64",
                    place: "医疗卫生机构",
                };
                self.world.serial.death += 1;
                let mut number = String::from("Z");
                push_number(&mut number, self.world.serial.death % 1_000_000_000, 9);
                fill_death(&mut self.junk, &number, who, &death, &vcode);
            }
            Ds::SeriousIllness => {
                let illness = Illness {
                    hospital: HOSPITALS[0].to_owned(),
                    icd: "I63.9",
                    admission: recent,
                    discharge: Some(recent + days(10)),
                    total: 3_000_000,
                    paid: 2_000_000,
                };
                self.world.serial.illness += 1;
                let mut rid = String::from("ZY");
                push_number(&mut rid, recent.year() as u64, 4);
                push_number(&mut rid, self.world.serial.illness % 10_000_000_000, 10);
                let county6 = self.world.counties[county].code6.clone();
                fill_illness(&mut self.junk, &rid, who, &county6, &illness);
                return self.world.counties[county].num;
            }
            Ds::DisabilityCertificates => {
                let d = Disability {
                    category: 4,
                    grade: 4,
                    issue: recent,
                    status: CertStatus::Valid,
                    care: None,
                    living: None,
                };
                fill_certificate(&mut self.junk, who, &vcode, &d);
            }
            Ds::DisabilitySubsidies => {
                let s = Subsidy { amount: 10_000, start: recent, end: None };
                fill_subsidy(&mut self.junk, who, &vcode, true, &s);
            }
            Ds::RegisteredPoor => {
                let poor = Poor {
                    id: self.world.poor_household_id(village),
                    lifted: true,
                    registered: 2015,
                    lifted_year: Some(2018),
                };
                fill_poor(&mut self.junk, who, &poor, RELATIONSHIP_HEAD, &vcode);
            }
            Ds::Monitoring => {
                let m = Monitor {
                    household_id: self.world.poor_household_id(village),
                    kind: "边缘易致贫户",
                    risk: "因病",
                    eliminated: true,
                    identified: recent,
                };
                fill_monitor(&mut self.junk, who, &m, &vcode);
            }
        }
        vnum
    }
}

/// The first day of the month `back` months before `as_of`'s.
pub(super) fn month_back(as_of: NaiveDate, back: u32) -> NaiveDate {
    let months = as_of.year() * 12 + as_of.month0() as i32 - back as i32;
    NaiveDate::from_ymd_opt(months.div_euclid(12), months.rem_euclid(12) as u32 + 1, 1).unwrap_or(as_of)
}

pub(super) fn fill_population(row: &mut Row, p: &Person, household: &str, village: &str, address: &str) {
    row.text(&p.id);
    row.text(&p.name);
    row.text(p.who().sex());
    row.text(p.ethnic.label());
    row.date(p.birth, DateStyle::Compact);
    row.text(household);
    row.text(p.relationship);
    row.text(village);
    row.text(address);
    match (&p.fate, &p.death) {
        (Fate::MovedOut(date), _) => {
            row.text("迁出");
            row.date(*date, DateStyle::Compact);
        }
        (_, Some(d)) if d.registered => {
            row.text("死亡");
            row.date(d.cancelled, DateStyle::Compact);
        }
        _ => {
            row.text("正常");
            row.null();
        }
    }
}

pub(super) fn fill_dibao_household(
    row: &mut Row,
    d: &DibaoHousehold,
    head: Who<'_>,
    village: &str,
    size: i64,
    amount: u64,
) {
    row.text(&d.id);
    row.text(head.id);
    row.text(head.name);
    row.text(village);
    row.text(if d.urban { "城市低保" } else { "农村低保" });
    row.text(d.class);
    row.int(size.max(1));
    row.amount(amount, false);
    row.text(&d.bank);
    row.text(&d.phone);
    row.date(d.start, DateStyle::Iso);
    row.opt_date(d.end, DateStyle::Iso);
    row.text(match (d.end, d.suspended) {
        (Some(_), _) => "停止保障",
        (None, true) => "暂停保障",
        (None, false) => "正常保障",
    });
    match d.remark {
        Some(r) => row.text(r),
        None => row.null(),
    }
}

pub(super) fn fill_dibao_member(
    row: &mut Row,
    household: &str,
    who: Who<'_>,
    relationship: &str,
    village: &str,
    m: Membership,
) {
    row.text(household);
    row.text(who.id);
    row.text(who.name);
    row.text(who.sex());
    row.text(relationship);
    row.text(village);
    row.amount(m.share, false);
    row.date(m.start, DateStyle::Iso);
    row.opt_date(m.end, DateStyle::Iso);
}

pub(super) fn fill_tekun(row: &mut Row, who: Who<'_>, village: &str, urban: bool, t: &Tekun) {
    row.text(who.id);
    row.text(who.name);
    row.text(who.sex());
    row.text(village);
    row.text(if urban { "城市特困" } else { "农村特困" });
    row.text(if t.centralized { "集中供养" } else { "分散供养" });
    row.text(t.self_care);
    row.amount(t.amount, true);
    row.date(t.start, DateStyle::Chinese);
    row.opt_date(t.end, DateStyle::Chinese);
}

pub(super) fn fill_aid(row: &mut Row, aid_id: &str, who: Who<'_>, village: &str, a: &Aid) {
    row.text(aid_id);
    row.text(who.id);
    row.text(who.name);
    row.text(village);
    row.text(if a.emergency { "急难型" } else { "支出型" });
    row.text(a.reason);
    row.amount(a.amount, true);
    row.date(a.date, DateStyle::Slash);
}

pub(super) fn fill_insurance(row: &mut Row, who: Who<'_>, village: &str, i: &Insurance) {
    row.text(who.id);
    row.text(who.name);
    row.text(village);
    row.int(i64::from(i.kind));
    row.text(match i.status {
        1 => "参保缴费",
        2 => "暂停缴费",
        3 => "终止参保",
        _ => "待遇领取",
    });
    row.opt_amount(i.base, false);
    row.date(i.start, DateStyle::Iso);
    row.opt_date(i.end, DateStyle::Iso);
}

#[allow(clippy::too_many_arguments)]
pub(super) fn fill_payment(
    row: &mut Row,
    payment_id: &str,
    who: Who<'_>,
    village: &str,
    kind: u16,
    month: NaiveDate,
    amount: u64,
    bank: &str,
) {
    row.text(payment_id);
    row.text(who.id);
    row.text(who.name);
    row.text(village);
    row.int(i64::from(kind));
    row.text_with(|s| {
        push_number(s, month.year() as u64, 4);
        s.push('-');
        push_number(s, u64::from(month.month()), 2);
    });
    row.amount(amount, false);
    row.date(month + days(14), DateStyle::Iso);
    row.text(bank);
}

pub(super) fn fill_employment(row: &mut Row, registration_id: &str, who: Who<'_>, village: &str, job: &JobRecord) {
    row.text(registration_id);
    row.text(who.id);
    row.text(who.name);
    row.text(village);
    row.text(&job.employer);
    row.text(match job.kind {
        Work::Employee | Work::Civil => "单位就业",
        Work::SelfEmployed => "个体经营",
        Work::Flexible | Work::None => "灵活就业",
        Work::PublicWelfare => "公益性岗位",
    });
    row.date(job.start, DateStyle::Iso);
    row.opt_date(job.end, DateStyle::Iso);
}

pub(super) fn fill_death(row: &mut Row, number: &str, who: Who<'_>, d: &Death, village: &str) {
    row.text(number);
    row.text(who.id);
    row.text(who.name);
    row.text(who.sex());
    row.date(d.date, DateStyle::DateTime);
    row.text(village);
    row.text(d.cause);
    row.text(d.place);
}

pub(super) fn fill_illness(row: &mut Row, record_id: &str, who: Who<'_>, county6: &str, i: &Illness) {
    row.text(record_id);
    row.text(who.id);
    row.text(who.name);
    row.text(county6);
    row.text(&i.hospital);
    row.text(i.icd);
    row.date(i.admission, DateStyle::Iso);
    row.opt_date(i.discharge, DateStyle::Iso);
    row.amount(i.total, false);
    row.amount(i.paid, false);
    row.amount(i.total - i.paid, false);
}

pub(super) fn fill_certificate(row: &mut Row, who: Who<'_>, village: &str, d: &Disability) {
    row.text_with(|s| {
        s.push_str(who.id);
        push_number(s, u64::from(d.category), 1);
        push_number(s, u64::from(d.grade), 1);
    });
    row.text(who.id);
    row.text(who.name);
    row.text(who.sex());
    row.text(village);
    row.text(CATEGORY_LABELS.get(usize::from(d.category.saturating_sub(1))).copied().unwrap_or("肢体残疾"));
    row.text(GRADE_LABELS.get(usize::from(d.grade.saturating_sub(1))).copied().unwrap_or("四级"));
    row.date(d.issue, DateStyle::Dot);
    row.text(match d.status {
        CertStatus::Valid => "有效",
        CertStatus::Expired => "过期",
        CertStatus::Cancelled => "注销",
    });
}

pub(super) fn fill_subsidy(row: &mut Row, who: Who<'_>, village: &str, living: bool, s: &Subsidy) {
    row.text(who.id);
    row.text(who.name);
    row.text(village);
    row.text(if living { "困难残疾人生活补贴" } else { "重度残疾人护理补贴" });
    row.amount(s.amount, false);
    row.date(s.start, DateStyle::Dot);
    row.opt_date(s.end, DateStyle::Dot);
}

pub(super) fn fill_poor(row: &mut Row, who: Who<'_>, poor: &Poor, relationship: &str, village: &str) {
    row.text(who.id);
    row.text(who.name);
    row.text(&poor.id);
    row.text(relationship);
    row.text(village);
    row.text(if poor.lifted { "已脱贫" } else { "未脱贫" });
    row.int(poor.registered);
    row.opt_int(poor.lifted_year);
}

pub(super) fn fill_monitor(row: &mut Row, who: Who<'_>, m: &Monitor, village: &str) {
    row.text(who.id);
    row.text(who.name);
    row.text(&m.household_id);
    row.text(village);
    row.text(m.kind);
    row.text(m.risk);
    row.text(if m.eliminated { "是" } else { "否" });
    row.date(m.identified, DateStyle::Compact);
}
