//! What a user writes about data, independent of the engine that processes
//! it: contracts (`schemas/*.yaml`), column types, quality checks (`checks:`)
//! and anonymization (`anonymize:`).
//!
//! These are plain values here; `weir-data` turns them into Arrow types and
//! DataFusion expressions. Keeping them in weir-spec lets `weir check`
//! validate them, `weir schema` document them, and a run record carry them
//! (a run checks the contract it started with, not the file as it is now).

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::spec::OrderedMap;
use crate::suggest::did_you_mean;

/// The type of a column in a contract or a `cast:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnType {
    Bool,
    Int8,
    Int16,
    Int32,
    Int64,
    UInt8,
    UInt16,
    UInt32,
    UInt64,
    Float32,
    Float64,
    String,
    Binary,
    Date,
    /// Microseconds, no time zone.
    Timestamp,
    /// Microseconds, UTC.
    TimestampTz,
    /// Fixed-point: `decimal(precision, scale)`.
    Decimal(u8, i8),
}

/// Names a type may be written as, and what they mean. The first name of a
/// type is how it is printed.
const TYPE_NAMES: &[(&str, ColumnType)] = &[
    ("bool", ColumnType::Bool),
    ("boolean", ColumnType::Bool),
    ("int8", ColumnType::Int8),
    ("int16", ColumnType::Int16),
    ("smallint", ColumnType::Int16),
    ("int32", ColumnType::Int32),
    ("int", ColumnType::Int32),
    ("integer", ColumnType::Int32),
    ("int64", ColumnType::Int64),
    ("bigint", ColumnType::Int64),
    ("uint8", ColumnType::UInt8),
    ("uint16", ColumnType::UInt16),
    ("uint32", ColumnType::UInt32),
    ("uint64", ColumnType::UInt64),
    ("float32", ColumnType::Float32),
    ("real", ColumnType::Float32),
    ("float64", ColumnType::Float64),
    ("double", ColumnType::Float64),
    ("float", ColumnType::Float64),
    ("string", ColumnType::String),
    ("text", ColumnType::String),
    ("utf8", ColumnType::String),
    ("varchar", ColumnType::String),
    ("binary", ColumnType::Binary),
    ("bytes", ColumnType::Binary),
    ("date", ColumnType::Date),
    ("timestamp", ColumnType::Timestamp),
    ("timestamptz", ColumnType::TimestampTz),
];

const TYPE_HELP: &str = "types are bool, int8, int16, int32, int64, uint8..uint64, float32, \
    float64, string, binary, date, timestamp, timestamptz and decimal(precision, scale)";

impl ColumnType {
    /// Parses a type as written in YAML (`int64`, `decimal(10, 2)`), case
    /// insensitively.
    pub fn parse(text: &str) -> Result<ColumnType, String> {
        let lower = text.trim().to_ascii_lowercase();
        if let Some((_, ty)) = TYPE_NAMES.iter().find(|(name, _)| *name == lower) {
            return Ok(*ty);
        }
        if let Some(args) = lower
            .strip_prefix("decimal")
            .or_else(|| lower.strip_prefix("numeric"))
            .map(str::trim)
            .and_then(|rest| rest.strip_prefix('('))
            .and_then(|rest| rest.strip_suffix(')'))
        {
            let parts: Vec<&str> = args.split(',').map(str::trim).collect();
            let parsed = match parts.as_slice() {
                [p] => p.parse::<u8>().ok().map(|p| (p, 0)),
                [p, s] => p.parse::<u8>().ok().zip(s.parse::<i8>().ok()),
                _ => None,
            };
            return match parsed {
                Some((p, s)) if (1..=38).contains(&p) && s >= 0 && s as u8 <= p => {
                    Ok(ColumnType::Decimal(p, s))
                }
                _ => Err(format!(
                    "`{text}` is not a valid decimal: write `decimal(precision, scale)` with \
                     precision 1 to 38 and scale 0 to precision, e.g. `decimal(12, 2)`"
                )),
            };
        }
        if (lower.starts_with("decimal(") || lower.starts_with("numeric(")) && !lower.contains(')')
        {
            return Err(format!(
                "`{text}` is cut short: in a `{{ ... }}` map a comma ends the value; quote the type, e.g. `type: \"decimal(12, 2)\"`"
            ));
        }
        let hint = match did_you_mean(&lower, TYPE_NAMES.iter().map(|(n, _)| *n)) {
            Some(s) => format!("did you mean `{s}`? "),
            None => String::new(),
        };
        Err(format!("unknown column type `{text}`; {hint}{TYPE_HELP}"))
    }

