//! Params as JSON for the page: MessagePack of a JSON value (what `replikativ` commits) back to
//! JSON, within the realizer's depth bound. Binary strings become arrays of numbers; keys that
//! are not strings are written as their JSON text.

use rmpv::Value as Mp;
use serde_json::{Map, Number, Value};

/// The deepest nesting accepted, as in the node's realizer.
const MAX_DEPTH: usize = 128;

/// `params` as JSON, or `None` when they are not MessagePack (or nest too deep).
pub fn params_json(params: &[u8]) -> Option<Value> {
    let value = rmpv::decode::read_value_with_max_depth(&mut &params[..], MAX_DEPTH).ok()?;
    Some(convert(value))
}

fn convert(v: Mp) -> Value {
    match v {
        Mp::Nil | Mp::Ext(..) => Value::Null,
        Mp::Boolean(b) => Value::Bool(b),
        Mp::Integer(i) => i
            .as_i64()
            .map(Number::from)
            .or_else(|| i.as_u64().map(Number::from))
            .map_or(Value::Null, Value::Number),
        Mp::F32(f) => Number::from_f64(f64::from(f)).map_or(Value::Null, Value::Number),
        Mp::F64(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        Mp::String(s) => s.into_str().map_or(Value::Null, Value::String),
        Mp::Binary(b) => Value::Array(b.into_iter().map(Value::from).collect()),
        Mp::Array(items) => Value::Array(items.into_iter().map(convert).collect()),
        Mp::Map(entries) => {
            let mut map = Map::new();
            for (k, v) in entries {
                let key = match k {
                    Mp::String(s) => s.into_str().unwrap_or_default(),
                    other => convert(other).to_string(),
                };
                map.insert(key, convert(v));
            }
            Value::Object(map)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_committed_as_messagepack_reads_back_the_same() {
        let json = serde_json::json!({"id": "1", "n": -3, "big": u64::MAX, "f": 1.5,
            "nested": {"list": [true, null, "x"]}, "empty": {}});
        let bytes = rmp_serde::to_vec(&json).expect("msgpack");
        assert_eq!(params_json(&bytes), Some(json));
        assert_eq!(params_json(&[0x92, 0x01]), None, "truncated");
        let mut deep = vec![0x91u8; 200];
        deep.push(0xc0);
        assert_eq!(params_json(&deep), None, "too deep");
    }
}
