//! AMF values as JSON, so REST callers and event subscribers see exactly the
//! objects a Flash client gets (AMF0 §2, AMF3 §3 value types).

use serde_json::{Map, Number, Value};
use sono_rtmp::AmfValue;

/// The JSON form of an AMF value. Numbers that are whole stay integers
/// (`status_code: 4`, not `4.0`); values JSON cannot carry become `null`.
pub fn to_json(value: &AmfValue) -> Value {
    match value {
        AmfValue::Null | AmfValue::Undefined => Value::Null,
        AmfValue::Boolean(b) => Value::Bool(*b),
        AmfValue::Number(n) | AmfValue::Date(n) => number(*n),
        AmfValue::String(s) | AmfValue::Xml(s) => Value::String(s.clone()),
        AmfValue::Object(props)
        | AmfValue::EcmaArray(props)
        | AmfValue::TypedObject {
            properties: props, ..
        } => {
            let mut map = Map::new();
            for (k, v) in props {
                map.insert(k.clone(), to_json(v));
            }
            Value::Object(map)
        }
        AmfValue::StrictArray(items) => Value::Array(items.iter().map(to_json).collect()),
        AmfValue::ByteArray(_) => Value::Null,
    }
}

fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Value::from(n as i64)
    } else {
        Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_objects_become_json_objects() {
        let info = AmfValue::object([
            ("level", AmfValue::from("status")),
            ("status_code", AmfValue::Number(4.0)),
            ("ratio", AmfValue::Number(0.5)),
            ("none", AmfValue::Null),
        ]);
        assert_eq!(
            to_json(&info),
            serde_json::json!({"level": "status", "status_code": 4, "ratio": 0.5, "none": null})
        );
        assert_eq!(to_json(&AmfValue::Number(f64::NAN)), Value::Null);
    }
}
