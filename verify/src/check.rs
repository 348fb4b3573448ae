//! Checking a rule against the datasets it reads, before it ever runs: the
//! SQL parses and plans against the standards' schemas (empty tables of
//! exactly those columns, with civlink's SQL functions), it is one read-only
//! query, every dataset it names is registered, and every column the rule
//! relies on is in its output. All problems of a rule are reported at once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use civlink_catalog::model::{DatasetId, Department};
use civlink_catalog::store::PolicySnapshot;
use civlink_query::CATALOG;
use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider, MemorySchemaProvider, SchemaProvider};
use datafusion::common::TableReference;
use datafusion::datasource::empty::EmptyTable;
use datafusion::execution::context::SQLOptions;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::error::{Problem, RuleProblems};
use crate::rule::Rule;

/// What a rule is checked against for one dataset.
#[derive(Debug, Clone)]
pub struct DatasetShape {
    /// Its columns, as its standard defines them.
    pub schema: SchemaRef,
    /// Its primary key.
    pub primary_key: Vec<String>,
}

/// A rule that passed every check.
#[derive(Debug, Clone)]
pub struct CheckedRule {
    /// The rule.
    pub rule: Rule,
    /// The datasets its SQL reads, in order of first mention.
    pub datasets: Vec<DatasetId>,
    /// Its output columns.
    pub outputs: Vec<String>,
}

/// The planning context of [`check_rule`]: one empty table per dataset.
pub struct Shapes {
    ctx: SessionContext,
    known: BTreeMap<DatasetId, DatasetShape>,
}

impl Shapes {
    /// A context over `datasets`.
    pub fn new(datasets: BTreeMap<DatasetId, DatasetShape>) -> Shapes {
        let config = SessionConfig::new()
            .with_create_default_catalog_and_schema(false)
            .with_default_catalog_and_schema(CATALOG, Department::Minzheng.code());
        let ctx = SessionContext::new_with_config(config);
        civlink_query::udf::register_all(&ctx);
        let catalog = MemoryCatalogProvider::new();
        let mut schemas: BTreeMap<Department, MemorySchemaProvider> = BTreeMap::new();
        for (id, shape) in &datasets {
            let schema = schemas.entry(id.department).or_default();
            // Registering into a fresh in-memory schema cannot fail, and a repeat cannot occur (map keys).
            let _ = schema.register_table(id.name.clone(), Arc::new(EmptyTable::new(Arc::clone(&shape.schema))));
        }
        for (department, schema) in schemas {
            let _ = catalog.register_schema(department.code(), Arc::new(schema));
        }
        ctx.register_catalog(CATALOG, Arc::new(catalog));
        Shapes { ctx, known: datasets }
    }

    /// A context over every dataset registered in `snapshot` whose standard parses.
    pub fn of_snapshot(snapshot: &PolicySnapshot) -> Shapes {
        let datasets = snapshot
            .datasets()
            .iter()
            .filter_map(|record| {
                let standard = snapshot.standard(record)?;
                let shape =
                    DatasetShape { schema: standard.arrow_schema(), primary_key: record.spec.primary_key.clone() };
                Some((record.spec.id.clone(), shape))
            })
            .collect();
        Shapes::new(datasets)
    }

    /// The shape of a registered dataset.
    pub fn shape(&self, id: &DatasetId) -> Option<&DatasetShape> {
        self.known.get(id)
    }

    /// Plan one read-only query (placeholders `$1`… allowed); the planner's
    /// message when it does not plan.
    pub async fn plan(&self, sql: &str) -> Result<LogicalPlan, String> {
        let state = self.ctx.state();
        let dialect = state.config().options().sql_parser.dialect;
        let statement = state.sql_to_statement(sql, &dialect).map_err(|e| e.message().into_owned())?;
        let plan = state.statement_to_plan(statement).await.map_err(|e| e.message().into_owned())?;
        SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
            .verify_plan(&plan)
            .map_err(|e| e.message().into_owned())?;
        Ok(plan)
    }
}

