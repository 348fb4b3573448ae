//! Names, dates and amounts the way Qinghai's departments write them.
//!
//! Names follow the ethnic make-up of the province (汉 藏 回 土 撒拉 蒙古): Han,
//! Hui, Salar and many Tu names have a family name passed from father to
//! children; Tibetan and Mongolian names do not. Every character is common
//! and encodable in GBK.
//!
//! Dates and amounts are written straight into a row's text buffer without
//! going through `format!` machinery: generation writes millions of them.

use chrono::{Datelike, NaiveDate};
use civlink_standards::rng::Rng;

/// An ethnic group of the generated population.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ethnic {
    Han,
    Tibetan,
    Hui,
    Tu,
    Salar,
    Mongol,
}

/// Shares of Qinghai's population, roughly (per mille).
const ETHNIC_WEIGHTS: [(Ethnic, u64); 6] = [
    (Ethnic::Han, 500),
    (Ethnic::Tibetan, 245),
    (Ethnic::Hui, 150),
    (Ethnic::Tu, 50),
    (Ethnic::Salar, 30),
    (Ethnic::Mongol, 25),
];

impl Ethnic {
    /// A group drawn with the province's weights.
    pub(crate) fn draw(rng: &mut Rng) -> Ethnic {
        let total: u64 = ETHNIC_WEIGHTS.iter().map(|(_, w)| w).sum();
        let mut draw = rng.below(total);
        for (group, weight) in ETHNIC_WEIGHTS {
            if draw < weight {
                return group;
            }
            draw -= weight;
        }
        Ethnic::Han
    }

    /// The label of GB 3304 the household register prints (`汉族`).
    pub(crate) const fn label(self) -> &'static str {
        match self {
            Ethnic::Han => "汉族",
            Ethnic::Tibetan => "藏族",
            Ethnic::Hui => "回族",
            Ethnic::Tu => "土族",
            Ethnic::Salar => "撒拉族",
            Ethnic::Mongol => "蒙古族",
        }
    }

    /// Whether names carry a family name passed down from the father.
    fn has_family_name(self) -> bool {
        matches!(self, Ethnic::Han | Ethnic::Hui | Ethnic::Salar | Ethnic::Tu)
    }
}

const HAN_SURNAMES: [&str; 24] = [
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "朱", "胡", "郭", "何", "高", "林", "罗",
    "郑", "谢", "宋", "唐", "许",
];
const HUI_SURNAMES: [&str; 10] = ["马", "韩", "冶", "沙", "喇", "穆", "白", "丁", "何", "哈"];
const SALAR_SURNAMES: [&str; 4] = ["韩", "马", "沈", "冶"];
const TU_SURNAMES: [&str; 6] = ["李", "祁", "鲁", "吕", "胡", "星"];
const HAN_MALE: [&str; 24] = [
    "建国", "永福", "志刚", "国庆", "德福", "海龙", "文华", "明", "强", "军", "磊", "伟", "涛", "鹏", "浩然", "子轩",
    "宇航", "俊杰", "成林", "振华", "国栋", "晓东", "新民", "天佑",
];
const HAN_FEMALE: [&str; 24] = [
    "秀英", "玉兰", "桂花", "淑珍", "晓燕", "春梅", "丽", "芳", "红", "娟", "婷", "欣怡", "梓涵", "雨萱", "海燕",
    "玉梅", "秀兰", "丽娟", "文静", "慧敏", "佳怡", "雪梅", "金花", "凤英",
];
const HUI_MALE: [&str; 14] = [
    "有福",
    "尕布",
    "哈三",
    "伊斯哈格",
    "尔撒",
    "穆萨",
    "学仁",
    "占祥",
    "福海",
    "国良",
    "成义",
    "海云",
    "明德",
    "永红",
];
const HUI_FEMALE: [&str; 12] =
    ["法图麦", "阿依莎", "麦燕", "秀珍", "桂兰", "海麦", "索菲亚", "玉花", "兰英", "尕燕", "艳梅", "晓霞"];
