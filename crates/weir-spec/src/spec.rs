//! What a user writes: the typed form of `weir.yaml`, `pipelines/*.yaml` and
//! `environments/*.yaml`. Doc comments here are the user reference: `weir
//! schema` and the reference docs are generated from them.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::plan::ParamType;

/// A pipeline file: `pipelines/<name>.yaml`, a DAG of steps.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// The pipeline's name. Defaults to the file name without `.yaml`; when
    /// given it must equal it. Letters, digits and `_`, not starting with a
    /// digit: step outputs are datasets named `<pipeline>.<step>`.
    #[serde(default)]
    pub name: Option<String>,
    /// What the pipeline does, shown in `weir list` and the UI.
    #[serde(default)]
    pub description: Option<String>,
    /// Run parameters, by name; templates read them as `{{ params.<name> }}`
    /// and `weir run --param name=value` sets them.
    #[serde(default)]
    pub params: OrderedMap<ParamSpec>,
    /// What starts a run besides `weir run` and the API.
    #[serde(default)]
    pub triggers: Vec<TriggerSpec>,
    /// Default retry policy of every step: a number of retries, or
    /// `{ max, backoff }`. Steps may override it.
    #[serde(default)]
    pub retries: Option<RetriesSpec>,
    /// Default timeout of every step, e.g. `30m`. Steps may override it.
    #[serde(default)]
    pub timeout: Option<DurationSpec>,
    /// Environment (`environments/<name>.yaml`) of every step, unless the
    /// step names its own. Defaults to the run's environment.
    #[serde(default)]
    pub environment: Option<String>,
    /// The steps, by name, in the order they are written. Each has exactly
    /// one action key (`shell:`, `sql:`, ...) plus the common keys.
    #[serde(default)]
    pub steps: StepsSpec,
}

/// Steps by name, in file order. Filled by validation, which deserializes
/// each step on its own so that the errors of every step are reported.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepsSpec(pub Vec<(String, StepSpec)>);

impl<'de> Deserialize<'de> for StepsSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de::IgnoredAny::deserialize(d)?;
        Ok(StepsSpec::default())
    }
}

impl JsonSchema for StepsSpec {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "StepsSpec".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "propertyNames": { "pattern": NAME_PATTERN },
            "additionalProperties": generator.subschema_for::<StepSpec>(),
        })
    }
}

/// Identifiers: used in dataset names and templates (`steps.<name>.value`).
pub(crate) const NAME_PATTERN: &str = "^[A-Za-z_][A-Za-z0-9_]*$";

/// One step: exactly one action key (`shell: echo hi`, `sql: ...`) plus the
/// keys below.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// What the step does.
    #[serde(default)]
    pub description: Option<String>,
    /// Steps that must succeed before this one starts, besides those its
    /// action reads from (SQL tables, `inputs:`).
    #[serde(default)]
    pub needs: Vec<String>,
    /// Retries of this step: a number, or `{ max, backoff }`. Defaults to
    /// the pipeline's `retries:`, else none.
    #[serde(default)]
    pub retries: Option<RetriesSpec>,
    /// Kill the step after this long, e.g. `90s`, `1h30m`. Defaults to the
    /// pipeline's `timeout:`.
    #[serde(default)]
    pub timeout: Option<DurationSpec>,
    /// Environment (`environments/<name>.yaml`) this step runs in.
    #[serde(default)]
    pub environment: Option<String>,
    /// Data steps: the contract the output must match, a file under
    /// `schemas/` (`orders` or `schemas/orders.yaml`). `load` reads CSV and
    /// JSON with its types.
    #[serde(default)]
    pub schema: Option<String>,
    /// Data steps: quality checks on the output; the step fails when one
    /// does not hold.
    #[serde(default)]
    pub checks: Vec<crate::data::CheckSpec>,
    /// Data steps: columns anonymized before the output is stored, e.g.
    /// `{ email: hash, name: drop, card: { mask: 4 } }`. The raw values never
    /// reach the blob store.
    #[serde(default)]
    pub anonymize: OrderedMap<crate::data::AnonymizeSpec>,
    /// Data steps: `false` keeps the result out of storage; steps reading it
    /// run its query as part of their own plan. Default `true`.
    #[serde(default)]
    pub persist: Option<bool>,
    /// The action: its kind (the key) and its spec as written. Set by
    /// validation; the schema lists one property per kind instead.
    #[serde(skip)]
    #[schemars(skip)]
    pub action: Option<ActionSpec>,
}

