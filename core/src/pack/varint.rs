//! LEB128 varints of the pack header: at most 10 bytes, no overlong zero tail.

use super::PackError;

/// Appends `v` as a LEB128 varint.
#[cfg_attr(not(feature = "native"), allow(dead_code))]
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a LEB128 varint from the front of `rest`.
pub(super) fn take_varint(rest: &mut &[u8], what: &'static str) -> Result<u64, PackError> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let (&b, tail) = rest.split_first().ok_or(PackError::Truncated(what))?;
        *rest = tail;
        let bits = u64::from(b & 0x7f);
        if i == 9 && b > 1 {
            return Err(PackError::Varint(what));
        }
        v |= bits << (7 * i);
        if b & 0x80 == 0 {
            if b == 0 && i > 0 {
                return Err(PackError::Varint(what));
            }
            return Ok(v);
        }
    }
    Err(PackError::Varint(what))
}
