//! One reader/writer comparison, keyword by keyword: what a writer's
//! schema admits that the reader's does not, as [`Incompatibility`] findings.

use super::*;

/// One reader/writer comparison; collects findings into `out`.
pub(super) struct Comparison<'o> {
    pub(super) direction: Direction,
    pub(super) against: usize,
    pub(super) out: &'o mut Vec<Incompatibility>,
}

impl<'o> Comparison<'o> {
    pub(super) fn new(direction: Direction, against: usize, out: &'o mut Vec<Incompatibility>) -> Self {
        Comparison { direction, against, out }
    }

    /// BACKWARD reads old data with the new version; FORWARD the reverse.
    pub(super) fn reader_is_new(&self) -> bool {
        self.direction == Direction::Backward
    }

    /// `(new, old)` out of `(reader, writer)`.
    pub(super) fn new_old<'s, T>(&self, reader: &'s T, writer: &'s T) -> (&'s T, &'s T) {
        if self.reader_is_new() { (reader, writer) } else { (writer, reader) }
    }

    pub(super) fn kind(&self, backward: IncompatibilityKind, forward: IncompatibilityKind) -> IncompatibilityKind {
        if self.reader_is_new() { backward } else { forward }
    }

    /// "`what` written by the old version would be rejected by the new version".
    pub(super) fn consequence(&self, what: &str) -> String {
        let (writer, reader) = if self.reader_is_new() { ("old", "new") } else { ("new", "old") };
        format!("{what} written by the {writer} version would be rejected by the {reader} version")
    }

    /// Appended to messages whose pointer is into the previous version.
    pub(super) fn in_previous(&self) -> String {
        format!(" (pointer refers to previous version {})", self.against)
    }

    pub(super) fn push(&mut self, pointer: String, kind: IncompatibilityKind, message: String) {
        self.out.push(Incompatibility {
            pointer,
            direction: self.direction,
            against_version: self.against,
            kind,
            message,
        });
    }

    pub(super) fn documents(&mut self, reader: &Doc<'_>, writer: &Doc<'_>) {
        self.schema(&reader.root, &writer.root);
        self.properties(reader, writer);
        self.content_model(reader, writer);
        self.required(reader, writer);
        self.primary_key(reader, writer);
        self.division_column(reader, writer);
    }

    pub(super) fn properties(&mut self, reader: &Doc<'_>, writer: &Doc<'_>) {
        for (name, w) in &writer.properties {
            if let Some(r) = reader.properties.get(name) {
                self.schema(r, w);
                continue;
            }
            if w.nothing {
                continue;
            }
            match &reader.additional {
                Additional::Open => {}
                Additional::Schema(r) => self.schema(r, w),
                Additional::Closed => {
                    let (kind, message) = if self.reader_is_new() {
                        (
                            IncompatibilityKind::FieldRemovedFromClosedModel,
                            format!(
                                "field `{name}` removed while additionalProperties is false: {}{}",
                                self.consequence(&format!("records with `{name}`")),
                                self.in_previous()
                            ),
                        )
                    } else {
                        (
                            IncompatibilityKind::FieldAddedToClosedModel,
                            format!(
                                "field `{name}` added while the old version has additionalProperties false: {}",
                                self.consequence(&format!("records with `{name}`"))
                            ),
                        )
                    };
                    // The writer's declaration: in the old document when the
                    // field was removed, in the new one when it was added.
                    self.push(w.ptr.clone(), kind, message);
                }
            }
        }
    }

    pub(super) fn content_model(&mut self, reader: &Doc<'_>, writer: &Doc<'_>) {
        let rejects_extras = match (&reader.additional, &writer.additional) {
            (Additional::Open, _) | (_, Additional::Closed) => false,
            (Additional::Closed | Additional::Schema(_), Additional::Open) => true,
            (Additional::Closed, Additional::Schema(w)) => !w.nothing,
            (Additional::Schema(r), Additional::Schema(w)) => {
                self.schema(r, w);
                false
            }
        };
        if !rejects_extras {
            return;
        }
        let (new, old) = self.new_old(reader, writer);
        let message = format!(
            "additionalProperties changed from {} to {}: {}",
            describe_additional(old),
            describe_additional(new),
            self.consequence("properties the reader does not declare")
        );
        let kind = self.kind(IncompatibilityKind::ClosedContentModel, IncompatibilityKind::OpenedContentModel);
        self.push(new.root.at("additionalProperties"), kind, message);
    }

    pub(super) fn required(&mut self, reader: &Doc<'_>, writer: &Doc<'_>) {
        for (i, name) in reader.required.iter().enumerate() {
            if reader.required[..i].contains(name) || writer.required.contains(name) {
                continue;
            }
            let required_ptr = format!("/required/{i}");
            let records = format!("records without `{name}`");
            match (writer.properties.get(name), self.reader_is_new()) {
                (Some(_), true) => {
                    let message = format!("optional field `{name}` made required: {}", self.consequence(&records));
                    self.push(required_ptr, IncompatibilityKind::FieldMadeRequired, message);
                }
                (Some(w), false) => {
                    let message = format!("required field `{name}` made optional: {}", self.consequence(&records));
                    self.push(w.ptr.clone(), IncompatibilityKind::FieldMadeOptional, message);
                }
                (None, true) => {
                    let message = format!("required field `{name}` added: {}", self.consequence(&records));
                    self.push(required_ptr, IncompatibilityKind::RequiredFieldAdded, message);
                }
                (None, false) => {
                    let message = format!(
                        "required field `{name}` removed: {}{}",
                        self.consequence(&records),
                        self.in_previous()
                    );
                    self.push(required_ptr, IncompatibilityKind::RequiredFieldRemoved, message);
                }
            }
        }
    }

    /// The key defines row identity for upserts and de-duplication, so any
    /// change alters what a row means across versions, in either direction.
    pub(super) fn primary_key(&mut self, reader: &Doc<'_>, writer: &Doc<'_>) {
        if reader.primary_key_set() == writer.primary_key_set() {
            return;
        }
        let (new, old) = self.new_old(reader, writer);
        let describe = |doc: &Doc<'_>| match &doc.primary_key {
            None => "none".to_owned(),
            Some(columns) => format!("[{}]", columns.join(", ")),
        };
        let message = format!(
            "primary key changed from {} to {}: rows written by the {} version are identified differently by the {} version",
            describe(old),
            describe(new),
            if self.reader_is_new() { "old" } else { "new" },
            if self.reader_is_new() { "new" } else { "old" },
        );
        self.push(new.root.at(PRIMARY_KEY), IncompatibilityKind::PrimaryKeyChanged, message);
    }

    /// The division column decides which administrative division (and so
    /// which data owner and access scope) a row belongs to.
    pub(super) fn division_column(&mut self, reader: &Doc<'_>, writer: &Doc<'_>) {
        if reader.division_column == writer.division_column {
            return;
        }
        let (new, old) = self.new_old(reader, writer);
        let describe = |doc: &Doc<'_>| match doc.division_column {
            None => "none".to_owned(),
            Some(column) => format!("`{column}`"),
        };
        let message = format!(
            "division column changed from {} to {}: rows are assigned to divisions differently",
            describe(old),
            describe(new)
        );
        self.push(new.root.at(DIVISION_COLUMN), IncompatibilityKind::DivisionColumnChanged, message);
    }

    /// Everything `w` accepts must be accepted by `r`, keyword by keyword.
    pub(super) fn schema(&mut self, r: &Schema<'_>, w: &Schema<'_>) {
        if w.nothing {
            return;
        }
        if r.nothing {
            let (new, _) = self.new_old(r, w);
            let message = format!(
                "the {} version's schema is `false` and accepts no value: {}",
                if self.reader_is_new() { "new" } else { "old" },
                self.consequence("any value")
            );
            let kind = self.kind(IncompatibilityKind::TypeNarrowed, IncompatibilityKind::TypeWidened);
            self.push(new.ptr.clone(), kind, message);
            return;
        }
        self.types(r, w);
        self.enumeration(r, w);
        self.constant(r, w);
        self.lower(r, w);
        self.upper(r, w);
        for (i, keywords) in COUNT_KEYWORDS.iter().enumerate() {
            if w.writes(keywords.applies_to) {
                self.count_min(r, w, i, keywords);
                self.count_max(r, w, i, keywords);
            }
        }
        self.multiple_of(r, w);
        self.string_keyword(
            r,
            w,
            "pattern",
            |s| s.pattern,
            w.writes(JsonType::String),
            IncompatibilityKind::PatternChanged,
            "strings not matching",
        );
        self.string_keyword(
            r,
            w,
            "format",
            |s| s.format,
            true,
            IncompatibilityKind::FormatChanged,
            "values not in format",
        );
        self.string_keyword(
            r,
            w,
            CODE_TABLE,
            |s| s.code_table,
            true,
            IncompatibilityKind::CodeTableChanged,
            "codes outside code table",
        );
        self.other(r, w);
    }

    pub(super) fn types(&mut self, r: &Schema<'_>, w: &Schema<'_>) {
        let Some(reader_types) = r.types else {
            return;
        };
        let writer_types = w.types.unwrap_or(TypeSet::ANY);
        let mut missing = TypeSet::EMPTY;
        for t in writer_types.iter().filter(|t| !reader_types.admits(*t)) {
            missing.insert(t);
        }
        if missing == TypeSet::EMPTY {
            return;
        }
        // "number" already says "integer".
        if missing.contains(JsonType::Number) {
            missing.0 &= !JsonType::Integer.bit();
        }
        let (new, old) = self.new_old(r, w);
        let verb = if self.reader_is_new() { "narrowed" } else { "widened" };
        let names: Vec<&str> = missing.iter().map(JsonType::name).collect();
        let message = format!(
            "type {verb} from {} to {}: {}",
            describe_types(old.types),
            describe_types(new.types),
            self.consequence(&format!("values of type {}", names.join(", ")))
        );
        let kind = self.kind(IncompatibilityKind::TypeNarrowed, IncompatibilityKind::TypeWidened);
        self.push(new.at("type"), kind, message);
    }

    pub(super) fn enumeration(&mut self, r: &Schema<'_>, w: &Schema<'_>) {
        let Some(allowed) = r.enumeration else {
            return;
        };
        let contains = |v: &Value| allowed.iter().any(|a| json_eq(a, v));
        if w.constant.is_some_and(contains) {
            return;
        }
        // What the writer may write that the reader's enum lacks; `None`
        // when the writer has no enum (or const) at all.
        let missing: Option<Vec<&Value>> = match (w.enumeration, w.constant) {
            (Some(values), _) => Some(values.iter().filter(|v| !contains(v)).collect()),
            (None, Some(value)) => Some(vec![value]),
            (None, None) => None,
        };
        if missing.as_ref().is_some_and(Vec::is_empty) {
            return;
        }
        let (new, _) = self.new_old(r, w);
        let kind = self.kind(IncompatibilityKind::EnumNarrowed, IncompatibilityKind::EnumWidened);
        let message = match (missing, self.reader_is_new()) {
            (None, true) => {
                format!("enum {} added: {}", show_values(allowed.iter()), self.consequence("values outside it"))
            }
            (None, false) => {
                format!("enum {} removed: {}", show_values(allowed.iter()), self.consequence("values outside it"))
            }
            (Some(values), true) => format!(
                "enum no longer allows {}: {}",
                show_values(values.iter().copied()),
                self.consequence("those values")
            ),
            (Some(values), false) => format!(
                "enum now also allows {}: {}",
                show_values(values.iter().copied()),
                self.consequence("those values")
            ),
        };
        self.push(new.at("enum"), kind, message);
    }

    pub(super) fn constant(&mut self, r: &Schema<'_>, w: &Schema<'_>) {
        let Some(expected) = r.constant else {
            return;
        };
        let same = w.constant.is_some_and(|c| json_eq(c, expected))
            || w.enumeration.is_some_and(|values| values.iter().all(|v| json_eq(v, expected)));
        if same {
            return;
        }
        let (new, old) = self.new_old(r, w);
        let change = match (old.constant, new.constant) {
            (Some(o), Some(n)) => format!("const changed from {} to {}", show(o), show(n)),
            (None, Some(n)) => format!("const {} added", show(n)),
            (Some(o), None) => format!("const {} removed", show(o)),
            (None, None) => "const changed".to_owned(),
        };
        let message = format!("{change}: {}", self.consequence(&format!("values other than {}", show(expected))));
        self.push(new.at("const"), IncompatibilityKind::ConstChanged, message);
    }

    pub(super) fn lower(&mut self, r: &Schema<'_>, w: &Schema<'_>) {
        if !w.writes(JsonType::Number) {
            return;
        }
        let Some(rb) = r.lower else {
            return;
        };
        // Writer values below the reader's bound. For a writer of integers
        // only, bounds are compared as the integers they admit, so that
        // `exclusiveMinimum: -1` and `minimum: 0` are the same.
        let integers = if w.writes_only_integers() {
            match (int_lower(rb), w.lower.map(int_lower)) {
                (Some(r_lo), None) => Some(Some(format!("values up to {}", r_lo - 1))),
                (Some(r_lo), Some(Some(w_lo))) => Some((r_lo > w_lo).then(|| int_range(w_lo, r_lo - 1))),
                _ => None,
            }
        } else {
            None
        };
        let gap = match integers {
            Some(Some(gap)) => gap,
            Some(None) => return,
            None => match w.lower {
                None => format!("values {} {}", if rb.exclusive { "at or below" } else { "below" }, rb.value),
                Some(wb) => {
                    let narrower = match cmp_num(rb.value, wb.value) {
                        Ordering::Greater => true,
                        Ordering::Equal => rb.exclusive && !wb.exclusive,
                        Ordering::Less => false,
                    };
                    if !narrower {
                        return;
                    }
                    format!(
                        "values in {}{}, {}{}",
                        if wb.exclusive { "(" } else { "[" },
                        wb.value,
                        rb.value,
                        if rb.exclusive { "]" } else { ")" },
                    )
                }
            },
        };
        self.bound_finding(r, w, |s| s.lower, "lower", gap);
    }

    pub(super) fn upper(&mut self, r: &Schema<'_>, w: &Schema<'_>) {
        if !w.writes(JsonType::Number) {
            return;
        }
        let Some(rb) = r.upper else {
            return;
        };
        // Writer values above the reader's bound; integers as in `lower`.
        let integers = if w.writes_only_integers() {
            match (int_upper(rb), w.upper.map(int_upper)) {
                (Some(r_hi), None) => Some(Some(format!("values from {}", r_hi + 1))),
                (Some(r_hi), Some(Some(w_hi))) => Some((r_hi < w_hi).then(|| int_range(r_hi + 1, w_hi))),
                _ => None,
            }
        } else {
            None
        };
        let gap = match integers {
            Some(Some(gap)) => gap,
            Some(None) => return,
            None => match w.upper {
                None => format!("values {} {}", if rb.exclusive { "at or above" } else { "above" }, rb.value),
                Some(wb) => {
                    let narrower = match cmp_num(rb.value, wb.value) {
                        Ordering::Less => true,
                        Ordering::Equal => rb.exclusive && !wb.exclusive,
                        Ordering::Greater => false,
                    };
                    if !narrower {
                        return;
                    }
                    format!(
                        "values in {}{}, {}{}",
                        if rb.exclusive { "[" } else { "(" },
                        rb.value,
                        wb.value,
                        if wb.exclusive { ")" } else { "]" },
                    )
                }
            },
        };
        self.bound_finding(r, w, |s| s.upper, "upper", gap);
    }

    /// Reports a narrowed numeric bound; `side` is "lower" or "upper".
    pub(super) fn bound_finding<'a>(
        &mut self,
        r: &Schema<'a>,
        w: &Schema<'a>,
        bound: impl Fn(&Schema<'a>) -> Option<NumBound<'a>>,
        side: &str,
        gap: String,
    ) {
        let (new, old) = self.new_old(r, w);
        let change = match (bound(old), bound(new)) {
            (Some(o), Some(n)) if o.keyword == n.keyword => format!(
                "{} {} from {} to {}",
                n.keyword,
                if cmp_num(n.value, o.value) == Ordering::Greater { "raised" } else { "lowered" },
                o.value,
                n.value
            ),
            (Some(o), Some(n)) => {
                format!("{side} bound changed from {} {} to {} {}", o.keyword, o.value, n.keyword, n.value)
            }
            (None, Some(n)) => format!("{} {} added", n.keyword, n.value),
            (Some(o), None) => format!("{} {} removed", o.keyword, o.value),
            (None, None) => format!("{side} bound changed"),
        };
        let pointer = match bound(new) {
            Some(n) => new.at(n.keyword),
            None => new.ptr.clone(),
        };
        let message = format!("{change}: {}", self.consequence(&gap));
        let kind = self.kind(IncompatibilityKind::RangeNarrowed, IncompatibilityKind::RangeWidened);
        self.push(pointer, kind, message);
    }

    pub(super) fn count_min(&mut self, r: &Schema<'_>, w: &Schema<'_>, i: usize, keywords: &CountKeywords) {
        let Some(reader_min) = r.counts[i].min else {
            return;
        };
        // An absent minimum count is 0.
        let writer_min = w.counts[i].min.unwrap_or(0);
        if reader_min <= writer_min {
            return;
        }
        let gap = format!(
            "{} {}{}",
            keywords.subject,
            int_span(u128::from(writer_min), u128::from(reader_min) - 1),
            keywords.unit
        );
        self.count_finding(r, w, i, keywords.min, |c| c.min, gap);
    }

    pub(super) fn count_max(&mut self, r: &Schema<'_>, w: &Schema<'_>, i: usize, keywords: &CountKeywords) {
        let Some(reader_max) = r.counts[i].max else {
            return;
        };
        let gap = match w.counts[i].max {
            Some(writer_max) if writer_max <= reader_max => return,
            Some(writer_max) => format!(
                "{} {}{}",
                keywords.subject,
                int_span(u128::from(reader_max) + 1, u128::from(writer_max)),
                keywords.unit
            ),
            None => format!("{} more than {reader_max}{}", keywords.subject, keywords.unit),
        };
        self.count_finding(r, w, i, keywords.max, |c| c.max, gap);
    }

    pub(super) fn count_finding(
        &mut self,
        r: &Schema<'_>,
        w: &Schema<'_>,
        i: usize,
        keyword: &str,
        get: impl Fn(&CountRange) -> Option<u64>,
        gap: String,
    ) {
        let (new, old) = self.new_old(r, w);
        let change = match (get(&old.counts[i]), get(&new.counts[i])) {
            (Some(o), Some(n)) => format!("{keyword} {} from {o} to {n}", if n > o { "raised" } else { "lowered" }),
            (None, Some(n)) => format!("{keyword} {n} added"),
            (Some(o), None) => format!("{keyword} {o} removed"),
            (None, None) => format!("{keyword} changed"),
        };
        let message = format!("{change}: {}", self.consequence(&gap));
        let kind = self.kind(IncompatibilityKind::RangeNarrowed, IncompatibilityKind::RangeWidened);
        self.push(new.at(keyword), kind, message);
    }

    pub(super) fn multiple_of(&mut self, r: &Schema<'_>, w: &Schema<'_>) {
        if !w.writes(JsonType::Number) {
            return;
        }
        let Some(divisor) = r.multiple_of else {
            return;
        };
        let divides_writer = w.multiple_of.is_some_and(|writer_divisor| is_multiple(writer_divisor, divisor));
        // Every integer is a multiple of 1 (and of 1/2, 1/3…).
        let divides_integers = w.writes_only_integers() && is_multiple(&Number::from(1u8), divisor);
        if divides_writer || divides_integers {
            return;
        }
        let (new, old) = self.new_old(r, w);
        let change = match (old.multiple_of, new.multiple_of) {
            (Some(o), Some(n)) => format!("multipleOf changed from {o} to {n}"),
            (None, Some(n)) => format!("multipleOf {n} added"),
            (Some(o), None) => format!("multipleOf {o} removed"),
            (None, None) => "multipleOf changed".to_owned(),
        };
        let message = format!("{change}: {}", self.consequence(&format!("values that are not multiples of {divisor}")));
        self.push(new.at("multipleOf"), IncompatibilityKind::MultipleOfChanged, message);
    }

    /// `pattern`, `format` and `x-civlink-code-table`: the reader's value, if
    /// any, must be exactly the writer's, because neither can be decided to
    /// contain the other.
    #[allow(clippy::too_many_arguments)] // One call per keyword; a struct would only rename them.
    pub(super) fn string_keyword<'a>(
        &mut self,
        r: &Schema<'a>,
        w: &Schema<'a>,
        keyword: &str,
        get: impl Fn(&Schema<'a>) -> Option<&'a str>,
        applies: bool,
        kind: IncompatibilityKind,
        rejected: &str,
    ) {
        if !applies {
            return;
        }
        let Some(expected) = get(r) else {
            return;
        };
        if get(w) == Some(expected) {
            return;
        }
        let (new, old) = self.new_old(r, w);
        let change = match (get(old), get(new)) {
            (Some(o), Some(n)) => format!("{keyword} changed from {o:?} to {n:?}"),
            (None, Some(n)) => format!("{keyword} {n:?} added"),
            (Some(o), None) => format!("{keyword} {o:?} removed"),
            (None, None) => format!("{keyword} changed"),
        };
        let message = format!("{change}: {}", self.consequence(&format!("{rejected} {expected:?}")));
        self.push(new.at(keyword), kind, message);
    }

    /// Keywords compared only for equality, conservatively in both directions.
    pub(super) fn other(&mut self, r: &Schema<'_>, w: &Schema<'_>) {
        let keywords: BTreeSet<&str> = r.other.keys().chain(w.other.keys()).copied().collect();
        for keyword in keywords {
            let (reader_value, writer_value) = (r.other.get(keyword), w.other.get(keyword));
            let same = match (reader_value, writer_value) {
                (Some(a), Some(b)) => json_eq(a, b),
                (None, None) => true,
                _ => false,
            };
            if same {
                continue;
            }
            let (new, old) = self.new_old(r, w);
            let change = match (old.other.get(keyword), new.other.get(keyword)) {
                (Some(o), Some(n)) => {
                    format!("keyword `{keyword}` changed from {} to {}", show(o), show(n))
                }
                (None, Some(n)) => format!("keyword `{keyword}` {} added", show(n)),
                (Some(o), None) => format!("keyword `{keyword}` {} removed", show(o)),
                (None, None) => format!("keyword `{keyword}` changed"),
            };
            let message =
                format!("{change}: it is not compared structurally, so the change is assumed to break both directions");
            self.push(new.at(keyword), IncompatibilityKind::KeywordChanged, message);
        }
    }
}