    /// Whether values of this type can be compared with `min`/`max`.
    pub fn is_ordered(self) -> bool {
        !matches!(self, ColumnType::Bool | ColumnType::Binary)
    }

    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            ColumnType::Int8
                | ColumnType::Int16
                | ColumnType::Int32
                | ColumnType::Int64
                | ColumnType::UInt8
                | ColumnType::UInt16
                | ColumnType::UInt32
                | ColumnType::UInt64
                | ColumnType::Float32
                | ColumnType::Float64
                | ColumnType::Decimal(..)
        )
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnType::Decimal(p, s) => write!(f, "decimal({p}, {s})"),
            ty => {
                let name = TYPE_NAMES
                    .iter()
                    .find(|(_, t)| t == ty)
                    .map_or("?", |(n, _)| *n);
                f.write_str(name)
            }
        }
    }
}

impl Serialize for ColumnType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ColumnType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ColumnType;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a column type such as `int64`, `string` or `decimal(12, 2)`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ColumnType, E> {
                ColumnType::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

impl JsonSchema for ColumnType {
    fn schema_name() -> Cow<'static, str> {
        "ColumnType".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let names: Vec<&str> = TYPE_NAMES.iter().map(|(n, _)| *n).collect();
        json_schema!({
            "description": format!("A column type: {TYPE_HELP}."),
            "anyOf": [
                { "enum": names },
                { "type": "string", "pattern": "^(?i)(decimal|numeric)\\s*\\(\\s*[0-9]+\\s*(,\\s*[0-9]+\\s*)?\\)$" }
            ]
        })
    }
}

/// A contract file, `schemas/<name>.yaml`: the columns a dataset must have.
///
/// ```yaml
/// description: One row per order.
/// columns:
///   id: { type: int64, nullable: false, unique: true }
///   amount: { type: float64, min: 0 }
///   status: { type: string, values: [paid, shipped, cancelled, refunded] }
///   email: { type: string, pii: true }
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContractSpec {
    /// What the dataset holds.
    #[serde(default)]
    pub description: Option<String>,
    /// The columns, in order.
    pub columns: OrderedMap<ColumnSpec>,
}

/// One column of a contract.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    /// The column's type.
    #[serde(rename = "type")]
    pub ty: ColumnType,
    /// Whether the column may hold nulls. Default `true`.
    #[serde(default = "yes")]
    pub nullable: bool,
    /// Whether every non-null value must be distinct. Default `false`.
    #[serde(default)]
    pub unique: bool,
    /// Smallest allowed value (numbers, dates and timestamps as text, strings).
    #[serde(default)]
    pub min: Option<serde_json::Value>,
    /// Largest allowed value.
    #[serde(default)]
    pub max: Option<serde_json::Value>,
    /// The only values allowed (nulls are governed by `nullable`).
    #[serde(default)]
    pub values: Option<Vec<serde_json::Value>>,
    /// Personal data: masked for users without the `pii` grant, and a good
    /// candidate for `anonymize:`.
    #[serde(default)]
    pub pii: bool,
    /// What the column means.
    #[serde(default)]
    pub description: Option<String>,
}

fn yes() -> bool {
    true
}

/// A validated contract, carried in the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contract {
    /// The file's stem: `orders` for `schemas/orders.yaml`.
    pub name: String,
    /// Project-relative path of the file.
    pub file: String,
    pub columns: Vec<ColumnContract>,
}