const TIBETAN_MALE: [&str; 16] = [
    "扎西", "多杰", "才让", "索南", "尼玛", "旦增", "贡保", "更登", "完德", "公保", "南杰", "仁青", "洛桑", "东知",
    "华旦", "吉加",
];
const TIBETAN_FEMALE: [&str; 14] =
    ["卓玛", "拉毛", "措吉", "央金", "德吉", "才措", "拉姆", "卓嘎", "央宗", "吉毛", "当周", "娘毛", "措毛", "卓措"];
const MONGOL_MALE: [&str; 10] =
    ["巴图", "那日苏", "额尔敦", "宝音", "朝鲁", "苏和", "孟和", "达来", "吉日嘎拉", "巴雅尔"];
const MONGOL_FEMALE: [&str; 8] = ["其其格", "斯琴", "乌兰", "萨仁", "娜仁", "高娃", "图雅", "琪琪格"];

fn one(rng: &mut Rng, list: &[&'static str]) -> &'static str {
    rng.pick(list).copied().unwrap_or("明")
}

/// A family name for a new household's father (None for groups without one).
pub(crate) fn family_name(rng: &mut Rng, ethnic: Ethnic) -> Option<&'static str> {
    if !ethnic.has_family_name() {
        return None;
    }
    Some(match ethnic {
        Ethnic::Hui => one(rng, &HUI_SURNAMES),
        Ethnic::Salar => one(rng, &SALAR_SURNAMES),
        // About half the Tu use Tibetan-style names.
        Ethnic::Tu if rng.below(2) == 0 => return None,
        Ethnic::Tu => one(rng, &TU_SURNAMES),
        _ => one(rng, &HAN_SURNAMES),
    })
}

/// A full name: `family` (if any) and a given name fitting the group and sex.
pub(crate) fn person_name(rng: &mut Rng, ethnic: Ethnic, family: Option<&str>, male: bool) -> String {
    let mut name = String::with_capacity(16);
    match ethnic {
        Ethnic::Tibetan | Ethnic::Tu if family.is_none() => {
            // Two Tibetan names are the common form: 才让卓玛, 扎西多杰.
            name.push_str(one(rng, &TIBETAN_MALE));
            if !male || rng.below(3) > 0 {
                name.push_str(one(rng, if male { &TIBETAN_MALE } else { &TIBETAN_FEMALE }));
            }
        }
        Ethnic::Mongol => name.push_str(one(rng, if male { &MONGOL_MALE } else { &MONGOL_FEMALE })),
        _ => {
            name.push_str(family.unwrap_or("王"));
            let given: &[&str] = match (ethnic, male) {
                (Ethnic::Hui | Ethnic::Salar, true) => &HUI_MALE,
                (Ethnic::Hui | Ethnic::Salar, false) => &HUI_FEMALE,
                (_, true) => &HAN_MALE,
                (_, false) => &HAN_FEMALE,
            };
            name.push_str(one(rng, given));
        }
    }
    name
}

/// How a department writes a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DateStyle {
    /// `2021-03-05`
    Iso,
    /// `20210305`
    Compact,
    /// `2021/03/05`
    Slash,
    /// `2021.03.05`
    Dot,
    /// `2021-03-05 14:20:00` (a time of day derived from the date)
    DateTime,
    /// `2021年3月5日`
    Chinese,
}

fn push_digits(buf: &mut String, value: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut v = value;
    let mut n = 0;
    while v > 0 || n == 0 {
        digits[19 - n] = b'0' + (v % 10) as u8;
        v /= 10;
        n += 1;
    }
    let n = n.max(width.min(20));
    // ASCII digits only, so always valid UTF-8.
    buf.push_str(std::str::from_utf8(&digits[20 - n..]).unwrap_or("0"));
}

/// Appends `value` zero-padded to `width` digits.
pub(crate) fn push_number(buf: &mut String, value: u64, width: usize) {
    push_digits(buf, value, width);
}

