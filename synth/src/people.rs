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
//! 4. checks every person against the six anomaly queries: a planted person
//!    must match their kind and nothing else, everyone else nothing — the
//!    ground truth's anomalies are these findings;
//! 5. writes every row, with a planted malformed row of a throw-away person
//!    now and then ([`Exports::junk_due`]).
//!
//! Rules that keep the data free of accidental anomalies: a current 低保
//! member is alive, has no employee pension in status 1/4 and no open
//! employment, and is a member of one household only; every valid grade 1/2
//! certificate holder has a care subsidy.

use chrono::{Datelike, Duration, NaiveDate};
use civlink_standards::rng::Rng;

use crate::datasets::{Ds, Exports};
use crate::rows::Row;
use crate::text::{DateStyle, Ethnic, family_name, person_name, push_date, push_number};
use crate::truth::{Anomaly, AnomalyKind, GroundTruth};
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
    let datasets = g.exports.finish()?;
    let truth = GroundTruth { seed: options.seed, scale: options.scale, people, as_of, datasets, anomalies };
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
    next: [u64; 6],
    variants: [u32; 6],
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
        let mut next = [0; 6];
        for (k, n) in next.iter_mut().enumerate() {
            *n = interval * (k as u64 + 1) / 7;
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
            planter: Planter { interval, next, variants: [0; 6], last: 5 },
            anomalies: Vec::new(),
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
                self.kill(p, None);
            } else if self.chance(if (18..=45).contains(&p.age) { 25 } else { 5 }) {
                let date = self.between(self.as_of - days(1825), self.as_of - days(1));
                p.fate = Fate::MovedOut(date.max(p.birth));
            }
        }
    }

    /// Marks `p` dead; `variant` forces how the death is recorded (0: the
    /// register only, 1: a certificate only, 2: both).
    fn kill(&mut self, p: &mut Person, variant: Option<u32>) {
        let earliest = (self.as_of - days(1095)).max(p.birth + days(1));
        let date = self.between(earliest, self.as_of - days(1));
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

    /// The anomaly to plant in this household, if one is due and fits.
    fn choose_plant(&mut self, members: &[Person]) -> Option<Plant> {
        let present_alive = |p: &Person| p.present() && p.alive();
        for offset in 1..=6 {
            let k = (self.planter.last + offset) % 6;
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
                self.kill(&mut members[plant.target], Some(plant.variant % 3));
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
        let current = has_present
            && !missed
            && (dibao_plant || (needs_support && !tekun_now) || self.chance(if urban { 12 } else { 24 }));
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
        self.write(&household)
    }

    fn tekun(&mut self, p: &Person, urban: bool) -> Tekun {
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
    fn dibao(&mut self, members: &mut [Person], village: usize, current: bool, plant: Option<Plant>) -> DibaoHousehold {
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
    fn programmes(&mut self, p: &mut Person, county: usize, urban: bool) {
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

    fn employer(&mut self, kind: Work, county: usize, name: &str) -> String {
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

    fn disability(&mut self, p: &mut Person, dibao_now: bool) {
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

    fn illnesses(&mut self, p: &mut Person, county: usize) {
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

    /// What a planted case needs beyond the household-level changes.
    fn apply_plant(&mut self, p: &mut Person, plant: Plant, village: usize, county: usize) {
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
            AnomalyKind::DibaoDeceased | AnomalyKind::MissedAssistance => {}
        }
    }

    /// The findings of the six anomaly queries for one person, with the
    /// division codes of the rows each depends on.
    fn findings(&self, p: &Person, household: &Household) -> Vec<(AnomalyKind, Vec<u64>, Vec<u64>)> {
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
        let mut found = Vec::new();
        let with_home = |codes: &[u64]| {
            let mut all = codes.to_vec();
            all.push(home);
            all
        };
        if current && p.death.as_ref().is_some_and(|d| d.registered || d.certificate) {
            found.push((AnomalyKind::DibaoDeceased, with_home(&member_codes), member_codes.clone()));
        }
        if current && p.pension.is_some_and(|i| i.kind == 110 && matches!(i.status, 1 | 4)) {
            found.push((AnomalyKind::DibaoEmployeePension, with_home(&member_codes), member_codes.clone()));
        }
        if current && p.jobs.iter().any(|j| j.end.is_none()) {
            found.push((AnomalyKind::DibaoEmployed, with_home(&member_codes), member_codes.clone()));
        }
        if let Some(g) = &p.ghost
            && home_current
            && self.world.villages[g.village].county != self.world.villages[household.village].county
        {
            found.push((AnomalyKind::DibaoTwoCounties, member_codes.clone(), member_codes.clone()));
        }
        let eligible = (p.monitor_row && household.monitor.as_ref().is_some_and(|m| !m.eliminated))
            || (p.poor_row && household.poor.as_ref().is_some_and(|x| !x.lifted));
        let tekun_now = p.tekun.as_ref().is_some_and(|t| t.end.is_none());
        if eligible && !current && !tekun_now {
            found.push((AnomalyKind::MissedAssistance, vec![home], vec![home]));
        }
        if p.disability.as_ref().is_some_and(|d| d.status == CertStatus::Valid && d.grade <= 2 && d.care.is_none()) {
            found.push((AnomalyKind::DisabledWithoutCareSubsidy, vec![home], vec![home]));
        }
        found
    }

    /// Every member matches exactly what was planted on them; the findings
    /// become the ground truth's anomalies.
    fn check(&mut self, household: &Household) -> Result<()> {
        for (i, p) in household.members.iter().enumerate() {
            let found = self.findings(p, household);
            let kinds: Vec<AnomalyKind> = found.iter().map(|(k, _, _)| *k).collect();
            let expected: Vec<AnomalyKind> = p.planted.into_iter().collect();
            if kinds != expected {
                return Err(Error::Inconsistent {
                    message: format!(
                        "household member {i} ({}) matches {kinds:?}, planted {expected:?}",
                        p.relationship
                    ),
                });
            }
            for (kind, mut codes, mut responsible) in found {
                codes.sort_unstable();
                codes.dedup();
                responsible.sort_unstable();
                responsible.dedup();
                self.anomalies.push(Anomaly {
                    kind,
                    id_number: p.id.clone(),
                    division_codes: codes.iter().map(|c| format!("{c:012}")).collect(),
                    responsible_divisions: responsible.iter().map(|c| format!("{c:012}")).collect(),
                });
            }
        }
        Ok(())
    }

    /// Writes a row from `self.row`, then a planted malformed row if one is due.
    fn emit(&mut self, ds: Ds, code: u64) -> Result<()> {
        self.exports.valid(ds, &self.row, code)?;
        if let Some(junk) = self.exports.junk_due(ds) {
            let code = self.junk_row(ds);
            self.exports.junk(ds, junk, &mut self.junk, code)?;
        }
        Ok(())
    }

    /// Every row about a household.
    fn write(&mut self, h: &Household) -> Result<()> {
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

    fn next_aid_id(&mut self, date: NaiveDate) -> String {
        self.world.serial.aid += 1;
        let mut id = String::from("LS");
        push_date(&mut id, date, DateStyle::Compact);
        push_number(&mut id, self.world.serial.aid % 1_000_000, 6);
        id
    }

    fn next_payment_id(&mut self, month: NaiveDate) -> String {
        self.world.serial.payment += 1;
        let mut id = String::from("YL");
        push_number(&mut id, month.year() as u64, 4);
        push_number(&mut id, u64::from(month.month()), 2);
        push_number(&mut id, self.world.serial.payment % 10_000_000_000, 10);
        id
    }

    fn next_registration_id(&mut self, start: NaiveDate) -> String {
        self.world.serial.registration += 1;
        let mut id = String::from("JY");
        push_number(&mut id, start.year() as u64, 4);
        push_number(&mut id, self.world.serial.registration % 10_000_000_000, 10);
        id
    }

    fn next_certificate_number(&mut self, county: usize) -> String {
        self.world.serial.death += 1;
        let mut id = String::new();
        id.push(char::from(b'A' + (county % 26) as u8));
        push_number(&mut id, self.world.serial.death % 1_000_000_000, 9);
        id
    }

    fn next_illness_id(&mut self, admission: NaiveDate) -> String {
        self.world.serial.illness += 1;
        let mut id = String::from("ZY");
        push_number(&mut id, admission.year() as u64, 4);
        push_number(&mut id, self.world.serial.illness % 10_000_000_000, 10);
        id
    }

    /// A valid, harmless row of a throw-away person in `self.junk`, ready to
    /// be made malformed; returns its division code. The person appears
    /// nowhere else, so no anomaly query can match them.
    fn junk_row(&mut self, ds: Ds) -> u64 {
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

fn village_urban(world: &World, village: usize) -> bool {
    world.villages.get(village).is_some_and(|v: &Village| v.urban)
}

/// The first day of the month `back` months before `as_of`'s.
fn month_back(as_of: NaiveDate, back: u32) -> NaiveDate {
    let months = as_of.year() * 12 + as_of.month0() as i32 - back as i32;
    NaiveDate::from_ymd_opt(months.div_euclid(12), months.rem_euclid(12) as u32 + 1, 1).unwrap_or(as_of)
}

fn fill_population(row: &mut Row, p: &Person, household: &str, village: &str, address: &str) {
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

fn fill_dibao_household(row: &mut Row, d: &DibaoHousehold, head: Who<'_>, village: &str, size: i64, amount: u64) {
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

fn fill_dibao_member(row: &mut Row, household: &str, who: Who<'_>, relationship: &str, village: &str, m: Membership) {
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

fn fill_tekun(row: &mut Row, who: Who<'_>, village: &str, urban: bool, t: &Tekun) {
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

fn fill_aid(row: &mut Row, aid_id: &str, who: Who<'_>, village: &str, a: &Aid) {
    row.text(aid_id);
    row.text(who.id);
    row.text(who.name);
    row.text(village);
    row.text(if a.emergency { "急难型" } else { "支出型" });
    row.text(a.reason);
    row.amount(a.amount, true);
    row.date(a.date, DateStyle::Slash);
}

fn fill_insurance(row: &mut Row, who: Who<'_>, village: &str, i: &Insurance) {
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
fn fill_payment(
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

fn fill_employment(row: &mut Row, registration_id: &str, who: Who<'_>, village: &str, job: &JobRecord) {
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

fn fill_death(row: &mut Row, number: &str, who: Who<'_>, d: &Death, village: &str) {
    row.text(number);
    row.text(who.id);
    row.text(who.name);
    row.text(who.sex());
    row.date(d.date, DateStyle::DateTime);
    row.text(village);
    row.text(d.cause);
    row.text(d.place);
}

fn fill_illness(row: &mut Row, record_id: &str, who: Who<'_>, county6: &str, i: &Illness) {
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

fn fill_certificate(row: &mut Row, who: Who<'_>, village: &str, d: &Disability) {
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

fn fill_subsidy(row: &mut Row, who: Who<'_>, village: &str, living: bool, s: &Subsidy) {
    row.text(who.id);
    row.text(who.name);
    row.text(village);
    row.text(if living { "困难残疾人生活补贴" } else { "重度残疾人护理补贴" });
    row.amount(s.amount, false);
    row.date(s.start, DateStyle::Dot);
    row.opt_date(s.end, DateStyle::Dot);
}

fn fill_poor(row: &mut Row, who: Who<'_>, poor: &Poor, relationship: &str, village: &str) {
    row.text(who.id);
    row.text(who.name);
    row.text(&poor.id);
    row.text(relationship);
    row.text(village);
    row.text(if poor.lifted { "已脱贫" } else { "未脱贫" });
    row.int(poor.registered);
    row.opt_int(poor.lifted_year);
}

fn fill_monitor(row: &mut Row, who: Who<'_>, m: &Monitor, village: &str) {
    row.text(who.id);
    row.text(who.name);
    row.text(&m.household_id);
    row.text(village);
    row.text(m.kind);
    row.text(m.risk);
    row.text(if m.eliminated { "是" } else { "否" });
    row.date(m.identified, DateStyle::Compact);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_back() {
        let as_of = NaiveDate::from_ymd_opt(2026, 2, 28).unwrap();
        assert_eq!(month_back(as_of, 0), NaiveDate::from_ymd_opt(2026, 2, 1).unwrap());
        assert_eq!(month_back(as_of, 2), NaiveDate::from_ymd_opt(2025, 12, 1).unwrap());
    }
}
