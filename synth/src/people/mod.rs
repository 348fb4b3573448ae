//! Households and people: who lives where, who receives what, and the rows
//! every department holds about them.
//!
//! One household at a time, [`Generator::household`]:
//!
//! 1. places it in a village and invents its members (a head, a spouse,
//!    children, sometimes a parent or grandchildren) with fitting ages,
//!    sexes, names and unique ID numbers;
//! 2. decides fates (deaths, moves) and programmes: 特困 support for some
//!    elderly living alone, 建档立卡 and 防返贫监测 status, 低保 (always for
//!    households that are poor and not lifted, or monitored with a risk not
//!    eliminated — unless they receive 特困 support), insurance, jobs,
//!    pensions, disability certificates and subsidies, illnesses, aid;
//! 3. plants an anomaly when one is due (one kind at a time, every
//!    `interval` people per kind), changing exactly what the case needs;
//! 4. checks every person against the anomaly queries: a planted person
//!    must match their kind and nothing else, everyone else nothing — the
//!    ground truth's anomalies are these findings;
//! 5. writes every row, with a planted malformed row of a throw-away person
//!    now and then ([`Exports::junk_due`]).
//!
//! Rules that keep the data free of accidental anomalies: a current 低保
//! member is alive, has no employee pension in status 1/4 and no open
//! employment, and is a member of one household only; every valid grade 1/2
//! certificate holder has a care subsidy.

mod applicants;
mod plant;
mod programmes;
mod write;

use chrono::{Datelike, Duration, NaiveDate};
use civlink_standards::rng::Rng;

use crate::datasets::{Ds, Exports};
use crate::rows::Row;
use crate::text::{DateStyle, Ethnic, family_name, person_name, push_date, push_number};
use crate::truth::{Anomaly, AnomalyKind, Applicant, ApplicantMember, GroundTruth};
use crate::world::{Village, World};
use crate::{Error, Options, Result};

/// The reference date of every generated data set: nothing happens after it.
/// Fixed, so that a seed gives the same files on any day.
pub(crate) const AS_OF: Option<NaiveDate> = NaiveDate::from_ymd_opt(2026, 6, 30);

/// Generates everything; see the crate docs.
pub(crate) fn run(options: &Options, progress: &mut dyn FnMut(u64, u64)) -> Result<GroundTruth> {
    let total = options.people_count();
    let out = &options.out;
    std::fs::create_dir_all(out).map_err(|source| Error::Io { path: out.clone(), source })?;
    let as_of = AS_OF.ok_or_else(|| Error::Inconsistent { message: "no reference date".into() })?;
    let world = World::qinghai(as_of)?;
    let exports = Exports::create(out, total, as_of)?;
    let mut g = Generator::new(options.seed, total, as_of, world, exports);
    progress(0, total);
    let mut reported = 0;
    while g.people < total {
        g.household()?;
        if g.people - reported >= 16_384 {
            reported = g.people;
            progress(g.people, total);
        }
    }
    progress(g.people, total);
    let people = g.people;
    let anomalies = std::mem::take(&mut g.anomalies);
    let applicants = std::mem::take(&mut g.applicants);
    let datasets = g.exports.finish()?;
    let truth =
        GroundTruth { seed: options.seed, scale: options.scale, people, as_of, datasets, applicants, anomalies };
    truth.save(&out.join("ground_truth.json"))?;
    Ok(truth)
}

/// How a person appears in the register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Alive,
    Dead,
    MovedOut(NaiveDate),
}

#[derive(Debug, Clone)]
struct Death {
    date: NaiveDate,
    /// The register shows them deceased (户籍注销).
    registered: bool,
    /// The date the register was changed.
    cancelled: NaiveDate,
    /// A death certificate was issued.
    certificate: bool,
    cause: &'static str,
    place: &'static str,
}

impl Death {
    /// The date a department can know of the death: the certificate's date
    /// of death, else the day the register was changed.
    fn known(&self) -> NaiveDate {
        if self.certificate { self.date } else { self.cancelled }
    }
}

#[derive(Debug, Clone, Copy)]
struct Membership {
    start: NaiveDate,
    end: Option<NaiveDate>,
    share: u64,
}

#[derive(Debug, Clone)]
struct Ghost {
    village: usize,
    household_id: String,
    start: NaiveDate,
    share: u64,
    class: &'static str,
}

