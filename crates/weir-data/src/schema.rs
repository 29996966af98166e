//! weir's JSON form of an Arrow schema, as stored with every dataset version
//! and served by the API:
//!
//! ```json
//! {"fields": [{"name": "amount", "type": "Float64", "nullable": true}]}
//! ```
//!
//! `type` is the Arrow `DataType`'s display text (`Timestamp(µs, "UTC")`,
//! `List(nullable Int64)`, `Struct("a": Int64, ...)`), which Arrow parses
//! back, so nested types round-trip (except nested field names containing
//! `"`, which Arrow 59 prints escaped and parses back with the backslash).

use std::str::FromStr;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde_json::{Value, json};

use crate::error::{Error, Result};

/// The JSON form of `schema` (field metadata is not kept).
pub fn schema_to_json(schema: &Schema) -> Value {
    let fields: Vec<Value> = schema
        .fields()
        .iter()
        .map(|f| {
            json!({
                "name": f.name(),
                "type": f.data_type().to_string(),
                "nullable": f.is_nullable(),
            })
        })
        .collect();
    json!({ "fields": fields })
}

/// Parses the JSON form written by [`schema_to_json`].
pub fn schema_from_json(value: &Value) -> Result<SchemaRef> {
    let invalid = |message: String| Error::InvalidSchema { message };
    let fields = value
        .get("fields")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("expected an object with a `fields` array".to_owned()))?;
    let mut out = Vec::with_capacity(fields.len());
    for (i, field) in fields.iter().enumerate() {
        let name = field
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("field {i} has no string `name`")))?;
        let type_text = field
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("field `{name}` has no string `type`")))?;
        let data_type = DataType::from_str(type_text)
            .map_err(|e| invalid(format!("field `{name}` has type `{type_text}`: {e}")))?;
        let nullable = match field.get("nullable") {
            None => true,
            Some(v) => v
                .as_bool()
                .ok_or_else(|| invalid(format!("field `{name}`: `nullable` is not a boolean")))?,
        };
        out.push(Field::new(name, data_type, nullable));
    }
    Ok(Arc::new(Schema::new(out)))
}

/// How the columns of `actual` differ from `expected` by count or by name
/// (types aside), said for an error message; `None` when they line up.
pub(crate) fn column_names_differ(expected: &Schema, actual: &Schema) -> Option<String> {
    let names = |s: &Schema| -> String {
        s.fields()
            .iter()
            .map(|f| format!("`{}`", f.name()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if expected.fields().len() != actual.fields().len() {
        return Some(format!(
            "it has {} columns ({}) instead of {} ({})",
            actual.fields().len(),
            names(actual),
            expected.fields().len(),
            names(expected)
        ));
    }
    expected
        .fields()
        .iter()
        .zip(actual.fields())
        .position(|(e, a)| e.name() != a.name())
        .map(|i| {
            format!(
                "column {} is `{}` instead of `{}`",
                i + 1,
                actual.field(i).name(),
                expected.field(i).name()
            )
        })
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::{IntervalUnit, TimeUnit, UnionFields, UnionMode};

    use super::*;

    fn round_trip(schema: Schema) {
        let json = schema_to_json(&schema);
        let back = schema_from_json(&json).unwrap();
        assert_eq!(back.as_ref(), &schema, "{json}");
        // The JSON text itself is stable too.
        assert_eq!(schema_to_json(&back), json);
    }

    #[test]
    fn flat_types_round_trip() {
        round_trip(Schema::new(vec![
            Field::new("amount", DataType::Float64, true),
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("big", DataType::LargeUtf8, true),
            Field::new("view", DataType::Utf8View, true),
            Field::new("ok", DataType::Boolean, true),
            Field::new("day", DataType::Date32, true),
            Field::new("price", DataType::Decimal128(12, 2), true),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new(
                "naive",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                true,
            ),
            Field::new("t", DataType::Time64(TimeUnit::Microsecond), true),
            Field::new("d", DataType::Duration(TimeUnit::Second), true),
            Field::new("i", DataType::Interval(IntervalUnit::MonthDayNano), true),
            Field::new("raw", DataType::Binary, true),
            Field::new("hash", DataType::FixedSizeBinary(32), true),
            Field::new("nothing", DataType::Null, true),
        ]));
    }

    #[test]
    fn nested_types_round_trip() {
        let item = Arc::new(Field::new("item", DataType::Int64, true));
        let point = DataType::Struct(
            vec![
                Field::new("x", DataType::Float64, false),
                Field::new("label", DataType::Utf8, true),
            ]
            .into(),
        );
        round_trip(Schema::new(vec![
            Field::new("tags", DataType::List(item.clone()), true),
            Field::new("big_tags", DataType::LargeList(item.clone()), true),
            Field::new("pair", DataType::FixedSizeList(item, 2), true),
            Field::new("point", point.clone(), true),
            Field::new(
                "points",
                DataType::List(Arc::new(Field::new("p", point, false))),
                true,
            ),
            Field::new(
                "dict",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                true,
            ),
            Field::new(
                "attrs",
                DataType::Map(
                    Arc::new(Field::new(
                        "entries",
                        DataType::Struct(
                            vec![
                                Field::new("keys", DataType::Utf8, false),
                                Field::new("values", DataType::Int32, true),
                            ]
                            .into(),
                        ),
                        false,
                    )),
                    false,
                ),
                true,
            ),
            Field::new(
                "either",
                DataType::Union(
                    UnionFields::try_new(
                        vec![0, 1],
                        vec![
                            Field::new("a", DataType::Int32, true),
                            Field::new("b", DataType::Utf8, true),
                        ],
                    )
                    .unwrap(),
                    UnionMode::Sparse,
                ),
                true,
            ),
        ]));
    }

    #[test]
    fn names_that_need_quoting_round_trip() {
        round_trip(Schema::new(vec![
            Field::new("Sales Amount (€)", DataType::Float64, true),
            Field::new(
                "s",
                DataType::Struct(
                    vec![Field::new(
                        "odd: name, (with) 'quotes'",
                        DataType::Int8,
                        true,
                    )]
                    .into(),
                ),
                true,
            ),
        ]));
    }

    #[test]
    fn the_json_form_is_documented_shape() {
        let schema = Schema::new(vec![Field::new("amount", DataType::Float64, true)]);
        assert_eq!(
            schema_to_json(&schema),
            json!({"fields": [{"name": "amount", "type": "Float64", "nullable": true}]})
        );
    }

    #[test]
    fn bad_json_is_an_error_not_a_panic() {
        for bad in [
            json!(null),
            json!({"fields": 3}),
            json!({"fields": [{"type": "Int64"}]}),
            json!({"fields": [{"name": "a"}]}),
            json!({"fields": [{"name": "a", "type": "Integer"}]}),
            json!({"fields": [{"name": "a", "type": "List("}]}),
            json!({"fields": [{"name": "a", "type": "Int64", "nullable": "yes"}]}),
        ] {
            let err = schema_from_json(&bad).unwrap_err();
            assert!(matches!(err, Error::InvalidSchema { .. }), "{bad}: {err}");
        }
        // `nullable` defaults to true.
        let schema =
            schema_from_json(&json!({"fields": [{"name": "a", "type": "Int64"}]})).unwrap();
        assert!(schema.field(0).is_nullable());
    }
}
