//! The fourteen datasets' specifications: file, format, headers, the
//! mapping steps of their jobs and the malformed rows planted in each.

use super::*;

const SHARED: &str = "conditional";

pub(super) static SPECS: [Spec; 14] = [
    Spec {
        id: "gongan.population",
        title: "户籍人口",
        owner: "省公安厅人口管理总队",
        sharing: SHARED,
        update_cycle: "daily",
        format: Format::Csv(Charset::Gbk),
        file: "户籍人口",
        columns: &[
            c("公民身份号码", "id_number"),
            c("姓名", "name"),
            c("性别", "sex"),
            c("民族", "ethnic_group"),
            c("出生日期", "birth_date"),
            c("户号", "household_number"),
            c("与户主关系", "relationship"),
            c("行政区划代码", "division_code"),
            c("住址", "address"),
            c("人员状态", "status"),
            c("变动日期", "status_date"),
        ],
        id_column: 0,
        division_column: 7,
        steps: r#"
[[mapping.columns]]
name = "id_number"
normalize = "id_number"

[[mapping.columns]]
name = "sex"
code_table = "sex"

[[mapping.columns]]
name = "ethnic_group"
code_table = "ethnic_group"

[[mapping.columns]]
name = "birth_date"
cast = "date"
date_format = "%Y%m%d"

[[mapping.columns]]
name = "relationship"
code_table = "family_relationship"

[[mapping.columns]]
name = "status"
values = { "正常" = "normal", "死亡" = "deceased", "迁出" = "moved_out" }

[[mapping.columns]]
name = "status_date"
cast = "date"
date_format = "%Y%m%d"
"#,
        junk: &[
            Junk::CheckChar,
            Junk::Division,
            Junk::Date(4, "19850230"),
            Junk::CodeTable(2, "不详"),
            Junk::Enum(9, "注销"),
            Junk::Foreign,
            Junk::Ragged,
            Junk::Duplicate,
        ],
    },
    Spec {
        id: "minzheng.dibao_households",
        title: "最低生活保障家庭",
        owner: "省民政厅社会救助处",
        sharing: SHARED,
        update_cycle: "monthly",
        format: Format::Xlsx("低保户"),
        file: WORKBOOK,
        columns: &[
            c("低保证编号", "household_id"),
            c("户主身份证号", "head_id_number"),
            c("户主姓名", "head_name"),
            c("行政区划代码", "division_code"),
            c("保障类别", "category"),
            c("分类施保类别", "household_class"),
            int("保障人口", "household_size"),
            c("月保障金额", "monthly_amount"),
            c("银行账号", "bank_account"),
            c("联系电话", "phone"),
            c("保障起始日期", "start_date"),
            c("保障终止日期", "end_date"),
            c("保障状态", "status"),
            c("备注", ""),
        ],
        id_column: 1,
        division_column: 3,
        steps: r#"
[[mapping.columns]]
name = "category"
code_table = "assistance_category"

[[mapping.columns]]
name = "household_class"
code_table = "assistance_category"

[[mapping.columns]]
name = "status"
values = { "正常保障" = "active", "暂停保障" = "suspended", "停止保障" = "ended" }
"#,
        junk: &[
            Junk::CheckChar,
            Junk::Division,
            Junk::Date(10, "2021-02-30"),
            Junk::Enum(12, "待审核"),
            Junk::Duplicate,
        ],
    },
    Spec {
        id: "minzheng.dibao_members",
        title: "最低生活保障家庭成员",
        owner: "省民政厅社会救助处",
        sharing: SHARED,
        update_cycle: "monthly",
        format: Format::Xlsx("低保成员"),
        file: WORKBOOK,
        columns: &[
            c("低保证编号", "household_id"),
            // Under a merged group title: the sheet's header is two rows.
            c("家庭成员_身份证号", "id_number"),
            c("家庭成员_姓名", "name"),
            c("家庭成员_性别", "sex"),
            c("家庭成员_与户主关系", "relationship"),
            c("行政区划代码", "division_code"),
            c("个人保障金额", "monthly_amount"),
            c("享受起始日期", "start_date"),
            c("享受终止日期", "end_date"),
        ],
        id_column: 1,
        division_column: 5,
        steps: r#"
[[mapping.columns]]
name = "sex"
code_table = "sex"

[[mapping.columns]]
name = "relationship"
code_table = "family_relationship"
"#,
        junk: &[
            Junk::CheckChar,
            Junk::Division,
            Junk::Date(7, "2021-02-30"),
            Junk::CodeTable(3, "不详"),
            Junk::Duplicate,
        ],
    },
    Spec {
        id: "minzheng.tekun",
        title: "特困人员救助供养",
        owner: "省民政厅社会救助处",
        sharing: SHARED,
        update_cycle: "monthly",
        format: Format::Csv(Charset::Utf8Bom),
        file: "特困供养人员.csv",
        columns: &[
            c("身份证号码", "id_number"),
            c("姓名", "name"),
            c("性别", "sex"),
            c("行政区划代码", "division_code"),
            c("供养类别", "category"),
            c("供养方式", "support_mode"),
            c("生活自理能力", "self_care"),
            c("月供养金额", "monthly_amount"),
            c("供养起始日期", "start_date"),
            c("供养终止日期", "end_date"),
        ],
        id_column: 0,
        division_column: 3,
        steps: r#"
[[mapping.columns]]
name = "sex"
code_table = "sex"

[[mapping.columns]]
name = "category"
code_table = "assistance_category"

[[mapping.columns]]
name = "support_mode"
values = { "集中供养" = "centralized", "分散供养" = "dispersed" }

[[mapping.columns]]
name = "self_care"
values = { "完全自理" = "full", "部分自理" = "partial", "完全不能自理" = "none" }

[[mapping.columns]]
name = "monthly_amount"
cast = "number"

[[mapping.columns]]
name = "start_date"
cast = "date"
date_format = "%Y年%m月%d日"

[[mapping.columns]]
name = "end_date"
cast = "date"
date_format = "%Y年%m月%d日"
"#,
        junk: &[
            Junk::CheckChar,
            Junk::Division,
            Junk::Date(8, "2021年2月30日"),
            Junk::CodeTable(2, "不详"),
            Junk::Enum(5, "居家供养"),
            Junk::Foreign,
            Junk::Ragged,
            Junk::Duplicate,
        ],
    },
    Spec {
        id: "minzheng.temporary_aid",
        title: "临时救助",
        owner: "省民政厅社会救助处",
        sharing: SHARED,
        update_cycle: "monthly",
        format: Format::Csv(Charset::Utf8Bom),
        file: "临时救助.csv",
        columns: &[
            c("救助编号", "aid_id"),
            c("身份证号码", "id_number"),
            c("姓名", "name"),
            c("行政区划代码", "division_code"),
            c("救助类型", "aid_type"),
            c("救助原因", "reason"),
            c("救助金额", "amount"),
            c("救助日期", "aid_date"),
        ],
        id_column: 1,
        division_column: 3,
        steps: r#"
[[mapping.columns]]
name = "aid_type"
values = { "急难型" = "emergency", "支出型" = "transitional" }

[[mapping.columns]]
name = "reason"
values = { "因病" = "illness", "因灾" = "disaster", "意外事故" = "accident", "因学" = "education", "其他" = "other" }

[[mapping.columns]]
name = "amount"
cast = "number"

[[mapping.columns]]
name = "aid_date"
cast = "date"
date_format = "%Y/%m/%d"
"#,
        junk: &[
            Junk::CheckChar,
            Junk::Division,
            Junk::Date(7, "2025/02/30"),
            Junk::Enum(5, "其它原因"),
            Junk::Foreign,
            Junk::Ragged,
            Junk::Duplicate,
        ],
    },
    Spec {
        id: "renshe.social_insurance",
        title: "社会保险参保信息",
        owner: "省人力资源和社会保障厅",
        sharing: SHARED,
        update_cycle: "monthly",
        format: Format::Ndjson,
        file: "参保信息.ndjson",
        columns: &[
            c("idCard", "id_number"),
            c("personName", "name"),
            c("areaCode", "division_code"),
            c("insuranceType", "insurance_type"),
            c("insuredStatus", "status"),
            c("payBase", "monthly_base"),
            c("beginDate", "start_date"),
            c("endDate", "end_date"),
        ],
        id_column: 0,
        division_column: 2,
        steps: r#"
# The export sends the 险种 code as a JSON number; the standard's column is text.
[[mapping.columns]]
name = "insurance_type"
cast = "string"
code_table = "insurance_type"

[[mapping.columns]]
name = "status"
code_table = "insurance_status"
"#,
        junk: &[
            Junk::CheckChar,
            Junk::Division,
            Junk::Date(6, "2021-02-30"),
            Junk::CodeTable(3, "999"),
            Junk::Duplicate,
        ],
    },
    Spec {
        id: "renshe.pension_payments",
        title: "养老金发放",
        owner: "省人力资源和社会保障厅",
        sharing: SHARED,
        update_cycle: "monthly",
        format: Format::Ndjson,
        file: "养老金发放.ndjson",
        columns: &[
            c("paymentNo", "payment_id"),
            c("idCard", "id_number"),
            c("personName", "name"),
            c("areaCode", "division_code"),
            c("insuranceType", "insurance_type"),
            c("payPeriod", "period"),
            c("payAmount", "amount"),
            c("payDate", "paid_date"),
            c("bankAccount", "bank_account"),
        ],
        id_column: 1,
        division_column: 3,
        steps: r#"
# The export sends the 险种 code as a JSON number; the standard's column is text.
[[mapping.columns]]
name = "insurance_type"
cast = "string"
code_table = "insurance_type"
"#,
        junk: &[
            Junk::CheckChar,
            Junk::Division,
            Junk::Date(7, "2026-02-30"),
            // 失业保险 is a code of the table, but pensions are paid by 110/120/170 only.
            Junk::Enum(4, "210"),
            Junk::Duplicate,
        ],
    },
    Spec {
        id: "renshe.employment",
        title: "就业登记",
        owner: "省人力资源和社会保障厅",
        sharing: SHARED,
        update_cycle: "monthly",
        format: Format::Ndjson,
        file: "就业登记.ndjson",
        columns: &[
            c("registrationNo", "registration_id"),
            c("idCard", "id_number"),
            c("personName", "name"),
            c("areaCode", "division_code"),
            c("employerName", "employer"),
            c("employmentForm", "employment_type"),
            c("startDate", "start_date"),
            c("endDate", "end_date"),
        ],
        id_column: 1,
        division_column: 3,
        steps: r#"
[[mapping.columns]]
name = "employment_type"
values = { "单位就业" = "employee", "个体经营" = "self_employed", "灵活就业" = "flexible", "公益性岗位" = "public_welfare" }
"#,
        junk: &[
            Junk::CheckChar,
            Junk::Division,
            Junk::Date(6, "2021-02-30"),
            Junk::Enum(5, "自主创业"),
            Junk::Duplicate,
        ],
    },
    Spec {
        id: "weijian.death_certificates",
        title: "居民死亡医学证明",
        owner: "省卫生健康委员会",
        sharing: SHARED,
        update_cycle: "daily",
        format: Format::JsonArray,
        file: "死亡医学证明.json",
        columns: &[
            c("certificateNo", "certificate_number"),
            c("idNumber", "id_number"),
            c("name", "name"),
            c("gender", "sex"),
            c("deathTime", "death_date"),
            c("residenceCode", "division_code"),
            c("underlyingCause", "cause_icd10"),
            c("deathPlace", "place"),
        ],
        id_column: 1,
        division_column: 5,
        steps: r#"
[[mapping.columns]]
name = "sex"
code_table = "sex"

[[mapping.columns]]
name = "death_date"
cast = "date"

[[mapping.columns]]
name = "place"
values = { "医疗卫生机构" = "hospital", "家中" = "home", "其他场所" = "other" }
"#,
        junk: &[
            Junk::CheckChar,
            Junk::Division,
            Junk::Date(4, "2025-02-30 08:00:00"),
            Junk::CodeTable(3, "不详"),
            Junk::Enum(7, "途中"),
            Junk::Duplicate,
        ],
    },
    Spec {
        id: "weijian.serious_illness",
        title: "大病住院费用",
        owner: "省卫生健康委员会",
        sharing: SHARED,
        update_cycle: "weekly",
        format: Format::Csv(Charset::Gb18030),
        file: "大病住院费用.csv",
        columns: &[
            c("住院流水号", "record_id"),
            c("身份证号", "id_number"),
            c("姓名", "name"),
            c("参保地区划", "division_code"),
            c("医疗机构名称", "hospital"),
            c("主要诊断编码", "diagnosis_icd10"),
            c("入院日期", "admission_date"),
            c("出院日期", "discharge_date"),
            c("医疗总费用", "total_cost"),
            c("基本医保支付", "insurance_paid"),
            c("个人自付", "out_of_pocket"),
        ],
        id_column: 1,
        division_column: 3,
        steps: r#"
# Hospital records carry the 6-digit county code of the insured's county.
[[mapping.columns]]
name = "division_code"
normalize = "division_code"

[[mapping.columns]]
name = "admission_date"
cast = "date"

[[mapping.columns]]
name = "discharge_date"
cast = "date"
"#,
        junk: &[
            Junk::CheckChar,
            Junk::Division,
            Junk::Date(6, "2025-02-30"),
            Junk::Foreign,
            Junk::Ragged,
            Junk::Duplicate,
        ],
    },
    Spec {
        id: "canlian.disability_certificates",
        title: "残疾人证",
        owner: "省残疾人联合会",
        sharing: SHARED,
        update_cycle: "monthly",
        format: Format::Csv(Charset::Gbk),
        file: "残疾人证.csv",
        columns: &[
            c("残疾人证号", "certificate_number"),
            c("身份证号", "id_number"),
            c("姓名", "name"),
            c("性别", "sex"),
            c("行政区划代码", "division_code"),
            c("残疾类别", "category"),
            c("残疾等级", "grade"),
            c("发证日期", "issue_date"),
            c("证件状态", "status"),
        ],
        id_column: 1,
        division_column: 4,
        steps: r#"
[[mapping.columns]]
name = "sex"
code_table = "sex"

[[mapping.columns]]
name = "category"
code_table = "disability_category"

[[mapping.columns]]
name = "grade"
code_table = "disability_grade"

[[mapping.columns]]
name = "issue_date"
cast = "date"
date_format = "%Y.%m.%d"

[[mapping.columns]]
name = "status"
values = { "有效" = "valid", "过期" = "expired", "注销" = "cancelled" }
"#,
        junk: &[
            Junk::CheckChar,
            Junk::Division,
            Junk::Date(7, "2019.02.30"),
            Junk::CodeTable(6, "五级"),
            Junk::Enum(8, "挂失"),
            Junk::Foreign,
            Junk::Ragged,
            Junk::Duplicate,
        ],
    },
    Spec {
        id: "canlian.disability_subsidies",
        title: "残疾人两项补贴",
        owner: "省残疾人联合会",
        sharing: SHARED,
        update_cycle: "monthly",
        format: Format::Csv(Charset::Gbk),
        file: "两项补贴.csv",
        columns: &[
            c("身份证号", "id_number"),
            c("姓名", "name"),
            c("行政区划代码", "division_code"),
            c("补贴类型", "subsidy_type"),
            c("月补贴金额", "monthly_amount"),
            c("开始发放日期", "start_date"),
            c("停发日期", "end_date"),
        ],
        id_column: 0,
        division_column: 2,
        steps: r#"
[[mapping.columns]]
name = "subsidy_type"
values = { "困难残疾人生活补贴" = "living", "重度残疾人护理补贴" = "care" }

[[mapping.columns]]
name = "start_date"
cast = "date"
date_format = "%Y.%m.%d"

[[mapping.columns]]
name = "end_date"
cast = "date"
date_format = "%Y.%m.%d"
"#,
        junk: &[
            Junk::CheckChar,
            Junk::Division,
            Junk::Date(5, "2020.02.30"),
            Junk::Enum(3, "康复补贴"),
            Junk::Foreign,
            Junk::Ragged,
            Junk::Duplicate,
        ],
    },
    Spec {
        id: "xiangcun.registered_poor",
        title: "建档立卡贫困人口",
        owner: "省乡村振兴局",
        sharing: "unconditional",
        update_cycle: "monthly",
        format: Format::Parquet,
        file: "建档立卡人口.parquet",
        columns: &[
            c("证件号码", "id_number"),
            c("姓名", "name"),
            c("户编号", "household_id"),
            c("与户主关系", "relationship"),
            c("行政区划代码", "division_code"),
            c("脱贫状态", "poverty_status"),
            int("识别年度", "registered_year"),
            int("脱贫年度", "lifted_year"),
        ],
        id_column: 0,
        division_column: 4,
        steps: r#"
[[mapping.columns]]
name = "relationship"
code_table = "family_relationship"

[[mapping.columns]]
name = "poverty_status"
values = { "已脱贫" = "lifted", "未脱贫" = "not_lifted" }
"#,
        junk: &[Junk::CheckChar, Junk::Division, Junk::CodeTable(3, "朋友"), Junk::Enum(5, "返贫"), Junk::Duplicate],
    },
    Spec {
        id: "xiangcun.monitoring",
        title: "防返贫监测对象",
        owner: "省乡村振兴局",
        sharing: SHARED,
        update_cycle: "monthly",
        format: Format::Parquet,
        file: "防返贫监测对象.parquet",
        columns: &[
            c("证件号码", "id_number"),
            c("姓名", "name"),
            c("户编号", "household_id"),
            c("行政区划代码", "division_code"),
            c("监测对象类别", "monitor_type"),
            c("主要风险类型", "risk_type"),
            c("风险是否消除", "risk_eliminated"),
            c("识别时间", "identified_date"),
        ],
        id_column: 0,
        division_column: 3,
        steps: r#"
[[mapping.columns]]
name = "monitor_type"
values = { "脱贫不稳定户" = "unstable_lifted", "边缘易致贫户" = "marginal", "突发严重困难户" = "sudden_hardship" }

[[mapping.columns]]
name = "risk_type"
code_table = "monitoring_risk"

[[mapping.columns]]
name = "risk_eliminated"
values = { "是" = "yes", "否" = "no" }

[[mapping.columns]]
name = "identified_date"
cast = "date"
date_format = "%Y%m%d"
"#,
        junk: &[
            Junk::CheckChar,
            Junk::Division,
            Junk::Date(7, "20230230"),
            Junk::CodeTable(5, "因懒"),
            Junk::Enum(6, "待定"),
            Junk::Duplicate,
        ],
    },
];