#[derive(Debug, Clone)]
struct Tekun {
    centralized: bool,
    self_care: &'static str,
    amount: u64,
    start: NaiveDate,
    end: Option<NaiveDate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Insurance {
    kind: u16,
    status: u8,
    base: Option<u64>,
    start: NaiveDate,
    end: Option<NaiveDate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Work {
    None,
    Employee,
    Civil,
    SelfEmployed,
    Flexible,
    PublicWelfare,
}

#[derive(Debug, Clone)]
struct JobRecord {
    employer: String,
    kind: Work,
    start: NaiveDate,
    end: Option<NaiveDate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CertStatus {
    Valid,
    Expired,
    Cancelled,
}

#[derive(Debug, Clone, Copy)]
struct Subsidy {
    amount: u64,
    start: NaiveDate,
    end: Option<NaiveDate>,
}

#[derive(Debug, Clone)]
struct Disability {
    category: u8,
    grade: u8,
    issue: NaiveDate,
    status: CertStatus,
    care: Option<Subsidy>,
    living: Option<Subsidy>,
}

#[derive(Debug, Clone)]
struct Illness {
    hospital: String,
    icd: &'static str,
    admission: NaiveDate,
    discharge: Option<NaiveDate>,
    total: u64,
    paid: u64,
}

#[derive(Debug, Clone, Copy)]
struct Aid {
    emergency: bool,
    reason: &'static str,
    amount: u64,
    date: NaiveDate,
}

/// One person and everything the departments hold about them.
#[derive(Debug, Clone)]
struct Person {
    id: String,
    name: String,
    male: bool,
    ethnic: Ethnic,
    birth: NaiveDate,
    age: u32,
    relationship: &'static str,
    fate: Fate,
    death: Option<Death>,
    dibao: Option<Membership>,
    ghost: Option<Ghost>,
    tekun: Option<Tekun>,
    pension: Option<Insurance>,
    medical: Option<Insurance>,
    unemployment: Option<Insurance>,
    jobs: Vec<JobRecord>,
    /// Monthly pension paid, when receiving one.
    pension_paid: Option<u64>,
    bank: String,
    disability: Option<Disability>,
    illnesses: Vec<Illness>,
    aids: Vec<Aid>,
    /// Has a 建档立卡 row (the household's status applies).
    poor_row: bool,
    /// Has a 防返贫监测 row (the household's status applies).
    monitor_row: bool,
    planted: Option<AnomalyKind>,
}

impl Person {
    /// A living person with no record in any department yet.
    fn fresh(
        id: String,
        name: String,
        male: bool,
        ethnic: Ethnic,
        birth: NaiveDate,
        age: u32,
        relationship: &'static str,
    ) -> Person {
        Person {
            id,
            name,
            male,
            ethnic,
            birth,
            age,
            relationship,
            fate: Fate::Alive,
            death: None,
            dibao: None,
            ghost: None,
            tekun: None,
            pension: None,
            medical: None,
            unemployment: None,
            jobs: Vec::new(),
            pension_paid: None,
            bank: String::new(),
            disability: None,
            illnesses: Vec::new(),
            aids: Vec::new(),
            poor_row: false,
            monitor_row: false,
            planted: None,
        }
    }
}

impl Person {
    fn alive(&self) -> bool {
        self.fate == Fate::Alive
    }

    fn present(&self) -> bool {
        !matches!(self.fate, Fate::MovedOut(_))
    }

    fn who(&self) -> Who<'_> {
        Who { id: &self.id, name: &self.name, male: self.male }
    }

    fn current_dibao(&self) -> bool {
        self.dibao.is_some_and(|m| m.end.is_none())
    }
}

/// The person columns most rows start with.
#[derive(Debug, Clone, Copy)]
struct Who<'a> {
    id: &'a str,
    name: &'a str,
    male: bool,
}

impl Who<'_> {
    fn sex(&self) -> &'static str {
        if self.male { "男" } else { "女" }
    }
}

#[derive(Debug, Clone)]
struct DibaoHousehold {
    id: String,
    urban: bool,
    class: &'static str,
    start: NaiveDate,
    end: Option<NaiveDate>,
    suspended: bool,
    phone: String,
    bank: String,
    remark: Option<&'static str>,
}

