//! The subset of OpenAPI v3 structural-schema validation that our CRDs use, with the API
//! server's wording: type, required, enum, minLength/maxLength, minItems/maxItems,
//! `x-kubernetes-list-type: set` and unknown fields (strict field validation). The CEL rules are
//! run by kube's CEL engine (see [`super::validate`]).

use super::documents::field_path;
use serde_json::Value;

/// One reason a value breaks its schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Where: `spec.products[1]`.
    pub path: String,
    /// The API server's message, with a hint on what to do.
    pub message: String,
}

/// The top-level fields every object has without the schema naming them.
const OBJECT_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// Checks a whole object (its `status` is not checked: the API server ignores it on create).
pub fn check_object(schema: &Value, object: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    check(schema, object, "", &mut out);
    out
}

fn check(schema: &Value, value: &Value, path: &str, out: &mut Vec<Violation>) {
    let nullable = schema.get("nullable") == Some(&Value::Bool(true));
    if value.is_null() && (nullable || path.is_empty()) {
        return;
    }
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
        && schema.get("type").is_none()
    {
        return;
    }
    let expected = schema.get("type").and_then(Value::as_str).unwrap_or("");
    if !has_type(value, expected) {
        let noun = match expected {
            "array" => "list",
            "object" => "map",
            other => other,
        };
        out.push(Violation {
            path: path.to_owned(),
            message: format!(".{path}: expected {noun}, got {}", type_name(value)),
        });
        return;
    }
    match value {
        Value::Object(map) => check_map(schema, map, path, out),
        Value::Array(items) => check_list(schema, items, path, out),
        Value::String(text) => check_string(schema, text, path, out),
        _ => {}
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let supported = allowed
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        out.push(invalid(
            path,
            format!("Unsupported value: {value}: supported values: {supported}"),
        ));
    }
}

fn check_map(
    schema: &Value,
    map: &serde_json::Map<String, Value>,
    path: &str,
    out: &mut Vec<Violation>,
) {
    let properties = schema.get("properties").and_then(Value::as_object);
    for required in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if map.get(required).is_none_or(Value::is_null) {
            let described = properties
                .and_then(|p| p.get(required))
                .and_then(|s| s.get("description"))
                .and_then(Value::as_str)
                .map(|d| format!(" (add it: {})", first_paragraph(d)))
                .unwrap_or_default();
            out.push(invalid(
                &field_path(path, required),
                format!("Required value{described}"),
            ));
        }
    }
    let additional = schema.get("additionalProperties");
    for (key, child) in map {
        let child_path = field_path(path, key);
        if path.is_empty() && key == "status" {
            continue;
        }
        match (properties.and_then(|p| p.get(key)), additional) {
            (Some(child_schema), _) => check(child_schema, child, &child_path, out),
            (None, Some(Value::Object(_))) => {
                check(additional.unwrap_or(&Value::Null), child, &child_path, out)
            }
            (None, Some(Value::Bool(true))) => {}
            (None, _) if path.is_empty() && OBJECT_FIELDS.contains(&key.as_str()) => {}
            (None, _) if properties.is_none() => {}
            (None, _) => {
                let known = properties
                    .map(|p| p.keys().cloned().collect::<Vec<_>>().join(", "))
                    .unwrap_or_default();
                out.push(Violation {
                    path: child_path.clone(),
                    message: format!(
                        ".{child_path}: field not declared in schema (remove it or fix its \
                         spelling; known fields here: {known})"
                    ),
                });
            }
        }
    }
}

fn check_list(schema: &Value, items: &[Value], path: &str, out: &mut Vec<Violation>) {
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
        && items.len() as u64 > max
    {
        out.push(invalid(
            path,
            format!("Too many: {}: must have at most {max} items", items.len()),
        ));
    }
    if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
        && (items.len() as u64) < min
    {
        out.push(invalid(
            path,
            format!(
                "Invalid value: {}: {path} in body should have at least {min} items",
                items.len()
            ),
        ));
    }
    if schema.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("set") {
        for (i, item) in items.iter().enumerate() {
            if items[..i].contains(item) {
                out.push(Violation {
                    path: path.to_owned(),
                    message: format!(
                        ".{path}: duplicate entries for key [={item}] (list each value once)"
                    ),
                });
            }
        }
    }
    if let Some(item_schema) = schema.get("items") {
        for (i, item) in items.iter().enumerate() {
            check(item_schema, item, &format!("{path}[{i}]"), out);
        }
    }
}

fn check_string(schema: &Value, text: &str, path: &str, out: &mut Vec<Violation>) {
    let length = text.chars().count() as u64;
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && length > max
    {
        out.push(invalid(
            path,
            format!("Too long: may not be more than {max} bytes"),
        ));
    }
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && length < min
    {
        out.push(invalid(
            path,
            format!("Invalid value: {text:?}: {path} in body should be at least {min} chars long"),
        ));
    }
}

fn invalid(path: &str, detail: String) -> Violation {
    Violation {
        path: path.to_owned(),
        message: format!("{path}: {detail}"),
    }
}

fn has_type(value: &Value, expected: &str) -> bool {
    match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        _ => true,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}

fn first_paragraph(description: &str) -> &str {
    description
        .split("\n\n")
        .next()
        .unwrap_or_default()
        .trim_end_matches('.')
}

/// The schema of the field at `path` (`spec.products[1]`), if the schema declares it.
pub fn at<'s>(schema: &'s Value, path: &str) -> Option<&'s Value> {
    path.split(['.', '['])
        .filter(|s| !s.is_empty())
        .try_fold(schema, |schema, segment| {
            if segment.ends_with(']') {
                schema.get("items")
            } else {
                schema.get("properties")?.get(segment)
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "required": ["spec"],
            "properties": {"spec": {
                "type": "object",
                "required": ["id"],
                "properties": {
                    "id": {"type": "string", "maxLength": 3, "description": "The ID. More."},
                    "tags": {"type": "array", "maxItems": 2, "x-kubernetes-list-type": "set",
                             "items": {"type": "string", "enum": ["a", "b"]}},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                }
            }}
        })
    }

    fn messages(object: Value) -> Vec<String> {
        check_object(&schema(), &object)
            .into_iter()
            .map(|v| v.message)
            .collect()
    }

    #[test]
    fn a_valid_object_passes() {
        let object = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n"},
                            "spec": {"id": "abc", "tags": ["a"], "labels": {"k": "v"}},
                            "status": {"anything": 1}});
        assert_eq!(messages(object), Vec::<String>::new());
    }

    #[test]
    fn speaks_like_the_api_server() {
        let object = json!({"spec": {"tags": ["a", "c", "a"], "labels": {"k": 1}, "extra": 1}});
        assert_eq!(
            messages(object),
            [
                "spec.id: Required value (add it: The ID. More)",
                ".spec.extra: field not declared in schema (remove it or fix its spelling; \
                 known fields here: id, labels, tags)",
                ".spec.labels.k: expected string, got number",
                "spec.tags: Too many: 3: must have at most 2 items",
                ".spec.tags: duplicate entries for key [=\"a\"] (list each value once)",
                "spec.tags[1]: Unsupported value: \"c\": supported values: \"a\", \"b\"",
            ]
        );
    }

    #[test]
    fn wrong_shapes_are_flagged() {
        let found = check_object(&schema(), &json!({"spec": {"id": "a", "tags": "a"}}));
        assert_eq!(found[0].message, ".spec.tags: expected list, got string");
    }
}