/// Check `rule` against `shapes` (see the module docs).
pub async fn check_rule(rule: Rule, shapes: &Shapes) -> Result<CheckedRule, RuleProblems> {
    let mut problems = Vec::new();
    let state = shapes.ctx.state();
    let dialect = state.config().options().sql_parser.dialect;
    let statement = match state.sql_to_statement(&rule.sql, &dialect) {
        Ok(statement) => statement,
        Err(e) => return Err(RuleProblems::new(&rule.id, vec![Problem::Sql { message: e.message().into_owned() }])),
    };
    let references = match state.resolve_table_references(&statement) {
        Ok(references) => references,
        Err(e) => return Err(RuleProblems::new(&rule.id, vec![Problem::Sql { message: e.message().into_owned() }])),
    };
    let mut datasets: Vec<DatasetId> = Vec::new();
    for reference in &references {
        match dataset_of(reference) {
            Some(Ok(id)) if shapes.known.contains_key(&id) && !datasets.contains(&id) => datasets.push(id),
            Some(Ok(id)) if shapes.known.contains_key(&id) => {}
            Some(Ok(id)) => problems.push(Problem::UnknownDataset { dataset: id.to_string() }),
            Some(Err(named)) => problems.push(Problem::UnknownDataset { dataset: named }),
            // A CTE's name or information_schema: planning decides.
            None => {}
        }
    }
    if !problems.is_empty() {
        return Err(RuleProblems::new(&rule.id, problems));
    }
    let plan = match state.statement_to_plan(statement).await {
        Ok(plan) => plan,
        Err(e) => return Err(RuleProblems::new(&rule.id, vec![Problem::Sql { message: e.message().into_owned() }])),
    };
    let read_only = !matches!(
        plan,
        LogicalPlan::Ddl(_)
            | LogicalPlan::Dml(_)
            | LogicalPlan::Copy(_)
            | LogicalPlan::Statement(_)
            | LogicalPlan::Analyze(_)
            | LogicalPlan::Explain(_)
            | LogicalPlan::DescribeTable(_)
    ) && SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(&plan)
        .is_ok();
    if !read_only {
        return Err(RuleProblems::new(&rule.id, vec![Problem::NotAQuery]));
    }

    let outputs: Vec<String> = plan.schema().fields().iter().map(|f| f.name().clone()).collect();
    let mut seen = BTreeSet::new();
    for name in &outputs {
        if !seen.insert(name) {
            problems.push(Problem::DuplicateOutput { column: name.clone() });
        }
    }
    let listed = outputs.join(", ");
    let mut reported = BTreeSet::new();
    for (column, field) in rule.required_columns() {
        if !outputs.iter().any(|o| o == column) && reported.insert((column, field)) {
            problems.push(Problem::MissingColumn { field, column: column.to_owned(), outputs: listed.clone() });
        }
    }
    for rests_on in &rule.rests_on {
        let dataset = rests_on.dataset.to_string();
        let Some(shape) = shapes.known.get(&rests_on.dataset) else {
            problems.push(Problem::UnknownDataset { dataset });
            continue;
        };
        if !datasets.contains(&rests_on.dataset) {
            problems.push(Problem::NotRead { dataset: dataset.clone() });
        }
        let primary_key = shape.primary_key.join(", ");
        for column in rests_on.key.keys() {
            if !shape.primary_key.contains(column) {
                problems.push(Problem::NotPrimaryKey {
                    dataset: dataset.clone(),
                    column: column.clone(),
                    primary_key: primary_key.clone(),
                });
            }
        }
        let missing: Vec<&str> =
            shape.primary_key.iter().filter(|c| !rests_on.key.contains_key(*c)).map(String::as_str).collect();
        if !missing.is_empty() {
            problems.push(Problem::PartialKey { dataset, missing: missing.join(", ") });
        }
    }
    if problems.is_empty() {
        Ok(CheckedRule { rule, datasets, outputs })
    } else {
        Err(RuleProblems::new(&rule.id, problems))
    }
}

