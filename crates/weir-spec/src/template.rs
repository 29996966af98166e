//! Templates in step specs (`{{ params.x }}`, `{{ run.id }}`): static
//! checking for `weir check` and strict rendering at run time.
//!
//! An undefined name is always an error, never an empty string: a shell
//! step running `rm -rf {{ params.dir }}/` must not run with an empty path.

use std::collections::BTreeMap;

use minijinja::{Environment, UndefinedBehavior, Value};
use serde_json::Value as Json;

/// Everything a template may read at run time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TemplateContext {
    /// Resolved run parameters (`{{ params.x }}`).
    pub params: serde_json::Map<String, Json>,
    /// The environment's variables (`{{ env.vars.x }}`).
    pub env_vars: BTreeMap<String, String>,
    /// Secret values by name (`{{ secrets.NAME }}`); only those the
    /// environment declares.
    pub secrets: BTreeMap<String, String>,
    pub run: RunInfo,
    /// What the trigger delivered (webhook body, file path...), `null` for
    /// manual runs (`{{ trigger.payload }}`).
    pub trigger_payload: Json,
    /// Output values of upstream steps by step name (`{{ steps.a.value }}`).
    pub steps: BTreeMap<String, Json>,
}

/// `{{ run.* }}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunInfo {
    pub id: i64,
    pub pipeline: String,
    pub namespace: String,
    /// The schedule tick or start time the run stands for (RFC 3339).
    pub logical_date: String,
    /// 1 for the first attempt of the task.
    pub attempt: u32,
    /// User, `schedule`, `webhook`, ...
    pub started_by: String,
}

/// The `run.*` names a template may use.
pub(crate) const RUN_FIELDS: &[&str] = &[
    "id",
    "pipeline",
    "namespace",
    "logical_date",
    "attempt",
    "started_by",
];

/// Globals minijinja provides, which templates may call (`range(3)`).
pub(crate) const BUILTIN_GLOBALS: &[&str] = &[
    "range",
    "dict",
    "namespace",
    "debug",
    "cycler",
    "joiner",
    "lipsum",
];

/// Why a template could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template `{template}` does not parse: {message}")]
    Syntax { template: String, message: String },
    #[error("`{name}` is not defined in template `{template}`")]
    Undefined { template: String, name: String },
    #[error("template `{template}` failed: {message}")]
    Render { template: String, message: String },
}

impl TemplateContext {
    fn to_json(&self) -> Json {
        let steps: serde_json::Map<String, Json> = self
            .steps
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::json!({ "value": v })))
            .collect();
        serde_json::json!({
            "params": self.params,
            "env": { "vars": self.env_vars },
            "secrets": self.secrets,
            "run": {
                "id": self.run.id,
                "pipeline": self.run.pipeline,
                "namespace": self.run.namespace,
                "logical_date": self.run.logical_date,
                "attempt": self.run.attempt,
                "started_by": self.run.started_by,
            },
            "trigger": { "payload": self.trigger_payload },
            "steps": steps,
        })
    }
}

pub(crate) fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // A `|` block scalar ends with a newline a shell script may rely on.
    if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build()
    {
        env.set_syntax(syntax);
    }
    env
}

/// Whether `s` contains template syntax at all.
pub(crate) fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// Renders one string. Undefined names are errors.
pub fn render_str(template: &str, cx: &TemplateContext) -> Result<String, TemplateError> {
    if !is_template(template) {
        return Ok(template.to_string());
    }
    let json = cx.to_json();
    render_with(&environment(), template, &json, &to_value(&json))
}

/// Renders every string inside `value` (object keys are left as written).
pub fn render_value(value: &Json, cx: &TemplateContext) -> Result<Json, TemplateError> {
    let env = environment();
    let json = cx.to_json();
    let ctx = to_value(&json);
    render_json(&env, value, &json, &ctx)
}

fn render_json(
    env: &Environment<'_>,
    value: &Json,
    json: &Json,
    ctx: &Value,
) -> Result<Json, TemplateError> {
    Ok(match value {
        Json::String(s) if is_template(s) => Json::String(render_with(env, s, json, ctx)?),
        Json::Array(items) => Json::Array(
            items
                .iter()
                .map(|v| render_json(env, v, json, ctx))
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(map) => Json::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_json(env, v, json, ctx)?)))
                .collect::<Result<_, TemplateError>>()?,
        ),
        other => other.clone(),
    })
}

fn render_with(
    env: &Environment<'_>,
    template: &str,
    json: &Json,
    ctx: &Value,
) -> Result<String, TemplateError> {
    let shown = shorten(template);
    let tmpl = env
        .template_from_str(template)
        .map_err(|e| TemplateError::Syntax {
            template: shown.clone(),
            message: error_text(&e),
        })?;
    tmpl.render(ctx).map_err(|e| {
        if e.kind() == minijinja::ErrorKind::UndefinedError {
            let mut names: Vec<String> = tmpl.undeclared_variables(true).into_iter().collect();
            names.sort();
            if let Some(name) = names.into_iter().find(|n| !resolves(json, n)) {
                return TemplateError::Undefined {
                    template: shown.clone(),
                    name,
                };
            }
        }
        TemplateError::Render {
            template: shown.clone(),
            message: error_text(&e),
        }
    })
}