#[derive(Debug, Clone)]
struct Poor {
    id: String,
    lifted: bool,
    registered: i64,
    lifted_year: Option<i64>,
}

#[derive(Debug, Clone)]
struct Monitor {
    household_id: String,
    kind: &'static str,
    risk: &'static str,
    eliminated: bool,
    identified: NaiveDate,
}

struct Household {
    village: usize,
    number: String,
    door: u64,
    members: Vec<Person>,
    dibao: Option<DibaoHousehold>,
    poor: Option<Poor>,
    monitor: Option<Monitor>,
}

/// An anomaly about to be planted in the current household.
#[derive(Debug, Clone, Copy)]
struct Plant {
    kind: AnomalyKind,
    /// The member concerned (all present members for missed assistance).
    target: usize,
    variant: u32,
}

/// When each kind of anomaly is next due.
struct Planter {
    interval: u64,
    next: [u64; AnomalyKind::ALL.len()],
    variants: [u32; AnomalyKind::ALL.len()],
    last: usize,
}

/// Generation state: small and bounded (no per-person memory).
struct Generator {
    rng: Rng,
    world: World,
    exports: Exports,
    as_of: NaiveDate,
    people: u64,
    total: u64,
    row: Row,
    junk: Row,
    planter: Planter,
    anomalies: Vec<Anomaly>,
    /// Households planted for the household check, and which kinds have one.
    applicants: Vec<Applicant>,
    applicant_kinds: Vec<Option<AnomalyKind>>,
}

const RELATIONSHIP_HEAD: &str = "户主";
const RELATIONSHIP_SPOUSE: &str = "配偶";

const ICD_DEATH: [&str; 12] =
    ["I21.9", "I63.9", "I64", "C16.9", "C22.0", "C34.9", "J44.9", "J18.9", "E11.9", "N18.5", "I50.9", "S06.9"];
const ICD_ILLNESS: [&str; 14] = [
    "C16.9", "C22.0", "C34.9", "C50.9", "I21.9", "I63.9", "J44.1", "N18.5", "K74.6", "B18.1", "A15.0", "E11.9",
    "S72.0", "I50.9",
];
const HOSPITALS: [&str; 7] = [
    "青海省人民医院",
    "青海大学附属医院",
    "青海省妇女儿童医院",
    "青海红十字医院",
    "西宁市第一人民医院",
    "青海省心脑血管病专科医院",
    "青海省第五人民医院",
];
const EMPLOYERS: [&str; 10] = [
    "青海盐湖工业股份有限公司",
    "西部矿业股份有限公司",
    "国网青海省电力公司",
    "西宁特殊钢股份有限公司",
    "中国石油天然气股份有限公司青海油田分公司",
    "青海银行股份有限公司",
    "青海省交通建设管理有限公司",
    "青海互助天佑德青稞酒股份有限公司",
    "青海春天药用资源科技股份有限公司",
    "青海华鼎实业股份有限公司",
];
const SHOPS: [&str; 6] = ["便利店", "清真餐馆", "汽车修理部", "牛羊肉店", "五金建材店", "农家乐"];
const FLEXIBLE: [&str; 4] =
    ["灵活就业（网约配送）", "灵活就业（家政服务）", "灵活就业（建筑零工）", "灵活就业（网约车）"];
const WELFARE: [&str; 3] = ["公益性岗位（草原管护员）", "公益性岗位（护林员）", "公益性岗位（村级保洁员）"];
const RISKS: [&str; 11] = [
    "因病",
    "因残",
    "因学",
    "因灾",
    "因意外事故",
    "缺劳力",
    "务工就业不稳",
    "产业项目失败",
    "住房出现安全问题",
    "饮水安全问题",
    "其他",
];
const CATEGORY_LABELS: [&str; 7] = ["视力残疾", "听力残疾", "言语残疾", "肢体残疾", "智力残疾", "精神残疾", "多重残疾"];
const GRADE_LABELS: [&str; 4] = ["一级", "二级", "三级", "四级"];

fn days(n: i64) -> Duration {
    Duration::days(n)
}

