//! Tests of the pack format: round trips, every truncation, lying headers, bombs, mutations.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use proptest::prelude::*;

use super::*;

/// Counts the bytes this thread holds while a test asks it to (the decompression-bomb test
/// checks that refusing a bomb never allocates anything near its inflated size).
struct Counting;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    let _ = TRACKING.try_with(|on| {
        if on.get() {
            let _ = LIVE.try_with(|live| {
                live.set(live.get() + delta);
                let _ = PEAK.try_with(|peak| peak.set(peak.get().max(live.get())));
            });
        }
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as isize);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as isize);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(-(layout.size() as isize));
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size as isize - layout.size() as isize);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most bytes this thread held at once while running `f` (beyond what it held before).
fn peak_bytes<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LIVE.with(|l| l.set(0));
    PEAK.with(|p| p.set(0));
    TRACKING.with(|t| t.set(true));
    let out = f();
    TRACKING.with(|t| t.set(false));
    (out, PEAK.with(Cell::get).max(0) as usize)
}

fn refs(values: &[Vec<u8>]) -> Vec<&[u8]> {
    values.iter().map(Vec::as_slice).collect()
}

/// Values like the ones stored: repetitive text (compressible) and some random bytes.
fn values() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let value = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        (0..40usize).prop_map(|n| format!("{{\"text\":\"tweet {n}\"}}").repeat(n).into_bytes()),
    ];
    prop::collection::vec(value, 0..40)
}

/// A pack header (magic, version, the lengths) followed by `frame`.
fn with_header(lengths: &[u64], frame: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.push(VERSION);
    put_varint(&mut out, lengths.len() as u64);
    for &l in lengths {
        put_varint(&mut out, l);
    }
    out.extend_from_slice(frame);
    out
}

proptest! {
    #[test]
    fn any_values_round_trip(vs in values()) {
        let packed = encode(&refs(&vs));
        prop_assert_eq!(decode(&packed, usize::MAX)?, vs.clone());
        let joined = decode_joined(&packed, usize::MAX)?;
        prop_assert_eq!(joined.len(), vs.len());
        prop_assert_eq!(joined.iter().collect::<Vec<_>>(), refs(&vs));
    }

    #[test]
    fn every_truncation_is_refused(vs in values()) {
        let packed = encode(&refs(&vs));
        for cut in 0..packed.len() {
            prop_assert!(decode(&packed[..cut], usize::MAX).is_err(), "cut at {cut} of {}", packed.len());
        }
    }

    #[test]
    fn any_trailing_byte_is_refused(vs in values(), extra in prop::collection::vec(any::<u8>(), 1..8)) {
        let mut packed = encode(&refs(&vs));
        packed.extend_from_slice(&extra);
        prop_assert!(decode(&packed, usize::MAX).is_err());
    }

    #[test]
    fn lying_lengths_are_refused(vs in values().prop_filter("a value", |v| !v.is_empty()), which in any::<prop::sample::Index>(), up in any::<bool>()) {
        let packed = encode(&refs(&vs));
        let (_, frame) = header(&packed, usize::MAX)?;
        let mut lengths: Vec<u64> = vs.iter().map(|v| v.len() as u64).collect();
        let i = which.index(lengths.len());
        if up || lengths[i] == 0 {
            lengths[i] += 1;
        } else {
            lengths[i] -= 1;
        }
        let err = decode(&with_header(&lengths, frame), usize::MAX);
        prop_assert!(err.is_err(), "{err:?}");
        // One value more or fewer in the header: refused too.
        let mut more: Vec<u64> = vs.iter().map(|v| v.len() as u64).collect();
        more.push(0);
        more.push(1);
        prop_assert!(decode(&with_header(&more, frame), usize::MAX).is_err());
        let fewer = &vs.iter().map(|v| v.len() as u64).collect::<Vec<_>>()[1..];
        if vs[0].is_empty() {
            // Dropping an empty value changes no byte count: the values then shift, which the
            // store catches by re-hashing each one; the pack itself is well formed.
        } else {
            prop_assert!(decode(&with_header(fewer, frame), usize::MAX).is_err());
        }
    }

    /// Damaged bytes anywhere: an error or some values, never a panic, never more than declared.
    #[test]
    fn flipped_bytes_never_panic(vs in values(), at in any::<prop::sample::Index>(), bit in 0..8u8) {
        let mut packed = encode(&refs(&vs));
        let i = at.index(packed.len());
        packed[i] ^= 1 << bit;
        if let Ok(out) = decode(&packed, 1 << 20) {
            prop_assert!(out.iter().map(Vec::len).sum::<usize>() <= 1 << 20);
        }
    }
}

#[test]
fn an_empty_pack_round_trips_and_the_raw_fallback_decodes() {
    assert_eq!(decode(&encode(&[]), 0), Ok(vec![]));
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    for parts in [vec![], vec![&data[..0]], vec![&data[..10], &data[10..]]] {
        let mut packed = MAGIC.to_vec();
        packed.push(VERSION);
        put_varint(&mut packed, parts.len() as u64);
        for p in &parts {
            put_varint(&mut packed, p.len() as u64);
        }
        let joined: Vec<u8> = parts.concat();
        raw_frame(&mut packed, &joined);
        let want: Vec<Vec<u8>> = parts.iter().map(|p| p.to_vec()).collect();
        assert_eq!(decode(&packed, usize::MAX), Ok(want));
    }
}

