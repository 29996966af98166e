//! The JSON Schema of a pipeline file, generated from the `*Spec` types and
//! their doc comments, with one property per action kind of the catalog.

use serde_json::{Map, Value, json};

use crate::catalog::ActionCatalog;
use crate::spec::PipelineSpec;

/// JSON Schema (draft 2020-12) of `pipelines/*.yaml`, for editors and `weir schema`.
pub fn pipeline_schema(catalog: &dyn ActionCatalog) -> Value {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<PipelineSpec>();
    let mut root = schema.to_value();
    let mut action_defs = Map::new();
    let mut kinds = catalog.kinds();
    kinds.sort_unstable();
    let mut properties = Map::new();
    for kind in &kinds {
        let mut action = catalog.spec_schema(kind).map_or_else(
            || json!({ "description": format!("A `{kind}` action.") }),
            schemars::Schema::to_value,
        );
        if let Some(obj) = action.as_object_mut() {
            obj.remove("$schema");
            // The action's own definitions join the root's, where its
            // `#/$defs/...` references resolve.
            if let Some(Value::Object(defs)) = obj.remove("$defs") {
                for (name, def) in defs {
                    action_defs.entry(name).or_insert(def);
                }
            }
        }
        properties.insert((*kind).to_string(), action);
    }
    if let Some(root_obj) = root.as_object_mut() {
        root_obj.insert("title".into(), json!("weir pipeline"));
        // Validation requires it; serde only defaults it so that each step
        // can be read on its own.
        root_obj.insert("required".into(), json!(["steps"]));
        let defs = root_obj
            .entry("$defs")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(defs) = defs.as_object_mut() {
            for (name, def) in action_defs {
                defs.entry(name).or_insert(def);
            }
            if let Some(Value::Object(step)) = defs.get_mut("StepSpec") {
                if let Some(Value::Object(props)) = step.get_mut("properties") {
                    props.extend(properties);
                }
                if !kinds.is_empty() {
                    let one_of: Vec<Value> =
                        kinds.iter().map(|k| json!({ "required": [k] })).collect();
                    step.insert("oneOf".into(), Value::Array(one_of));
                }
            }
        }
    }
    root
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_catalog::ShellCatalog;

    #[test]
    fn schema_documents_fields_and_action_kinds() {
        let schema = pipeline_schema(&ShellCatalog);
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        let step = &schema["$defs"]["StepSpec"];
        assert_eq!(step["properties"]["shell"]["type"], "string");
        assert_eq!(step["oneOf"], json!([{ "required": ["shell"] }]));
        assert_eq!(step["additionalProperties"], false);
        assert!(
            step["properties"]["needs"]["description"]
                .as_str()
                .is_some_and(|d| d.contains("must succeed")),
            "{step:#}"
        );
        assert!(schema["properties"]["steps"].is_object());
        assert_eq!(schema["required"], json!(["steps"]));
        assert!(schema["properties"]["triggers"].is_object());
    }
}