impl Generator {
    fn new(seed: u64, total: u64, as_of: NaiveDate, world: World, exports: Exports) -> Generator {
        // One case of each kind per `interval` people: at least a dozen of each even in small runs.
        let interval = (total / 15).clamp(40, 600);
        let kinds = AnomalyKind::ALL.len() as u64;
        let mut next = [0; AnomalyKind::ALL.len()];
        for (k, n) in next.iter_mut().enumerate() {
            *n = interval * (k as u64 + 1) / (kinds + 1);
        }
        Generator {
            rng: Rng::new(seed),
            world,
            exports,
            as_of,
            people: 0,
            total,
            row: Row::default(),
            junk: Row::default(),
            planter: Planter {
                interval,
                next,
                variants: [0; AnomalyKind::ALL.len()],
                last: AnomalyKind::ALL.len() - 1,
            },
            anomalies: Vec::new(),
            applicants: Vec::new(),
            applicant_kinds: Vec::new(),
        }
    }

    fn chance(&mut self, per_mille: u64) -> bool {
        self.rng.below(1000) < per_mille
    }

    fn between(&mut self, from: NaiveDate, to: NaiveDate) -> NaiveDate {
        if to <= from {
            return from;
        }
        from + days(self.rng.below((to - from).num_days() as u64 + 1) as i64)
    }

    fn amount(&mut self, from_yuan: u64, to_yuan: u64) -> u64 {
        from_yuan * 100 + self.rng.below((to_yuan - from_yuan) * 100 + 1)
    }

    fn digits(&mut self, prefix: &str, n: usize) -> String {
        let mut s = String::with_capacity(prefix.len() + n);
        s.push_str(prefix);
        for _ in 0..n {
            s.push(char::from(b'0' + self.rng.below(10) as u8));
        }
        s
    }

    fn phone(&mut self) -> String {
        let second = char::from(b'3' + self.rng.below(7) as u8);
        let mut phone = String::from("1");
        phone.push(second);
        self.digits(&phone, 9)
    }

    fn birth_for_age(&mut self, age: u32) -> NaiveDate {
        let year = self.as_of.year() - age as i32;
        let base = NaiveDate::from_ymd_opt(year, self.as_of.month(), self.as_of.day()).unwrap_or(self.as_of);
        base - days(self.rng.below(365) as i64)
    }

    fn age_of(&self, birth: NaiveDate) -> u32 {
        let mut age = self.as_of.year() - birth.year();
        if (self.as_of.month(), self.as_of.day()) < (birth.month(), birth.day()) {
            age -= 1;
        }
        age.max(0) as u32
    }

    /// A new person of `village`'s county.
    fn person(
        &mut self,
        village: usize,
        ethnic: Ethnic,
        family: Option<&str>,
        age: u32,
        male: bool,
        relationship: &'static str,
    ) -> Person {
        let birth = self.birth_for_age(age);
        let county = self.world.villages[village].county;
        let (id, birth) = self.world.new_id(county, birth, male);
        let name = person_name(&mut self.rng, ethnic, family, male);
        let age = self.age_of(birth);
        Person::fresh(id, name, male, ethnic, birth, age, relationship)
    }

    /// The members of a new household.
    fn members(&mut self, village: usize, room: u64) -> Vec<Person> {
        const SIZES: [(u64, u64); 6] = [(1, 15), (2, 22), (3, 22), (4, 20), (5, 13), (6, 8)];
        let mut draw = self.rng.below(100);
        let mut size = 1;
        for (s, weight) in SIZES {
            if draw < weight {
                size = s;
                break;
            }
            draw -= weight;
        }
        let size = size.min(room.max(1)) as usize;
        let ethnic = Ethnic::draw(&mut self.rng);
        let family = family_name(&mut self.rng, ethnic);
        let head_age =
            if size == 1 && self.chance(500) { 60 + self.rng.below(31) as u32 } else { 22 + self.rng.below(60) as u32 };
        let head_male = if size == 1 { self.chance(500) } else { self.chance(750) };
        let mut members = Vec::with_capacity(size);
        let head_family = if head_male { family } else { family_name(&mut self.rng, ethnic) };
        members.push(self.person(village, ethnic, head_family, head_age, head_male, RELATIONSHIP_HEAD));
        if size >= 2 && self.chance(900) {
            let age = (head_age as i64 - 5 + self.rng.below(11) as i64).max(20) as u32;
            let spouse_family = if head_male { family_name(&mut self.rng, ethnic) } else { family };
            members.push(self.person(village, ethnic, spouse_family, age, !head_male, RELATIONSHIP_SPOUSE));
        }
        // A parent of the head in some larger, younger households.
        if members.len() < size && size >= 4 && head_age <= 55 && self.chance(400) {
            let age = (head_age + 22 + self.rng.below(10) as u32).min(96);
            let male = self.chance(400);
            let relationship = if male { "父亲" } else { "母亲" };
            let parent_family = if male { head_family } else { family_name(&mut self.rng, ethnic) };
            members.push(self.person(village, ethnic, parent_family, age, male, relationship));
        }
        let grandchildren = head_age >= 58 && self.chance(500);
        while members.len() < size {
            let male = self.chance(510);
            let (age, relationship) = if grandchildren && members.len() >= 3 {
                (self.rng.below(u64::from((head_age - 40).min(16))) as u32, if male { "孙子" } else { "孙女" })
            } else {
                let oldest = head_age.saturating_sub(20);
                let youngest = head_age.saturating_sub(40);
                let age = youngest + self.rng.below(u64::from(oldest - youngest + 1)) as u32;
                (age, if male { "子" } else { "女" })
            };
            members.push(self.person(village, ethnic, family, age, male, relationship));
        }
        members
    }

