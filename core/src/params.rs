//! The params codec: how a transaction's params value is stored in the value space.
//!
//! Params are a JSON value (whatever an application puts there, e.g. a tweet object), stored
//! as MessagePack (rmp-serde). A writer encodes them once; the value's id is BLAKE3 of these
//! bytes, and sinks decode them back with [`decode_params`]. A handler that reads the bytes
//! itself uses [`params_reader`], so it refuses exactly what `decode_params` refuses.

use rmp_serde::decode::ReadRefReader;
use serde::Deserialize;
use serde_json::Value;

/// Why stored params bytes do not decode.
#[derive(Debug, thiserror::Error)]
#[error("params are not a MessagePack-encoded JSON value")]
pub struct DecodeParamsError(#[from] rmp_serde::decode::Error);

/// The bytes stored in the value space for a transaction's params: MessagePack (rmp-serde) of
/// the JSON value.
pub fn encode_params(params: &Value) -> Vec<u8> {
    // A serde_json::Value always serializes into a Vec (no I/O, string keys only).
    rmp_serde::to_vec(params).unwrap_or_default()
}

/// The JSON value back from its stored bytes; bytes after the first value are ignored.
pub fn decode_params(bytes: &[u8]) -> Result<Value, DecodeParamsError> {
    Ok(Value::deserialize(&mut params_reader(bytes))?)
}

/// rmp-serde's depth budget for params: at most 127 nested arrays or objects, as deep as JSON
/// text nests (serde_json's limit), so no params value can exhaust a decoding thread's stack
/// (rmp-serde's own default of 1,023 levels does, decoding into a JSON value).
pub const PARAMS_DEPTH: u16 = 128;

/// The deserializer `decode_params` reads params bytes with (strings borrowed from `bytes`).
pub fn params_reader(bytes: &[u8]) -> rmp_serde::Deserializer<ReadRefReader<'_, [u8]>> {
    let mut reader = rmp_serde::Deserializer::from_read_ref(bytes);
    reader.set_max_depth(usize::from(PARAMS_DEPTH));
    reader
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn params_round_trip_through_messagepack() {
        let v = json!({"id":"1","text":"héllo","n":-3,"f":1.5,"a":[true,null],"big":18446744073709551615u64});
        let bytes = encode_params(&v);
        assert_eq!(decode_params(&bytes).expect("decode"), v);
        assert!(decode_params(&[0xc1]).is_err());
    }

    #[test]
    fn bytes_that_hold_no_json_value_are_refused() {
        // Binary, a non-string key, an extension, a truncated map.
        for bytes in [
            &[0xc4, 0x01, 0x00][..],
            &[0x81, 0x01, 0x02],
            &[0xd4, 0x01, 0x00],
            &[0x81],
        ] {
            assert!(decode_params(bytes).is_err(), "{bytes:?}");
        }
    }
}
