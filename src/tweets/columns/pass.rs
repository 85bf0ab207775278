//! One pass of rmp-serde over MessagePack bytes that writes the value as compact JSON, as
//! serde_json writes the same value, and keeps only the parts a [`Keep`] asks for, strings
//! borrowed from the bytes. It reads with [`params_reader`] and refuses what `decode_params`
//! refuses: binary, extensions, non-string keys, invalid UTF-8, the reserved marker, too deep
//! a nesting (see [`PARAMS_DEPTH`](crate::realize::params::PARAMS_DEPTH)).

use std::fmt;

use rmpv::ValueRef;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::realize::params::params_reader;

/// The value of `bytes` (bytes after it are ignored) as compact JSON, and what `keep` kept.
pub(super) fn read(
    bytes: &[u8],
    keep: Keep,
) -> Result<(Kept<'_>, String), rmp_serde::decode::Error> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 4);
    let mut de = params_reader(bytes);
    let kept = Pass {
        out: &mut out,
        sep: None,
        keep,
    }
    .deserialize(&mut de)?;
    // Only serde_json's output and ASCII punctuation were written.
    let json =
        String::from_utf8(out).map_err(|e| rmp_serde::decode::Error::Syntax(e.to_string()))?;
    Ok((kept, json))
}

/// What the pass keeps of a value, besides writing it.
#[derive(Clone, Copy)]
pub(super) enum Keep {
    /// A scalar (a string borrowed); an array or object is only written.
    Scalar,
    /// The whole value (an id, compared as a MessagePack value).
    Whole,
    /// The named fields of an object, each kept as its entry says.
    Fields(&'static [(&'static str, Keep)]),
}

/// What the pass kept of a value.
pub(super) enum Kept<'a> {
    /// A scalar, or the whole value where that was asked for.
    Value(ValueRef<'a>),
    /// An object's asked-for fields, by their place in `names`; of a repeated key the last
    /// occurrence counts, as in a JSON object.
    Fields {
        names: &'static [(&'static str, Keep)],
        values: Vec<Option<Kept<'a>>>,
    },
    /// An array or object of which nothing was asked.
    Written,
}

impl<'a> Kept<'a> {
    /// The field kept under `name` of an object.
    pub(super) fn get(&self, name: &str) -> Option<&Kept<'a>> {
        let Kept::Fields { names, values } = self else {
            return None;
        };
        let at = names.iter().position(|(n, _)| *n == name)?;
        values.get(at)?.as_ref()
    }
}

/// The scalar or whole value kept under `name`.
pub(super) fn value_of<'k, 'a>(object: &'k Kept<'a>, name: &str) -> Option<&'k ValueRef<'a>> {
    match object.get(name)? {
        Kept::Value(v) => Some(v),
        _ => None,
    }
}

/// Reads from a slice always borrow; a copied string could not be kept.
const COPIED: &str = "a string was copied instead of borrowed from the params bytes";

fn json<E: de::Error>(
    out: &mut Vec<u8>,
    value: &(impl serde::Serialize + ?Sized),
) -> Result<(), E> {
    serde_json::to_writer(out, value).map_err(E::custom)
}

/// Writes one value as compact JSON, as serde_json writes the same value, and keeps what
/// `keep` asks for. `sep` (a `,` between items) is written first.
struct Pass<'o> {
    out: &'o mut Vec<u8>,
    sep: Option<u8>,
    keep: Keep,
}

impl<'de> DeserializeSeed<'de> for Pass<'_> {
    type Value = Kept<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Kept<'de>, D::Error> {
        let Pass { out, sep, keep } = self;
        if let Keep::Whole = keep {
            return Whole { out, sep }.deserialize(d).map(Kept::Value);
        }
        out.extend(sep);
        d.deserialize_any(Pass {
            out,
            sep: None,
            keep,
        })
    }
}