    /// Deaths and moves.
    fn fates(&mut self, members: &mut [Person]) {
        for p in members.iter_mut() {
            let per_mille = match p.age {
                0..=39 => 3,
                40..=59 => 10,
                60..=69 => 40,
                70..=79 => 90,
                _ => 200,
            };
            if self.chance(per_mille) {
                self.kill(p, None, self.as_of - days(1));
            } else if self.chance(if (18..=45).contains(&p.age) { 25 } else { 5 }) {
                let date = self.between(self.as_of - days(1825), self.as_of - days(1));
                p.fate = Fate::MovedOut(date.max(p.birth));
            }
        }
    }

    /// Marks `p` dead on a day no later than `latest`; `variant` forces how
    /// the death is recorded (0: the register only, 1: a certificate only,
    /// 2: both).
    fn kill(&mut self, p: &mut Person, variant: Option<u32>, latest: NaiveDate) {
        let earliest = (self.as_of - days(1095)).max(p.birth + days(1)).min(latest);
        let date = self.between(earliest, latest);
        let (registered, certificate) = match variant {
            Some(0) => (true, false),
            Some(1) => (false, true),
            Some(_) => (true, true),
            None => match self.rng.below(100) {
                0..=79 => (true, true),
                80..=92 => (true, false),
                _ => (false, true),
            },
        };
        let cancelled = (date + days(10 + self.rng.below(80) as i64)).min(self.as_of);
        let cause = self.rng.pick(&ICD_DEATH).copied().unwrap_or("I64");
        let place = match self.rng.below(10) {
            0..=5 => "医疗卫生机构",
            6..=8 => "家中",
            _ => "其他场所",
        };
        p.fate = Fate::Dead;
        p.death = Some(Death { date, registered, cancelled, certificate, cause, place });
    }