/// One column of a [`Contract`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnContract {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: ColumnType,
    pub nullable: bool,
    pub unique: bool,
    pub min: Option<serde_json::Value>,
    pub max: Option<serde_json::Value>,
    pub values: Option<Vec<serde_json::Value>>,
    pub pii: bool,
}

impl Contract {
    pub fn column(&self, name: &str) -> Option<&ColumnContract> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// One or more column names: `id` or `[id, day]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Columns(pub Vec<String>);

impl<'de> Deserialize<'de> for Columns {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Columns;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a column name or a list of column names")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Columns, E> {
                Ok(Columns(vec![v.to_owned()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Columns, A::Error> {
                let mut out = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    out.push(name);
                }
                if out.is_empty() {
                    return Err(de::Error::invalid_length(0, &"at least one column"));
                }
                Ok(Columns(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Columns {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Columns".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "oneOf": [
                { "type": "string" },
                { "type": "array", "items": { "type": "string" }, "minItems": 1 }
            ]
        })
    }
}

/// A data quality check on a step's output (`checks:`) or on a dataset (a
/// `check` step). A failing check reports how many rows violate it and
/// shows up to 10 of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CheckSpec {
    /// No nulls in these columns (each checked on its own).
    NotNull(Columns),
    /// No two rows share a value of these columns (a list is one composite
    /// key; nulls are ignored).
    Unique(Columns),
    /// Every non-null value of `column` is one of `values`.
    AcceptedValues(AcceptedValuesSpec),
    /// Every non-null value of `column` lies within `min` and `max`
    /// (inclusive; either may be left out).
    Range(RangeSpec),
    /// The number of rows lies within `min` and `max` (inclusive).
    RowCount(RowCountSpec),
    /// A SQL boolean expression over the row's columns that must be true
    /// for every row, e.g. `revenue >= 0 AND month <= now()`. A row where it
    /// is false or null violates it.
    Expr(String),
}

impl CheckSpec {
    /// A short name for messages: `not_null(email)`, `expr: revenue >= 0`.
    pub fn describe(&self) -> String {
        match self {
            CheckSpec::NotNull(c) => format!("not_null({})", c.0.join(", ")),
            CheckSpec::Unique(c) => format!("unique({})", c.0.join(", ")),
            CheckSpec::AcceptedValues(a) => format!("accepted_values({})", a.column),
            CheckSpec::Range(r) => format!("range({})", r.column),
            CheckSpec::RowCount(_) => "row_count".to_owned(),
            CheckSpec::Expr(e) => format!("expr: {}", e.trim()),
        }
    }

    /// The columns the check names (not those inside an `expr`).
    pub fn columns(&self) -> Vec<&str> {
        match self {
            CheckSpec::NotNull(c) | CheckSpec::Unique(c) => {
                c.0.iter().map(String::as_str).collect()
            }
            CheckSpec::AcceptedValues(a) => vec![a.column.as_str()],
            CheckSpec::Range(r) => vec![r.column.as_str()],
            CheckSpec::RowCount(_) | CheckSpec::Expr(_) => Vec::new(),
        }
    }
}

/// `accepted_values: { column, values }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptedValuesSpec {
    pub column: String,
    pub values: Vec<serde_json::Value>,
}

/// `range: { column, min, max }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RangeSpec {
    pub column: String,
    #[serde(default)]
    pub min: Option<serde_json::Value>,
    #[serde(default)]
    pub max: Option<serde_json::Value>,
}

/// `row_count: { min, max }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RowCountSpec {
    #[serde(default)]
    pub min: Option<u64>,
    #[serde(default)]
    pub max: Option<u64>,
}