/// A step's action key and the value under it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionSpec {
    pub kind: String,
    pub spec: serde_json::Value,
}

/// A run parameter.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    /// `string`, `int`, `float` or `bool`; `--param` values are parsed as it.
    #[serde(rename = "type")]
    pub ty: ParamType,
    /// Value when the run does not set one; without it the param is required.
    #[serde(default)]
    pub default: Option<serde_json::Value>,
    /// What the param means, shown by `weir run --help`-like listings and the UI.
    #[serde(default)]
    pub description: Option<String>,
}

/// What starts a run. One key per trigger: `cron`, `file`, `webhook` or `dataset`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TriggerSpec {
    /// A schedule: `cron: "0 3 * * *"` (5 fields, or 6 with seconds first),
    /// or `{ expr, timezone, catchup }`.
    Cron(CronSpec),
    /// A new file matching a glob: `file: { path: "landing/*.csv" }`; its
    /// path is in `{{ trigger.payload }}`.
    File(FileTriggerSpec),
    /// `POST /api/v1/hooks/<namespace>/<pipeline>`; the JSON body is
    /// `{{ trigger.payload }}`.
    Webhook(WebhookTriggerSpec),
    /// A new version of a dataset, e.g. `dataset: crm.customers`.
    Dataset(String),
}

/// A cron schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct CronSpec {
    pub expr: String,
    pub timezone: Option<String>,
    pub catchup: Catchup,
}

/// `cron:` in its map form.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CronDetailSpec {
    /// The cron expression: 5 fields, or 6 with seconds first.
    pub expr: String,
    /// IANA time zone the expression is read in, e.g. `Europe/Paris`. UTC by default.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Ticks missed while weir was down: `none` (default) skips them,
    /// `latest` runs the most recent one, `all` runs each.
    #[serde(default)]
    pub catchup: Catchup,
}

/// What to do with schedule ticks missed while weir was not running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Catchup {
    #[default]
    None,
    Latest,
    All,
}

impl<'de> Deserialize<'de> for CronSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CronSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a cron expression or a map with `expr`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<CronSpec, E> {
                Ok(CronSpec {
                    expr: v.to_string(),
                    timezone: None,
                    catchup: Catchup::None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<CronSpec, A::Error> {
                let d = CronDetailSpec::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(CronSpec {
                    expr: d.expr,
                    timezone: d.timezone,
                    catchup: d.catchup,
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for CronSpec {
    fn schema_name() -> Cow<'static, str> {
        "CronSpec".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A cron expression (`0 3 * * *`), or `{ expr, timezone, catchup }`.",
            "oneOf": [
                { "type": "string", "examples": ["0 3 * * *", "*/15 * * * *"] },
                generator.subschema_for::<CronDetailSpec>(),
            ]
        })
    }
}

/// `file:` trigger.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileTriggerSpec {
    /// Glob of files to watch, relative to the project, e.g. `landing/orders/*.csv`.
    pub path: String,
}

/// `webhook:` trigger; takes no options yet (`webhook: {}`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookTriggerSpec {}

/// Retries: `retries: 2` or `retries: { max: 2, backoff: 30s }`.
#[derive(Debug, Clone, PartialEq)]
pub enum RetriesSpec {
    Count(u32),
    Policy(RetryPolicySpec),
}

/// `retries:` in its map form.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicySpec {
    /// Retries after the first attempt: `2` means up to 3 attempts.
    pub max: u32,
    /// Delay before the first retry, doubled for each further one. `10s` by default.
    #[serde(default)]
    pub backoff: Option<DurationSpec>,
}

impl RetriesSpec {
    pub fn max(&self) -> u32 {
        match self {
            RetriesSpec::Count(n) => *n,
            RetriesSpec::Policy(p) => p.max,
        }
    }