/// Whether a dotted path names something in the context.
fn resolves(json: &Json, path: &str) -> bool {
    let mut at = json;
    for part in path.split('.') {
        if BUILTIN_GLOBALS.contains(&part) && std::ptr::eq(at, json) {
            return true;
        }
        match at.get(part) {
            Some(next) => at = next,
            None => return false,
        }
    }
    true
}

/// minijinja's message without its "(in <string>:1)" suffix.
pub(crate) fn error_text(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    }
}

fn shorten(s: &str) -> String {
    let one_line = s.trim().replace('\n', " ");
    if one_line.chars().count() > 60 {
        let mut out: String = one_line.chars().take(57).collect();
        out.push_str("...");
        out
    } else {
        one_line
    }
}

fn to_value(json: &Json) -> Value {
    match json {
        Json::Null => Value::from(()),
        Json::Bool(b) => Value::from(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(items) => Value::from(items.iter().map(to_value).collect::<Vec<_>>()),
        Json::Object(map) => Value::from(
            map.iter()
                .map(|(k, v)| (k.clone(), to_value(v)))
                .collect::<BTreeMap<String, Value>>(),
        ),
    }
}

/// What `weir check` learns from one template string.
pub(crate) enum TemplateScan {
    /// Dotted variable paths it reads, sorted.
    Variables(Vec<String>),
    /// It does not parse: message and, when known, the byte range in the string.
    Syntax(String, Option<std::ops::Range<usize>>),
}

pub(crate) fn scan(env: &Environment<'_>, template: &str) -> TemplateScan {
    match env.template_from_str(template) {
        Ok(t) => {
            let mut vars: Vec<String> = t.undeclared_variables(true).into_iter().collect();
            vars.sort();
            TemplateScan::Variables(vars)
        }
        Err(e) => TemplateScan::Syntax(error_text(&e), e.range()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx() -> TemplateContext {
        let mut cx = TemplateContext::default();
        cx.params.insert("n".into(), Json::from(3));
        cx.params.insert("who".into(), Json::from("ada"));
        cx.env_vars.insert("region".into(), "eu".into());
        cx.secrets.insert("TOKEN".into(), "s3cret".into());
        cx.run.id = 42;
        cx.run.logical_date = "2026-01-01T00:00:00Z".into();
        cx.trigger_payload = serde_json::json!({"path": "a.csv"});
        cx.steps.insert("up".into(), serde_json::json!({"rows": 7}));
        cx
    }

    #[test]
    fn renders_every_namespace() {
        let out = render_str(
            "{{ params.who }} {{ params.n * 2 }} {{ env.vars.region }} {{ secrets.TOKEN }} {{ run.id }} {{ trigger.payload.path }} {{ steps.up.value.rows }}",
            &cx(),
        )
        .expect("renders");
        assert_eq!(out, "ada 6 eu s3cret 42 a.csv 7");
    }

    #[test]
    fn keeps_trailing_newline_and_plain_strings() {
        assert_eq!(
            render_str("echo {{ run.id }}\n", &cx()).expect("ok"),
            "echo 42\n"
        );
        assert_eq!(
            render_str("no braces }}", &cx()).expect("ok"),
            "no braces }}"
        );
    }

    #[test]
    fn undefined_names_are_errors_naming_the_name() {
        let e = render_str("rm -rf {{ params.dir }}/", &cx()).expect_err("undefined");
        match e {
            TemplateError::Undefined { name, .. } => assert_eq!(name, "params.dir"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(render_str("{{ nope }}", &cx()).is_err());
        assert!(render_str("{{ steps.other.value }}", &cx()).is_err());
    }

    #[test]
    fn syntax_errors_are_reported() {
        let e = render_str("{{ params.n ", &cx()).expect_err("syntax");
        assert!(matches!(e, TemplateError::Syntax { .. }), "{e:?}");
    }

    #[test]
    fn render_value_renders_nested_strings() {
        let v = serde_json::json!({"cmd": "echo {{ params.who }}", "args": ["{{ run.id }}", 1], "{{ k }}": true});
        let out = render_value(&v, &cx()).expect("renders");
        assert_eq!(
            out,
            serde_json::json!({"cmd": "echo ada", "args": ["42", 1], "{{ k }}": true})
        );
    }

    #[test]
    fn scan_lists_nested_paths() {
        let env = environment();
        match scan(
            &env,
            "{% for x in range(2) %}{{ x }}{{ params.a }}{% endfor %}{{ run.id }}",
        ) {
            TemplateScan::Variables(v) => assert_eq!(v, ["params.a", "range", "run.id"]),
            TemplateScan::Syntax(m, _) => panic!("{m}"),
        }
        assert!(matches!(scan(&env, "{{ a "), TemplateScan::Syntax(..)));
    }
}