/// How one column is anonymized before anything is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AnonymizeSpec {
    /// HMAC-SHA256 of the value with the environment's `hash_salt` secret,
    /// as 32 hex characters: equal values give equal tokens (joins still
    /// work), and without the salt a token cannot be reversed by trying
    /// candidate values.
    Hash,
    /// Remove the column.
    Drop,
    /// Replace every value with null (the column and its type stay).
    Null,
    /// Keep the last N characters and replace the others with `*`:
    /// `{ mask: 4 }` turns `4111111111111111` into `************1111`.
    Mask(u32),
    /// Truncate dates and timestamps: `{ generalize: month }`.
    Generalize(DatePart),
    /// Round numbers down to a multiple of the bucket: `{ bucket: 10 }`
    /// turns 37 into 30.
    Bucket(f64),
}

// By hand: YAML reads a bare `null` as null, which names the `null` method
// (see weir-spec's deserializer), and the schema must say so too.
impl JsonSchema for AnonymizeSpec {
    fn schema_name() -> Cow<'static, str> {
        "AnonymizeSpec".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "How a column is anonymized before anything is stored: `hash` (HMAC-SHA256 with the environment's `hash_salt` secret, 32 hex characters), `drop` (remove the column), `null` (all values null), `{ mask: N }` (keep the last N characters), `{ generalize: day | month | year }` (truncate dates and timestamps), `{ bucket: B }` (round numbers down to a multiple of B).",
            "oneOf": [
                { "enum": ["hash", "drop", "null"] },
                { "type": "null" },
                {
                    "type": "object",
                    "properties": { "mask": { "type": "integer", "minimum": 0 } },
                    "required": ["mask"],
                    "additionalProperties": false
                },
                {
                    "type": "object",
                    "properties": { "generalize": { "enum": ["day", "month", "year"] } },
                    "required": ["generalize"],
                    "additionalProperties": false
                },
                {
                    "type": "object",
                    "properties": { "bucket": { "type": "number", "exclusiveMinimum": 0 } },
                    "required": ["bucket"],
                    "additionalProperties": false
                }
            ]
        })
    }
}

impl AnonymizeSpec {
    pub fn name(&self) -> &'static str {
        match self {
            AnonymizeSpec::Hash => "hash",
            AnonymizeSpec::Drop => "drop",
            AnonymizeSpec::Null => "null",
            AnonymizeSpec::Mask(_) => "mask",
            AnonymizeSpec::Generalize(_) => "generalize",
            AnonymizeSpec::Bucket(_) => "bucket",
        }
    }
}

/// What a date or timestamp is truncated to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DatePart {
    Day,
    Month,
    Year,
}

impl DatePart {
    pub fn as_str(self) -> &'static str {
        match self {
            DatePart::Day => "day",
            DatePart::Month => "month",
            DatePart::Year => "year",
        }
    }
}

/// What happens when a step's output breaks its contract.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContractsMode {
    /// The step fails (the default, and what production should use).
    #[default]
    Strict,
    /// The violations are recorded as warnings of the task, which succeeds
    /// (the default in an environment named `dev`).
    Warn,
}

/// The data settings of one step, resolved by validation and carried in the
/// plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepData {
    /// The contract named by `schema:`.
    #[serde(default)]
    pub contract: Option<Contract>,
    #[serde(default)]
    pub checks: Vec<CheckSpec>,
    /// Column → method, in the order written.
    #[serde(default)]
    pub anonymize: Vec<(String, AnonymizeSpec)>,
    /// `false`: the step's result is not materialized (see `persist:`).
    #[serde(default = "yes")]
    pub persist: bool,
}

impl Default for StepData {
    fn default() -> Self {
        StepData {
            contract: None,
            checks: Vec::new(),
            anonymize: Vec::new(),
            persist: true,
        }
    }
}