    pub fn backoff(&self) -> Option<&DurationSpec> {
        match self {
            RetriesSpec::Count(_) => None,
            RetriesSpec::Policy(p) => p.backoff.as_ref(),
        }
    }
}

impl<'de> Deserialize<'de> for RetriesSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RetriesSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of retries or a map with `max` and `backoff`")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RetriesSpec, E> {
                u32::try_from(v).map(RetriesSpec::Count).map_err(|_| {
                    E::invalid_value(de::Unexpected::Unsigned(v), &"at most 4294967295 retries")
                })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RetriesSpec, E> {
                u64::try_from(v)
                    .map_err(|_| {
                        E::invalid_value(
                            de::Unexpected::Signed(v),
                            &"a non-negative number of retries",
                        )
                    })
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RetriesSpec, A::Error> {
                RetryPolicySpec::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RetriesSpec::Policy)
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for RetriesSpec {
    fn schema_name() -> Cow<'static, str> {
        "RetriesSpec".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A number of retries, or `{ max, backoff }`.",
            "oneOf": [
                { "type": "integer", "minimum": 0 },
                generator.subschema_for::<RetryPolicySpec>(),
            ]
        })
    }
}

/// A duration as written (`30s`, `5m`, `1h30m`), checked by validation so
/// that a bad one is reported with examples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationSpec(pub String);

impl<'de> Deserialize<'de> for DurationSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DurationSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as `30s` or `5m`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationSpec, E> {
                Ok(DurationSpec(v.to_string()))
            }
            // A bare number is kept so validation can say "add a unit".
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DurationSpec, E> {
                Ok(DurationSpec(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DurationSpec, E> {
                Ok(DurationSpec(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<DurationSpec, E> {
                Ok(DurationSpec(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for DurationSpec {
    fn schema_name() -> Cow<'static, str> {
        "DurationSpec".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A duration: a number with a unit (`ms`, `s`, `m`, `h`, `d`), e.g. `30s`, `5m`, `1h30m`.",
            "type": "string",
            "examples": ["30s", "5m", "1h30m"],
        })
    }
}

/// The project file, `weir.yaml`, at the root of the project.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectSpec {
    /// The project's name.
    pub name: String,
    /// What the project is for.
    #[serde(default)]
    pub description: Option<String>,
    /// Namespace the project's pipelines, datasets and runs belong to.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Environment runs use when none is chosen (`weir run --env`), e.g.
    /// `dev` for `environments/dev.yaml`.
    #[serde(default)]
    pub environment: Option<String>,
}

fn default_namespace() -> String {
    weir_types::DEFAULT_NAMESPACE.to_string()
}

/// An environment file, `environments/<name>.yaml`: configuration shared by
/// the runs and steps that use it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentSpec {
    /// What the environment is for.
    #[serde(default)]
    pub description: Option<String>,
    /// Variables: `{{ env.vars.<name> }}` in templates, and process
    /// environment variables of shell and python steps. Numbers and booleans
    /// are taken as their text.
    #[serde(default)]
    pub vars: OrderedMap<ScalarText>,
    /// Names of the secrets steps in this environment may read as
    /// `{{ secrets.<NAME> }}`. Values live in weir's secret store.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// What a contract violation does: `strict` fails the step, `warn`
    /// records warnings and goes on. Default `warn` in an environment named
    /// `dev`, `strict` everywhere else.
    #[serde(default)]
    pub contracts: Option<crate::data::ContractsMode>,
    /// Every `load` reads at most this many rows (the first ones, so the
    /// sample is the same each run): design pipelines on a sample, run them
    /// in full in production.
    #[serde(default)]
    pub sample: Option<u64>,
    /// The secret (one of `secrets:`) that salts `anonymize: hash`.
    #[serde(default)]
    pub hash_salt: Option<String>,
}

/// A scalar taken as its text: `5`, `true` and `"x"` are all accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalarText(pub String);

impl<'de> Deserialize<'de> for ScalarText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ScalarText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for ScalarText {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "ScalarText".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": ["string", "number", "boolean"] })
    }
}

/// A map that keeps the order entries were written in.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderedMap<V>(pub Vec<(String, V)>);

impl<V> Default for OrderedMap<V> {
    fn default() -> Self {
        OrderedMap(Vec::new())
    }
}

impl<V> OrderedMap<V> {
    pub fn get(&self, key: &str) -> Option<&V> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }
}

impl<'de, V: DeserializeOwned> Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(PhantomData<V>);
        impl<'de, V: DeserializeOwned> Visitor<'de> for MapVisitor<V> {
            type Value = OrderedMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, V>()? {
                    out.push((k, v));
                }
                Ok(OrderedMap(out))
            }
            // `params:` with nothing under it.
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OrderedMap::default())
            }
        }
        d.deserialize_map(MapVisitor(PhantomData))
    }
}

