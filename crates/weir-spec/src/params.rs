//! Run parameters from `--param name=value` text.

use serde_json::{Map, Value};

use crate::plan::{ParamDecl, ParamType, Plan};
use crate::suggest::{did_you_mean, list_names};

impl Plan {
    /// Parses `--param name=value` pairs by each param's declared type and
    /// fills in defaults. Every problem is returned, each saying what, where
    /// and what to do: unknown names, unparsable values, missing required params.
    pub fn resolve_params(
        &self,
        given: &[(String, String)],
    ) -> Result<Map<String, Value>, Vec<String>> {
        let mut out = Map::new();
        let mut errors = Vec::new();
        for (name, text) in given {
            let Some(decl) = self.params.iter().find(|p| &p.name == name) else {
                let hint = match did_you_mean(name, self.params.iter().map(|p| p.name.as_str())) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None if self.params.is_empty() => {
                        format!("pipeline `{}` takes no params", self.pipeline)
                    }
                    None => format!(
                        "its params are {}",
                        list_names(self.params.iter().map(|p| &p.name))
                    ),
                };
                errors.push(format!(
                    "unknown param `{name}` for pipeline `{}`\nhint: {hint}",
                    self.pipeline
                ));
                continue;
            };
            match parse_param(decl.ty, text) {
                Some(v) => {
                    out.insert(name.clone(), v);
                }
                None => errors.push(format!(
                    "param `{name}` of pipeline `{}` is {}, but `{text}` is not {}\nhint: {}",
                    self.pipeline,
                    article(decl.ty),
                    article(decl.ty),
                    example(decl),
                )),
            }
        }
        for decl in &self.params {
            if out.contains_key(&decl.name) {
                continue;
            }
            match &decl.default {
                Some(v) => {
                    out.insert(decl.name.clone(), v.clone());
                }
                None if !given.iter().any(|(n, _)| n == &decl.name) => errors.push(format!(
                    "missing required param `{}` ({}) of pipeline `{}`\nhint: {}",
                    decl.name,
                    decl.ty,
                    self.pipeline,
                    example(decl),
                )),
                None => {}
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }
}

fn article(ty: ParamType) -> &'static str {
    match ty {
        ParamType::String => "a string",
        ParamType::Int => "an integer",
        ParamType::Float => "a number",
        ParamType::Bool => "a boolean",
    }
}

fn example(decl: &ParamDecl) -> String {
    let value = match decl.ty {
        ParamType::String => "text",
        ParamType::Int => "42",
        ParamType::Float => "0.5",
        ParamType::Bool => "true",
    };
    format!("pass `--param {}={value}`", decl.name)
}

/// Parses `text` as `ty`; `None` when it is not one.
pub(crate) fn parse_param(ty: ParamType, text: &str) -> Option<Value> {
    let t = text.trim();
    match ty {
        ParamType::String => Some(Value::String(text.to_string())),
        ParamType::Int => t.parse::<i64>().ok().map(Value::from),
        ParamType::Float => t
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number),
        ParamType::Bool => match t.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Some(Value::Bool(true)),
            "false" | "no" | "0" => Some(Value::Bool(false)),
            _ => None,
        },
    }
}

/// Whether a default written in YAML (as JSON) has type `ty`; ints are
/// accepted where floats are expected.
pub(crate) fn matches_type(ty: ParamType, v: &Value) -> bool {
    match ty {
        ParamType::String => v.is_string(),
        ParamType::Int => v.is_i64() || v.is_u64(),
        ParamType::Float => v.is_number(),
        ParamType::Bool => v.is_boolean(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        let decl = |name: &str, ty, default: Option<Value>| ParamDecl {
            name: name.into(),
            ty,
            default,
            description: None,
        };
        Plan {
            pipeline: "sales".into(),
            description: None,
            file: "pipelines/sales.yaml".into(),
            params: vec![
                decl("min_amount", ParamType::Float, Some(Value::from(0))),
                decl("day", ParamType::String, None),
                decl("limit", ParamType::Int, Some(Value::from(10))),
                decl("dry", ParamType::Bool, Some(Value::from(false))),
            ],
            steps: Vec::new(),
        }
    }

    fn given(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_by_type_and_fills_defaults() {
        let out = plan()
            .resolve_params(&given(&[
                ("day", "2026-01-01"),
                ("limit", "5"),
                ("min_amount", "2.5"),
            ]))
            .expect("valid");
        assert_eq!(
            Value::Object(out),
            serde_json::json!({"day": "2026-01-01", "limit": 5, "min_amount": 2.5, "dry": false})
        );
    }

    #[test]
    fn reports_every_problem() {
        let errs = plan()
            .resolve_params(&given(&[("limt", "5"), ("dry", "maybe"), ("limit", "x")]))
            .expect_err("invalid");
        assert_eq!(errs.len(), 4, "{errs:#?}");
        assert!(errs[0].starts_with("unknown param `limt` for pipeline `sales`"));
        assert!(errs[0].ends_with("hint: did you mean `limit`?"));
        assert!(errs[1].contains("`maybe` is not a boolean"));
        assert!(errs[2].contains("`x` is not an integer"));
        assert!(errs[3].starts_with("missing required param `day` (string)"));
        assert!(errs[3].ends_with("pass `--param day=text`"));
    }

    #[test]
    fn type_matching_accepts_ints_as_floats() {
        assert!(matches_type(ParamType::Float, &Value::from(1)));
        assert!(!matches_type(ParamType::Int, &Value::from(1.5)));
        assert!(!matches_type(ParamType::String, &Value::from(1)));
    }
}