impl StepData {
    /// Whether the step asked for anything data-specific.
    pub fn is_set(&self) -> bool {
        *self != StepData::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{from_node_in, parse_yaml};

    fn spec<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, Vec<weir_types::Diagnostic>> {
        from_node_in(&parse_yaml("t.yaml", text).expect("yaml"), None)
    }

    #[test]
    fn column_types_parse_with_aliases_and_decimals() {
        assert_eq!(ColumnType::parse("INT64"), Ok(ColumnType::Int64));
        assert_eq!(ColumnType::parse("text"), Ok(ColumnType::String));
        assert_eq!(
            ColumnType::parse("decimal(12, 2)"),
            Ok(ColumnType::Decimal(12, 2))
        );
        assert_eq!(
            ColumnType::parse("numeric(5)"),
            Ok(ColumnType::Decimal(5, 0))
        );
        assert!(ColumnType::parse("decimal(40, 2)").is_err());
        assert!(ColumnType::parse("decimal(4, 6)").is_err());
        let e = ColumnType::parse("decimal(10").expect_err("cut by a flow map");
        assert!(e.contains("quote the type"), "{e}");
        let e = ColumnType::parse("strnig").expect_err("unknown");
        assert!(e.contains("did you mean `string`?"), "{e}");
        for (name, ty) in TYPE_NAMES {
            assert_eq!(ColumnType::parse(name), Ok(*ty));
            // The printed name parses back to the same type.
            assert_eq!(ColumnType::parse(&ty.to_string()), Ok(*ty));
        }
        assert_eq!(ColumnType::Decimal(12, 2).to_string(), "decimal(12, 2)");
    }

    #[test]
    fn contracts_read_with_defaults() {
        let c: ContractSpec = spec(
            "columns:\n  id: {type: int64, nullable: false, unique: true}\n  status: {type: string, values: [a, b]}\n",
        )
        .expect("valid");
        let (name, id) = &c.columns.0[0];
        assert_eq!(name, "id");
        assert_eq!(
            (id.ty, id.nullable, id.unique),
            (ColumnType::Int64, false, true)
        );
        assert!(c.columns.0[1].1.nullable);
        let e = spec::<ContractSpec>("columns:\n  id: {type: int46}\n").expect_err("bad type");
        assert!(
            e[0].message.contains("unknown column type"),
            "{}",
            e[0].message
        );
        let e = spec::<ContractSpec>("columns:\n  id: {type: int64, uniq: true}\n")
            .expect_err("bad key");
        assert_eq!(e[0].code, "unknown-key");
    }

    #[test]
    fn checks_are_externally_tagged() {
        let checks: Vec<CheckSpec> = spec(
            "- not_null: [a, b]\n- unique: id\n- accepted_values: {column: s, values: [x, 1]}\n- range: {column: n, min: 0}\n- row_count: {min: 1}\n- expr: n >= 0\n",
        )
        .expect("valid");
        assert_eq!(checks.len(), 6);
        assert_eq!(
            checks[0],
            CheckSpec::NotNull(Columns(vec!["a".into(), "b".into()]))
        );
        assert_eq!(checks[1], CheckSpec::Unique(Columns(vec!["id".into()])));
        assert_eq!(checks[5].describe(), "expr: n >= 0");
        let e = spec::<Vec<CheckSpec>>("- not_nul: [a]\n").expect_err("typo");
        assert_eq!(e[0].help.as_deref(), Some("did you mean `not_null`?"));
        assert!(spec::<Vec<CheckSpec>>("- not_null: []\n").is_err());
        // Plans round-trip through JSON in the run record.
        let json = serde_json::to_value(&checks).expect("json");
        let back: Vec<CheckSpec> = serde_json::from_value(json).expect("back");
        assert_eq!(back, checks);
    }

    #[test]
    fn anonymize_methods() {
        let a: OrderedMap<AnonymizeSpec> = spec(
            "email: hash\nname: drop\nphone: null\ncard: {mask: 4}\nborn: {generalize: year}\nage: {bucket: 10}\n",
        )
        .expect("valid");
        let names: Vec<&str> = a.0.iter().map(|(_, m)| m.name()).collect();
        assert_eq!(
            names,
            ["hash", "drop", "null", "mask", "generalize", "bucket"]
        );
        let e = spec::<OrderedMap<AnonymizeSpec>>("email: hsh\n").expect_err("typo");
        assert_eq!(e[0].help.as_deref(), Some("did you mean `hash`?"));
    }
}