/// Appends `date` in `style`.
pub(crate) fn push_date(buf: &mut String, date: NaiveDate, style: DateStyle) {
    let (y, m, d) = (date.year().max(0) as u64, u64::from(date.month()), u64::from(date.day()));
    if style == DateStyle::Chinese {
        push_digits(buf, y, 4);
        buf.push('年');
        push_digits(buf, m, 1);
        buf.push('月');
        push_digits(buf, d, 1);
        buf.push('日');
        return;
    }
    let separator = match style {
        DateStyle::Iso | DateStyle::DateTime | DateStyle::Chinese => Some('-'),
        DateStyle::Compact => None,
        DateStyle::Slash => Some('/'),
        DateStyle::Dot => Some('.'),
    };
    push_digits(buf, y, 4);
    if let Some(s) = separator {
        buf.push(s);
    }
    push_digits(buf, m, 2);
    if let Some(s) = separator {
        buf.push(s);
    }
    push_digits(buf, d, 2);
    if style == DateStyle::DateTime {
        // A plausible time of day, fixed by the date so output stays deterministic.
        let minutes = (date.num_days_from_ce().unsigned_abs() as u64 * 37) % (24 * 60);
        buf.push(' ');
        push_digits(buf, minutes / 60, 2);
        buf.push(':');
        push_digits(buf, minutes % 60, 2);
        buf.push_str(":00");
    }
}

/// Appends an amount in cents as `1234.50`, or `1,234.50` with `thousands`.
pub(crate) fn push_amount(buf: &mut String, cents: u64, thousands: bool) {
    let yuan = cents / 100;
    if thousands && yuan >= 1000 {
        let mut groups = Vec::with_capacity(4);
        let mut rest = yuan;
        while rest >= 1000 {
            groups.push(rest % 1000);
            rest /= 1000;
        }
        push_digits(buf, rest, 1);
        for group in groups.iter().rev() {
            buf.push(',');
            push_digits(buf, *group, 3);
        }
    } else {
        push_digits(buf, yuan, 1);
    }
    buf.push('.');
    push_digits(buf, cents % 100, 2);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_amounts() {
        let date = NaiveDate::from_ymd_opt(2021, 3, 5).unwrap();
        let mut s = String::new();
        for style in [DateStyle::Iso, DateStyle::Compact, DateStyle::Slash, DateStyle::Dot] {
            push_date(&mut s, date, style);
            s.push('|');
        }
        push_date(&mut s, date, DateStyle::Chinese);
        assert_eq!(s, "2021-03-05|20210305|2021/03/05|2021.03.05|2021年3月5日");
        let mut t = String::new();
        push_date(&mut t, date, DateStyle::DateTime);
        assert!(t.starts_with("2021-03-05 ") && t.len() == 19, "{t}");
        let mut a = String::new();
        push_amount(&mut a, 123_450, true);
        a.push('|');
        push_amount(&mut a, 123_456_789, true);
        a.push('|');
        push_amount(&mut a, 5, false);
        a.push('|');
        push_amount(&mut a, 123_456_789, false);
        assert_eq!(a, "1,234.50|1,234,567.89|0.05|1234567.89");
        let mut n = String::new();
        push_number(&mut n, 42, 6);
        push_number(&mut n, 0, 1);
        assert_eq!(n, "0000420");
    }

    #[test]
    fn names_fit_and_encode_in_gbk() {
        let mut rng = Rng::new(3);
        for _ in 0..2000 {
            let ethnic = Ethnic::draw(&mut rng);
            let family = family_name(&mut rng, ethnic);
            let male = rng.below(2) == 0;
            let name = person_name(&mut rng, ethnic, family, male);
            assert!((1..=30).contains(&name.chars().count()), "{name}");
            let (_, _, unmappable) = encoding_rs::GBK.encode(&name);
            assert!(!unmappable, "{name}");
            if let Some(f) = family {
                assert!(name.starts_with(f));
            }
        }
    }
}