impl<'de> Visitor<'de> for Pass<'_> {
    type Value = Kept<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Kept<'de>, E> {
        Whole::at(self.out).visit_unit().map(Kept::Value)
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Kept<'de>, E> {
        Whole::at(self.out).visit_bool(b).map(Kept::Value)
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Kept<'de>, E> {
        Whole::at(self.out).visit_u64(n).map(Kept::Value)
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Kept<'de>, E> {
        Whole::at(self.out).visit_i64(n).map(Kept::Value)
    }

    fn visit_f32<E: de::Error>(self, f: f32) -> Result<Kept<'de>, E> {
        Whole::at(self.out).visit_f32(f).map(Kept::Value)
    }

    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Kept<'de>, E> {
        Whole::at(self.out).visit_f64(f).map(Kept::Value)
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Kept<'de>, E> {
        Whole::at(self.out).visit_borrowed_str(s).map(Kept::Value)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Kept<'de>, E> {
        Err(E::custom(COPIED))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kept<'de>, A::Error> {
        let out = self.out;
        out.push(b'[');
        let mut sep = None;
        let keep = Keep::Scalar;
        while (seq.next_element_seed(Pass { out, sep, keep })?).is_some() {
            sep = Some(b',');
        }
        out.push(b']');
        Ok(Kept::Written)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kept<'de>, A::Error> {
        let out = self.out;
        let names = match self.keep {
            Keep::Fields(names) => names,
            Keep::Scalar | Keep::Whole => &[],
        };
        let mut values: Vec<Option<Kept<'de>>> = names.iter().map(|_| None).collect();
        out.push(b'{');
        let mut sep = None;
        while let Some(key) = map.next_key_seed(Key { out, sep })? {
            sep = Some(b',');
            let at = names.iter().position(|(n, _)| *n == key);
            let keep = at
                .and_then(|i| names.get(i))
                .map_or(Keep::Scalar, |(_, k)| *k);
            let value = map.next_value_seed(Pass {
                out,
                sep: None,
                keep,
            })?;
            if let Some(slot) = at.and_then(|i| values.get_mut(i)) {
                *slot = Some(value);
            }
        }
        out.push(b'}');
        Ok(if names.is_empty() {
            Kept::Written
        } else {
            Kept::Fields { names, values }
        })
    }
}

/// Writes one value as compact JSON and returns it whole (see [`Pass`]).
struct Whole<'o> {
    out: &'o mut Vec<u8>,
    sep: Option<u8>,
}

impl<'o> Whole<'o> {
    fn at(out: &'o mut Vec<u8>) -> Whole<'o> {
        Whole { out, sep: None }
    }
}

impl<'de> DeserializeSeed<'de> for Whole<'_> {
    type Value = ValueRef<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ValueRef<'de>, D::Error> {
        self.out.extend(self.sep);
        d.deserialize_any(Whole::at(self.out))
    }
}

impl<'de> Visitor<'de> for Whole<'_> {
    type Value = ValueRef<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<ValueRef<'de>, E> {
        self.out.extend_from_slice(b"null");
        Ok(ValueRef::Nil)
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<ValueRef<'de>, E> {
        json(self.out, &b)?;
        Ok(ValueRef::Boolean(b))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<ValueRef<'de>, E> {
        json(self.out, &n)?;
        Ok(ValueRef::Integer(n.into()))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<ValueRef<'de>, E> {
        json(self.out, &n)?;
        Ok(ValueRef::Integer(n.into()))
    }

    // A JSON value holds no NaN or infinity; serde_json writes them as null.
    fn visit_f32<E: de::Error>(self, f: f32) -> Result<ValueRef<'de>, E> {
        json(self.out, &f64::from(f))?;
        Ok(ValueRef::F32(f))
    }

    fn visit_f64<E: de::Error>(self, f: f64) -> Result<ValueRef<'de>, E> {
        json(self.out, &f)?;
        Ok(ValueRef::F64(f))
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<ValueRef<'de>, E> {
        json(self.out, s)?;
        Ok(ValueRef::String(s.into()))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<ValueRef<'de>, E> {
        Err(E::custom(COPIED))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ValueRef<'de>, A::Error> {
        let out = self.out;
        out.push(b'[');
        let mut items = Vec::new();
        loop {
            let sep = (!items.is_empty()).then_some(b',');
            match seq.next_element_seed(Whole { out, sep })? {
                Some(item) => items.push(item),
                None => break,
            }
        }
        out.push(b']');
        Ok(ValueRef::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ValueRef<'de>, A::Error> {
        let out = self.out;
        out.push(b'{');
        let mut entries = Vec::new();
        loop {
            let sep = (!entries.is_empty()).then_some(b',');
            let Some(key) = map.next_key_seed(Key { out, sep })? else {
                break;
            };
            let value = map.next_value_seed(Whole::at(out))?;
            entries.push((ValueRef::String(key.into()), value));
        }
        out.push(b'}');
        Ok(ValueRef::Map(entries))
    }
}

/// Writes an object's key (a string, as JSON requires) and its `:`.
struct Key<'o> {
    out: &'o mut Vec<u8>,
    sep: Option<u8>,
}

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = &'de str;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<&'de str, D::Error> {
        self.out.extend(self.sep);
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = &'de str;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<&'de str, E> {
        json(self.out, key)?;
        self.out.push(b':');
        Ok(key)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<&'de str, E> {
        Err(E::custom(COPIED))
    }
}
