//! `derive`: columns computed from others (`id_birth_date(id_number)`, `concat(…)`).

use super::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Derive {
    pub(super) expression: String,
    pub(super) function: DeriveFn,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum DeriveFn {
    IdBirthDate(String),
    IdSex(String),
    IdAge(String),
    Concat(Vec<Arg>),
    Const(String),
    Copy(String),
}

impl DeriveFn {
    /// The columns it reads.
    pub(super) fn inputs(&self) -> Vec<&str> {
        match self {
            DeriveFn::IdBirthDate(c) | DeriveFn::IdSex(c) | DeriveFn::IdAge(c) | DeriveFn::Copy(c) => vec![c.as_str()],
            DeriveFn::Concat(args) => args
                .iter()
                .filter_map(|a| match a {
                    Arg::Column(c) => Some(c.as_str()),
                    Arg::Literal(_) => None,
                })
                .collect(),
            DeriveFn::Const(_) => Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Arg {
    Column(String),
    Literal(String),
}

impl Mapping {
    /// Computes a derived column.
    pub(super) fn derive(
        &self,
        column: &CompiledColumn,
        derive: &Derive,
        fields: &[FieldRef],
        arrays: &[ArrayRef],
        rows: usize,
    ) -> Result<ArrayRef> {
        let mut inputs: HashMap<&str, ArrayRef> = HashMap::new();
        for name in derive.function.inputs() {
            let position = fields.iter().position(|f| f.name() == name).ok_or_else(|| MappingError::MissingColumn {
                column: column.name.clone(),
                expression: derive.expression.clone(),
                missing: name.to_owned(),
                available: fields.iter().map(|f| f.name().clone()).collect(),
            })?;
            inputs.insert(name, arrays[position].clone());
        }
        let text = |name: &str| -> Result<ArrayRef> {
            match inputs.get(name) {
                Some(array) => as_text(name, array),
                // Every input was resolved above.
                None => Ok(Arc::new(StringArray::new_null(rows))),
            }
        };
        let per_id = |name: &str, f: &dyn Fn(&CitizenId) -> String| -> Result<ArrayRef> {
            let array = text(name)?;
            let ids = array.as_string::<i32>();
            let out: StringArray =
                ids.iter().map(|v| v.and_then(|v| CitizenId::parse_on(v, self.as_of).ok()).map(|id| f(&id))).collect();
            Ok(Arc::new(out))
        };
        match &derive.function {
            DeriveFn::IdBirthDate(name) => per_id(name, &|id| id.birth_date().format("%Y-%m-%d").to_string()),
            DeriveFn::IdSex(name) => per_id(name, &|id| id.sex().gb2261_code().to_owned()),
            DeriveFn::IdAge(name) => {
                let array = text(name)?;
                let ids = array.as_string::<i32>();
                let out: StringArray = ids
                    .iter()
                    .map(|v| {
                        v.and_then(|v| CitizenId::parse_on(v, self.as_of).ok())
                            .and_then(|id| id.age_on(self.as_of))
                            .map(|age| age.to_string())
                    })
                    .collect();
                Ok(Arc::new(out))
            }
            DeriveFn::Copy(name) => {
                Ok(inputs.get(name.as_str()).cloned().unwrap_or_else(|| Arc::new(StringArray::new_null(rows))))
            }
            DeriveFn::Const(literal) => {
                let value = (!literal.is_empty()).then_some(literal.as_str());
                Ok(Arc::new(StringArray::from(vec![value; rows])))
            }
            DeriveFn::Concat(args) => {
                let parts: Vec<Option<ArrayRef>> = args
                    .iter()
                    .map(|arg| match arg {
                        Arg::Column(name) => text(name).map(Some),
                        Arg::Literal(_) => Ok(None),
                    })
                    .collect::<Result<_>>()?;
                let has_columns = parts.iter().any(Option::is_some);
                let mut builder = StringBuilder::with_capacity(rows, rows * 16);
                let mut value = String::new();
                for row in 0..rows {
                    value.clear();
                    let mut any = false;
                    for (arg, part) in args.iter().zip(&parts) {
                        match (arg, part) {
                            (Arg::Literal(literal), _) => value.push_str(literal),
                            (Arg::Column(_), Some(array)) => {
                                let array = array.as_string::<i32>();
                                if array.is_valid(row) {
                                    value.push_str(array.value(row));
                                    any = true;
                                }
                            }
                            (Arg::Column(_), None) => {}
                        }
                    }
                    // Literals alone (separators) do not make a value out of NULLs.
                    if (any || !has_columns) && !value.is_empty() {
                        builder.append_value(&value);
                    } else {
                        builder.append_null();
                    }
                }
                Ok(Arc::new(builder.finish()))
            }
        }
    }
}

/// Parses a `derive` expression.
pub(super) fn parse_derive(column: &str, expression: &str) -> std::result::Result<DeriveFn, Problem> {
    let bad = |message: &str| Problem::BadDerive {
        column: column.to_owned(),
        expression: expression.to_owned(),
        message: message.to_owned(),
    };
    let text = expression.trim();
    let open = text.find('(').ok_or_else(|| bad("expected function(arguments), e.g. id_birth_date(id_number)"))?;
    let function = text[..open].trim();
    if function.is_empty() || !function.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(bad("expected a function name before '('"));
    }
    let inner = text[open + 1..].strip_suffix(')').ok_or_else(|| bad("expected ')' at the end"))?;
    let args = split_args(inner).map_err(|message| bad(&message))?;
    let arity = |expected: &'static str| Problem::DeriveArguments {
        column: column.to_owned(),
        function: function.to_owned(),
        expected,
    };
    let one_column = |args: &[Arg]| match args {
        [Arg::Column(c)] => Ok(c.clone()),
        _ => Err(arity("exactly one column name")),
    };
    match function {
        "id_birth_date" => one_column(&args).map(DeriveFn::IdBirthDate),
        "id_sex" => one_column(&args).map(DeriveFn::IdSex),
        "id_age" => one_column(&args).map(DeriveFn::IdAge),
        "copy" => one_column(&args).map(DeriveFn::Copy),
        "const" => match args.as_slice() {
            [Arg::Literal(l)] => Ok(DeriveFn::Const(l.clone())),
            _ => Err(arity("exactly one quoted literal")),
        },
        "concat" if args.is_empty() => Err(arity("one or more columns or quoted literals")),
        "concat" => Ok(DeriveFn::Concat(args)),
        other => Err(Problem::UnknownDeriveFunction { column: column.to_owned(), function: other.to_owned() }),
    }
}

/// Splits `a, 'lit, eral', "x"` into arguments.
fn split_args(inner: &str) -> std::result::Result<Vec<Arg>, String> {
    let mut args = Vec::new();
    let mut chars = inner.chars().peekable();
    if inner.trim().is_empty() {
        return Ok(args);
    }
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.peek().copied() {
            Some(quote @ ('\'' | '"')) => {
                chars.next();
                let mut literal = String::new();
                loop {
                    match chars.next() {
                        Some(c) if c == quote => {
                            // A doubled quote is a literal quote.
                            if chars.next_if_eq(&quote).is_some() {
                                literal.push(quote);
                            } else {
                                break;
                            }
                        }
                        Some(c) => literal.push(c),
                        None => return Err(format!("unclosed {quote} quote")),
                    }
                }
                args.push(Arg::Literal(literal));
            }
            _ => {
                let mut name = String::new();
                while let Some(c) = chars.next_if(|c| *c != ',') {
                    if matches!(c, '(' | ')' | '\'' | '"') {
                        return Err(format!("unexpected {c:?} in a column name (quote literals)"));
                    }
                    name.push(c);
                }
                let name = name.trim();
                if name.is_empty() {
                    return Err("empty argument".to_owned());
                }
                args.push(Arg::Column(name.to_owned()));
            }
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.next() {
            None => return Ok(args),
            Some(',') => {}
            Some(c) => return Err(format!("expected ',' between arguments, found {c:?}")),
        }
    }
}