impl<V: JsonSchema> JsonSchema for OrderedMap<V> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        format!("Map_of_{}", V::schema_name()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "additionalProperties": generator.subschema_for::<V>(),
        })
    }
}

/// The field names of a struct, as serde's derive lists them.
pub(crate) fn struct_fields<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Probe<'f>(&'f mut &'static [&'static str]);
    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("probe"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{from_node_in, parse_yaml};

    fn spec<T: DeserializeOwned>(text: &str) -> Result<T, Vec<weir_types::Diagnostic>> {
        from_node_in(&parse_yaml("t.yaml", text).expect("yaml"), None)
    }

    #[test]
    fn retries_take_a_number_or_a_policy() {
        let s: StepSpec = spec("retries: 3\n").expect("valid");
        assert_eq!(s.retries, Some(RetriesSpec::Count(3)));
        let s: StepSpec = spec("retries: {max: 1, backoff: 5s}\n").expect("valid");
        assert_eq!(s.retries.as_ref().map(RetriesSpec::max), Some(1));
        assert_eq!(
            s.retries.and_then(|r| r.backoff().cloned()),
            Some(DurationSpec("5s".into()))
        );
        let e = spec::<StepSpec>("retries: -1\n").expect_err("invalid");
        assert_eq!(e[0].code, "invalid-value");
        let e = spec::<StepSpec>("retries: {max: 1, backof: 5s}\n").expect_err("invalid");
        assert_eq!(e[0].code, "unknown-key");
        assert_eq!(e[0].help.as_deref(), Some("did you mean `backoff`?"));
        let e = spec::<StepSpec>("retries: lots\n").expect_err("invalid");
        assert_eq!(e[0].code, "invalid-type");
    }

    #[test]
    fn triggers_are_externally_tagged() {
        let p: PipelineSpec = spec(
            "triggers:\n  - cron: '0 3 * * *'\n  - cron: {expr: '* * * * *', catchup: latest}\n  - file: {path: 'a/*.csv'}\n  - webhook: {}\n  - dataset: crm.customers\n",
        )
        .expect("valid");
        assert_eq!(p.triggers.len(), 5);
        assert!(matches!(&p.triggers[1], TriggerSpec::Cron(c) if c.catchup == Catchup::Latest));
        let e = spec::<PipelineSpec>("triggers:\n  - crn: x\n").expect_err("invalid");
        assert_eq!(e[0].code, "invalid-value");
        assert_eq!(e[0].help.as_deref(), Some("did you mean `cron`?"));
        let e = spec::<PipelineSpec>("triggers:\n  - file: {}\n").expect_err("invalid");
        assert_eq!(e[0].code, "missing-key");
    }

    #[test]
    fn environment_vars_stringify_scalars() {
        let e: EnvironmentSpec =
            spec("vars: {a: 1, b: true, c: x}\nsecrets: [K]\n").expect("valid");
        let vars: Vec<_> = e
            .vars
            .0
            .iter()
            .map(|(k, v)| (k.as_str(), v.0.as_str()))
            .collect();
        assert_eq!(vars, [("a", "1"), ("b", "true"), ("c", "x")]);
    }

    #[test]
    fn project_namespace_defaults() {
        let p: ProjectSpec = spec("name: demo\n").expect("valid");
        assert_eq!(p.namespace, "default");
        let e = spec::<ProjectSpec>("namespace: x\n").expect_err("invalid");
        assert_eq!(e[0].code, "missing-key");
    }

    #[test]
    fn struct_fields_lists_serde_names() {
        assert_eq!(
            struct_fields::<StepSpec>(),
            [
                "description",
                "needs",
                "retries",
                "timeout",
                "environment",
                "schema",
                "checks",
                "anonymize",
                "persist"
            ]
        );
    }
}