#[test]
fn a_bad_magic_version_or_varint_is_named() {
    let packed = encode(&[b"abc"]);
    let mut bad = packed.clone();
    bad[0] = b'X';
    assert_eq!(decode(&bad, 100), Err(PackError::BadMagic));
    assert_eq!(decode(b"RK", 100), Err(PackError::Truncated("magic")));
    let mut v2 = packed.clone();
    v2[4] = 2;
    assert_eq!(decode(&v2, 100), Err(PackError::Version(2)));
    // An 11-byte varint, and an overlong one (a zero tail).
    let mut long = MAGIC.to_vec();
    long.push(VERSION);
    long.extend_from_slice(&[0xff; 10]);
    long.push(1);
    assert!(matches!(decode(&long, 100), Err(PackError::Varint(_))));
    let mut overlong = MAGIC.to_vec();
    overlong.extend_from_slice(&[VERSION, 0x81, 0x00]);
    assert!(matches!(decode(&overlong, 100), Err(PackError::Varint(_))));
    // A count no header could hold is refused before anything is allocated for it.
    let mut huge = MAGIC.to_vec();
    huge.push(VERSION);
    put_varint(&mut huge, u64::MAX);
    let (err, peak) = peak_bytes(|| decode(&huge, usize::MAX));
    assert_eq!(err, Err(PackError::Truncated("value lengths")));
    assert!(peak < 1024, "{peak} bytes held");
}

#[test]
fn a_declared_total_beyond_the_bound_is_refused_before_decompressing() {
    let big = vec![7u8; 10_000];
    let packed = encode(&[&big, &big]);
    assert_eq!(
        decode(&packed, 19_999),
        Err(PackError::TooLarge {
            declared: 20_000,
            max: 19_999
        })
    );
    assert!(decode(&packed, 20_000).is_ok());
    // Lengths that overflow u64 saturate, and are refused.
    let err = decode(&with_header(&[u64::MAX, u64::MAX], &[]), usize::MAX);
    assert!(matches!(err, Err(PackError::TooLarge { .. })), "{err:?}");
}

/// A frame that inflates far beyond its header: refused, holding a small multiple of the
/// declared size, never the bomb's.
#[test]
fn a_decompression_bomb_is_refused_without_allocating_its_size() {
    const BOMB: usize = 64 << 20;
    let zeros = vec![0u8; 1 << 20];
    // A small window and no content size in the frame header: only the decoder's output
    // reveals the size.
    let mut encoder = zstd::stream::Encoder::new(Vec::new(), 1).expect("encoder");
    encoder
        .set_parameter(zstd::zstd_safe::CParameter::WindowLog(17))
        .expect("window");
    encoder.include_contentsize(false).expect("no content size");
    for _ in 0..BOMB / zeros.len() {
        std::io::Write::write_all(&mut encoder, &zeros).expect("compress");
    }
    let frame = encoder.finish().expect("finish");
    assert!(frame.len() < BOMB / 1000, "a bomb: {} bytes", frame.len());
    // 100,000 bytes declared: enough for the frame's 128 KiB window.
    let bomb = with_header(&[40_000, 60_000], &frame);
    let (err, peak) = peak_bytes(|| decode(&bomb, usize::MAX));
    assert_eq!(err, Err(PackError::Inflates { declared: 100_000 }));
    assert!(peak < 1 << 20, "refusing the bomb held {peak} bytes");

    // The same bytes compressed with their size in the frame: refused on the header.
    let sized = zstd::bulk::compress(&vec![0u8; 1 << 20], 1).expect("compress");
    let (err, peak) = peak_bytes(|| decode(&with_header(&[1000], &sized), usize::MAX));
    assert!(
        matches!(
            err,
            Err(PackError::ContentSize { .. } | PackError::Frame(_))
        ),
        "{err:?}"
    );
    assert!(peak < 1 << 20, "refusing the sized bomb held {peak} bytes");

    // A frame asking for a window far beyond the declared total: refused before it is made.
    let mut wide = zstd::stream::Encoder::new(Vec::new(), 1).expect("encoder");
    wide.set_parameter(zstd::zstd_safe::CParameter::WindowLog(27))
        .expect("window");
    wide.include_contentsize(false).expect("no content size");
    std::io::Write::write_all(&mut wide, &zeros).expect("compress");
    let wide = wide.finish().expect("finish");
    let (err, peak) = peak_bytes(|| decode(&with_header(&[1000], &wide), usize::MAX));
    assert!(matches!(err, Err(PackError::Frame(_))), "{err:?}");
    assert!(peak < 1 << 20, "refusing the wide window held {peak} bytes");
}

#[test]
fn a_frame_shorter_than_declared_is_refused() {
    let frame = zstd::bulk::compress(b"abc", 3).expect("compress");
    let mut no_size = zstd::stream::Encoder::new(Vec::new(), 3).expect("encoder");
    no_size
        .set_parameter(zstd::zstd_safe::CParameter::WindowLog(10))
        .expect("window");
    no_size.include_contentsize(false).expect("no content size");
    std::io::Write::write_all(&mut no_size, b"abc").expect("compress");
    let no_size = no_size.finish().expect("finish");
    assert_eq!(
        decode(&with_header(&[4], &no_size), 100),
        Err(PackError::Short {
            declared: 4,
            actual: 3
        })
    );
    assert_eq!(
        decode(&with_header(&[2], &frame), 100),
        Err(PackError::ContentSize {
            declared: 2,
            frame: 3
        })
    );
    assert_eq!(
        decode(&with_header(&[1, 2], &frame), 100),
        Ok(vec![b"a".to_vec(), b"bc".to_vec()])
    );
}