/// The dataset a reference names: `None` for bare names (CTEs, or the
/// default schema's tables, which planning resolves) and information_schema;
/// `Err` with the name as written for a reference into `civlink` that is not
/// a dataset id.
fn dataset_of(reference: &TableReference) -> Option<Result<DatasetId, String>> {
    let (catalog, schema) = match reference {
        TableReference::Bare { .. } => return None,
        TableReference::Partial { schema, .. } => (CATALOG, schema.as_ref()),
        TableReference::Full { catalog, schema, .. } => (catalog.as_ref(), schema.as_ref()),
    };
    if schema == "information_schema" {
        return None;
    }
    let named = format!("{schema}.{}", reference.table());
    if catalog != CATALOG {
        return Some(Err(format!("{catalog}.{named}")));
    }
    Some(named.parse::<DatasetId>().map_err(|_| named))
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn shapes() -> Shapes {
        let members = Schema::new(vec![
            Field::new("household_id", DataType::Utf8, false),
            Field::new("id_number", DataType::Utf8, false),
            Field::new("name", DataType::Utf8, false),
            Field::new("division_code", DataType::Utf8, false),
            Field::new("end_date", DataType::Date32, true),
        ]);
        let population = Schema::new(vec![
            Field::new("id_number", DataType::Utf8, false),
            Field::new("status", DataType::Utf8, false),
        ]);
        Shapes::new(BTreeMap::from([
            (
                "minzheng.dibao_members".parse().unwrap(),
                DatasetShape {
                    schema: Arc::new(members),
                    primary_key: vec!["household_id".into(), "id_number".into()],
                },
            ),
            (
                "gongan.population".parse().unwrap(),
                DatasetShape { schema: Arc::new(population), primary_key: vec!["id_number".into()] },
            ),
        ]))
    }

    fn rule(sql: &str, rests_on: &str) -> Rule {
        let text = format!(
            r#"
id = "r"
version = 1
title_zh = "测试"
title_en = "test"
basis = "none"
severity = "low"
subject = "person"
department = "minzheng"
explain = "{{name}}"
sql = """{sql}"""
[columns]
subject = "id_number"
division = "division_code"
evidence = ["name"]
{rests_on}
"#
        );
        Rule::parse(&text, None).unwrap()
    }

    const MEMBERS: &str = "[[rests_on]]\ndataset = \"minzheng.dibao_members\"\nkey = { household_id = \"household_id\", id_number = \"id_number\" }";

    #[tokio::test]
    async fn a_rule_over_known_datasets_checks() {
        let checked = check_rule(
            rule(
                "SELECT m.household_id, m.id_number, m.name, m.division_code FROM minzheng.dibao_members m \
                 JOIN gongan.population p ON p.id_number = m.id_number WHERE p.status = 'deceased' AND m.end_date IS NULL",
                MEMBERS,
            ),
            &shapes(),
        )
        .await
        .unwrap();
        assert_eq!(checked.datasets.len(), 2);
        assert_eq!(checked.outputs, ["household_id", "id_number", "name", "division_code"]);
    }

    #[tokio::test]
    async fn unknown_datasets_are_named() {
        let err = check_rule(rule("SELECT * FROM renshe.nothing_here JOIN gongan.populace ON true", ""), &shapes())
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("renshe.nothing_here") && text.contains("gongan.populace"), "{text}");
        assert_eq!(err.problems.len(), 2);
    }

    #[tokio::test]
    async fn missing_columns_and_bad_keys_are_all_reported() {
        let err = check_rule(
            rule(
                "SELECT m.id_number FROM minzheng.dibao_members m",
                "[[rests_on]]\ndataset = \"gongan.population\"\nkey = { status = \"id_number\" }",
            ),
            &shapes(),
        )
        .await
        .unwrap_err();
        let kinds: Vec<_> = err.problems.iter().map(std::mem::discriminant).collect();
        let text = err.to_string();
        assert!(text.contains("\"division_code\"") && text.contains("\"name\""), "{text}");
        assert!(kinds.contains(&std::mem::discriminant(&Problem::NotRead { dataset: String::new() })), "{text}");
        assert!(text.contains("not part of its primary key") && text.contains("leaves out id_number"), "{text}");
    }

    #[tokio::test]
    async fn bad_sql_and_writes_are_refused() {
        let err = check_rule(rule("SELEC id_number", ""), &shapes()).await.unwrap_err();
        assert!(matches!(err.problems[0], Problem::Sql { .. }), "{err}");
        let err = check_rule(rule("SELECT nope FROM minzheng.dibao_members", ""), &shapes()).await.unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        let err = check_rule(rule("DROP TABLE minzheng.dibao_members", ""), &shapes()).await.unwrap_err();
        assert!(matches!(err.problems[0], Problem::NotAQuery | Problem::Sql { .. }), "{err}");
    }

    #[tokio::test]
    async fn ambiguous_output_names_are_refused() {
        let err = check_rule(
            rule(
                "SELECT m.id_number, p.id_number, m.name, m.division_code FROM minzheng.dibao_members m \
                 JOIN gongan.population p ON p.id_number = m.id_number",
                "",
            ),
            &shapes(),
        )
        .await
        .unwrap_err();
        assert!(err.problems.iter().any(|p| matches!(p, Problem::DuplicateOutput { .. })), "{err}");
    }
}