    /// One household, generated and written.
    fn household(&mut self) -> Result<()> {
        let village = self.rng.below(self.world.villages.len() as u64) as usize;
        let county = self.world.villages[village].county;
        let urban = self.world.villages[village].urban;
        let mut members = self.members(village, self.total - self.people);
        self.fates(&mut members);
        let plant = self.choose_plant(&members);
        self.people += members.len() as u64;

        let plant_kind = plant.map(|p| p.kind);
        if let Some(plant) = plant {
            if plant.kind == AnomalyKind::DibaoDeceased {
                self.kill(&mut members[plant.target], Some(plant.variant % 3), self.as_of - days(1));
            }
            if plant.kind == AnomalyKind::AidAfterDeath {
                // Long enough ago that the register knows before anything is paid.
                self.kill(&mut members[plant.target], Some(plant.variant / 2 % 3), self.as_of - days(200));
            }
            if plant.kind == AnomalyKind::MissedAssistance {
                for p in members.iter_mut().filter(|p| p.present() && p.alive()) {
                    p.planted = Some(AnomalyKind::MissedAssistance);
                }
            } else {
                members[plant.target].planted = Some(plant.kind);
            }
        }
        let missed = plant_kind == Some(AnomalyKind::MissedAssistance);
        let missed_variant = plant.map_or(0, |p| if urban { 0 } else { p.variant % 3 });
        let dibao_plant = matches!(
            plant_kind,
            Some(
                AnomalyKind::DibaoDeceased
                    | AnomalyKind::DibaoEmployeePension
                    | AnomalyKind::DibaoEmployed
                    | AnomalyKind::DibaoTwoCounties
                    | AnomalyKind::TekunAndDibao
            )
        );

        // 特困: elderly living alone, with no one to support them.
        if members.len() == 1
            && members[0].present()
            && members[0].age >= 60
            && !dibao_plant
            && !missed
            && self.chance(150)
        {
            let t = self.tekun(&members[0], urban);
            members[0].tekun = Some(t);
        }
        let tekun_now = members.iter().any(|p| p.tekun.as_ref().is_some_and(|t| t.end.is_none()));

        // 建档立卡 (rural only) and 防返贫监测.
        let mut poor = None;
        if !urban && (self.chance(100) || (missed && missed_variant >= 1)) {
            let registered = 2014 + self.rng.below(6) as i64;
            // Planted 漏保 cases are poor and not lifted; otherwise a few percent are not.
            let forced = missed && missed_variant >= 1;
            let lifted = if forced { false } else { !self.chance(30) };
            let lifted_year = lifted.then(|| (registered.max(2016) + self.rng.below(5) as i64).min(2020));
            poor = Some(Poor { id: self.world.poor_household_id(village), lifted, registered, lifted_year });
        }
        let monitored = (missed && missed_variant != 1)
            || match &poor {
                Some(p) if p.lifted => self.chance(50),
                Some(_) => false,
                None => self.chance(4),
            };
        let monitor = if monitored {
            let eliminated = !missed && self.chance(600);
            let kind = if poor.is_some() {
                "脱贫不稳定户"
            } else if self.chance(500) {
                "边缘易致贫户"
            } else {
                "突发严重困难户"
            };
            let household_id = match &poor {
                Some(p) => p.id.clone(),
                None => self.world.poor_household_id(village),
            };
            let risk = self.rng.pick(&RISKS).copied().unwrap_or("其他");
            let identified = self.between(NaiveDate::from_ymd_opt(2021, 3, 1).unwrap_or(self.as_of), self.as_of);
            Some(Monitor { household_id, kind, risk, eliminated, identified })
        } else {
            None
        };
        let needs_support = poor.as_ref().is_some_and(|p| !p.lifted) || monitor.as_ref().is_some_and(|m| !m.eliminated);

        // 低保.
        let has_present = members.iter().any(Person::present);
        // 特困 support and 低保 are exclusive: only a planted case has both.
        let current = has_present
            && !missed
            && (dibao_plant || (!tekun_now && (needs_support || self.chance(if urban { 12 } else { 24 }))));
        let ended = has_present && !current && !missed && !tekun_now && self.chance(10);
        let mut dibao = None;
        if current || ended {
            dibao = Some(self.dibao(&mut members, village, current, plant));
        }

        for p in members.iter_mut() {
            p.poor_row = poor.is_some() && p.present() && p.alive();
            p.monitor_row = monitor.is_some() && p.present() && p.alive();
        }
        for p in members.iter_mut() {
            self.programmes(p, county, urban);
        }
        if let Some(plant) = plant {
            self.apply_plant(&mut members[plant.target], plant, village, county);
        }

        let door = 1 + self.rng.below(300);
        let number = self.world.household_number(county);
        let household = Household { village, number, door, members, dibao, poor, monitor };
        self.check(&household)?;
        self.applicant(&household, plant_kind);
        self.write(&household)
    }
}

fn village_urban(world: &World, village: usize) -> bool {
    world.villages.get(village).is_some_and(|v: &Village| v.urban)
}

#[cfg(test)]
mod tests {
    use super::write::month_back;
    use super::*;

    #[test]
    fn months_back() {
        let as_of = NaiveDate::from_ymd_opt(2026, 2, 28).unwrap();
        assert_eq!(month_back(as_of, 0), NaiveDate::from_ymd_opt(2026, 2, 1).unwrap());
        assert_eq!(month_back(as_of, 2), NaiveDate::from_ymd_opt(2025, 12, 1).unwrap());
    }
}
