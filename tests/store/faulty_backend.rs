//! [`FaultyDisk`]: a redb [`StorageBackend`] for fault injection. It simulates a disk with a
//! volatile write cache (so a power cut can lose what was not synced, which a SIGKILL never
//! shows: the kernel keeps the page cache) and switchable write and sync failures (a full
//! disk, I/O errors). The store has no test hooks of its own: tests open it over this disk
//! with `Store::with_backend` to fail its writes, hold its commits or fake its syncs.
//!
//! # What is modelled
//!
//! redb's design document ("Assumptions about underlying media", docs/design.md in the redb
//! crate) assumes only that (1) a single byte write is atomic, (2) writes are durable once an
//! `fsync` returns, and (3) a write changes no byte outside its range ("powersafe overwrite").
//! This disk promises no more than that:
//!
//! - Reads see every write so far (the page cache).
//! - A write or resize is *volatile* until the next successful `sync_data`, which makes it and
//!   every earlier one durable.
//! - A *power cut* happens at a chosen mutating operation (a write, resize or sync, counted
//!   from 1; the operation in progress does not complete) or on demand. The surviving image is
//!   the durable one plus some of the volatile operations, in one of two ways (drawn from the
//!   disk's seed):
//!   - *in order*: the first `k` volatile operations survive and the next one, if it is a
//!     write, is torn: a prefix of it survives, cut at a multiple of 1, 512 or 4096 bytes
//!     (a disk writing back in order that loses power in the middle of a write);
//!   - *any subset*: each volatile operation survives or not on its own, and a surviving write
//!     may keep only some of its 1-, 512- or 4096-byte sectors (a write cache that reorders).
//!
//!   From then on every call fails with EIO, as a machine without power would, so nothing the
//!   program does after the cut reaches the surviving image.
//! - Injected faults ([`Fault`]), switchable at any time: `NoSpace` fails every write and every
//!   growing resize with ENOSPC and writes nothing; `WriteEio` fails every write with EIO;
//!   `SyncEio` fails `sync_data` with EIO and leaves the volatile operations volatile (they
//!   sit in the page cache and may reach the disk later, or be lost by a cut).
//! - Failing the next `n` writes ([`FaultyDisk::fail_next_writes`]): each fails with EIO
//!   and writes nothing, then writes work again. redb buffers a transaction's pages and
//!   writes them (and its header) when it commits, so a failure armed between store writes
//!   fails the next commit's first write and nothing of that commit reaches the disk. redb
//!   latches the error: the store write fails and the store reopens on its next operation.
//! - Holding syncs ([`FaultyDisk::hold_syncs`]): while a [`SyncHold`] lives, a `sync_data`
//!   with written data to make durable waits (without holding the disk, so reads go on).
//!   That is a store commit's sync, once its pages are written and before the commit is
//!   durable or visible to readers: every store write waits at its commit point, inside its
//!   write transaction, and writes queued meanwhile pile up behind it. A sync with only a
//!   resize to make durable goes through: redb grows the file inside a transaction under the
//!   lock readers take to find the current root, so holding it would hold reads too.
//! - A sync that does nothing ([`FaultyDisk::set_fake_sync`]): `sync_data` returns `Ok` and
//!   leaves the volatile operations volatile, a disk that acknowledges a sync it did not do.
//!   Nothing above the disk can survive that: a store over it acknowledges writes a power
//!   cut then loses, which the power-loss tests must catch.
//!
//! Not modelled: Linux dropping dirty pages after a failed fsync ("fsyncgate": later reads
//! would see old data while the page cache believed it clean), short writes, bytes changing
//! outside a written range, and damage to data at rest (the bit-flip tests cover that).
#![allow(dead_code)]

use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redb::StorageBackend;

/// An injected failure mode of a [`FaultyDisk`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Everything works.
    None,
    /// The disk is full: writes and growing resizes fail with ENOSPC.
    NoSpace,
    /// Writes fail with EIO.
    WriteEio,
    /// `sync_data` fails with EIO.
    SyncEio,
}

/// A mutating operation not yet made durable.
#[derive(Clone, Debug)]
enum Volatile {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

/// How a power cut chooses what survives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutModel {
    /// A prefix of the volatile operations, the next write torn.
    InOrder,
    /// Any subset of the volatile operations, writes torn at sector granularity.
    AnySubset,
}

#[derive(Debug)]
struct Disk {
    /// What reads see.
    cache: Vec<u8>,
    /// What survives a power cut.
    durable: Vec<u8>,
    /// Mutating operations since the last successful sync, in order.
    volatile: Vec<Volatile>,
    /// Mutating operations so far.
    ops: u64,
    /// The power fails when `ops` reaches this.
    cut_at: Option<u64>,
    /// The power has failed: every call fails.
    dead: bool,
    fault: Fault,
    /// Writes still to fail ([`FaultyDisk::fail_next_writes`]).
    failing_writes: u64,
    /// Live [`SyncHold`]s: a `sync_data` with writes to make durable waits while this is not
    /// zero.
    holds: u64,
    /// `sync_data` returns `Ok` without making anything durable.
    fake_sync: bool,
    rng: StdRng,
    model: CutModel,
    granularity: u64,
    /// What the cut did.
    cut: Option<CutStats>,
    syncs: u64,
    /// Calls of `sync_data` waiting for the holds to end.
    waiting_syncs: u64,
    /// The kind of each mutating operation so far: `w`rite, `l`ength, `s`ync.
    log: Vec<u8>,
}

/// What a power cut did.
#[derive(Clone, Debug, Default)]
pub struct CutStats {
    /// Volatile operations at the cut.
    pub volatile: usize,
    /// Of these, how many survived (whole or torn).
    pub kept: usize,
    /// Surviving writes that were torn (only part of them survived).
    pub torn: usize,
    /// In words, for failure messages.
    pub report: String,
}

/// A simulated disk; clones are handles on the same disk.
#[derive(Clone, Debug)]
pub struct FaultyDisk {
    disk: Arc<Mutex<Disk>>,
    /// Signalled when the last [`SyncHold`] ends (waited on with `disk`).
    released: Arc<Condvar>,
}

/// Syncs of a [`FaultyDisk`] wait while this lives ([`FaultyDisk::hold_syncs`]).
#[must_use = "syncs resume as soon as the hold is dropped"]
#[derive(Debug)]
pub struct SyncHold {
    disk: FaultyDisk,
}

impl Drop for SyncHold {
    fn drop(&mut self) {
        let mut d = self.disk.lock();
        d.holds -= 1;
        if d.holds == 0 {
            self.disk.released.notify_all();
        }
    }
}

fn eio(what: &str) -> io::Error {
    io::Error::other(format!(
        "{what}: {}",
        io::Error::from_raw_os_error(libc::EIO)
    ))
}

fn os(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

impl FaultyDisk {
    /// An empty disk; `seed` draws the cut model, the tear granularity and what a cut keeps.
    pub fn new(seed: u64) -> FaultyDisk {
        FaultyDisk::from_image(Vec::new(), seed)
    }

    /// A disk whose durable content is `image` (e.g. what survived an earlier cut).
    pub fn from_image(image: Vec<u8>, seed: u64) -> FaultyDisk {
        let mut rng = StdRng::seed_from_u64(seed);
        let model = if rng.random_bool(0.5) {
            CutModel::InOrder
        } else {
            CutModel::AnySubset
        };
        let granularity = [1, 512, 4096][rng.random_range(0..3)];
        FaultyDisk {
            disk: Arc::new(Mutex::new(Disk {
                cache: image.clone(),
                durable: image,
                volatile: Vec::new(),
                ops: 0,
                cut_at: None,
                dead: false,
                fault: Fault::None,
                failing_writes: 0,
                holds: 0,
                fake_sync: false,
                rng,
                model,
                granularity,
                cut: None,
                syncs: 0,
                waiting_syncs: 0,
                log: Vec::new(),
            })),
            released: Arc::new(Condvar::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Disk> {
        self.disk.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cut model and tear granularity this disk's seed chose.
    pub fn model(&self) -> (CutModel, u64) {
        let d = self.lock();
        (d.model, d.granularity)
    }

    /// Mutating operations (writes, resizes, syncs) so far.
    pub fn mutating_ops(&self) -> u64 {
        self.lock().ops
    }

    /// Successful syncs so far (not counting faked ones).
    pub fn syncs(&self) -> u64 {
        self.lock().syncs
    }

    /// The power fails during the `n`-th mutating operation from now (`n >= 1`).
    pub fn cut_power_after(&self, n: u64) {
        let mut d = self.lock();
        d.cut_at = Some(d.ops + n.max(1));
    }

    /// The power fails now (no operation in progress).
    pub fn cut_power_now(&self) {
        let mut d = self.lock();
        if !d.dead {
            d.cut();
        }
    }

    /// Whether the power has failed.
    pub fn is_dead(&self) -> bool {
        self.lock().dead
    }

    /// What the power cut did (`None` before it).
    pub fn cut_stats(&self) -> Option<CutStats> {
        self.lock().cut.clone()
    }

    /// The kind of each mutating operation so far, in order: `w`rite, `l`ength (resize),
    /// `s`ync; for choosing where to cut a rerun of the same workload.
    pub fn op_log(&self) -> Vec<u8> {
        self.lock().log.clone()
    }

    /// The durable image: after a cut, all that survived.
    pub fn durable_image(&self) -> Vec<u8> {
        self.lock().durable.clone()
    }

    /// Switches the injected fault.
    pub fn set_fault(&self, fault: Fault) {
        self.lock().fault = fault;
    }

    /// The next `n` calls of `write` fail with EIO ("injected write failure") and write
    /// nothing; later ones work (unless a [`Fault`] or the power says otherwise). Every call
    /// counts, including the writes of a store reopening after the first failure.
    pub fn fail_next_writes(&self, n: u64) {
        self.lock().failing_writes = n;
    }

    /// Injected write failures still to come.
    pub fn failing_writes(&self) -> u64 {
        self.lock().failing_writes
    }

    /// Every `sync_data` with written data to make durable waits until the returned hold (and
    /// every other) is dropped: a store write waits at its commit point, inside its write
    /// transaction (see the module doc).
    pub fn hold_syncs(&self) -> SyncHold {
        self.lock().holds += 1;
        SyncHold { disk: self.clone() }
    }

    /// Calls of `sync_data` waiting for a [`SyncHold`] to end.
    pub fn waiting_syncs(&self) -> u64 {
        self.lock().waiting_syncs
    }

    /// With `true`, `sync_data` returns `Ok` without making anything durable (a disk that
    /// acknowledges a sync it did not do), until switched back.
    pub fn set_fake_sync(&self, fake: bool) {
        self.lock().fake_sync = fake;
    }
}

impl Disk {
    /// Counts a mutating operation; fails it when the power is (or now goes) off.
    fn mutate(&mut self, what: &str) -> io::Result<()> {
        if self.dead {
            return Err(eio(&format!("{what} after the power cut")));
        }
        self.ops += 1;
        self.log.push(match what {
            "set_len" => b'l',
            "sync_data" => b's',
            _ => b'w',
        });
        if self.cut_at == Some(self.ops) {
            return Err(eio(&format!("power cut during {what}")));
        }
        Ok(())
    }

    /// Applies the volatile operation the caller was doing when the power failed, then cuts.
    fn cut_during(&mut self, op: Option<Volatile>) {
        self.volatile.extend(op);
        self.cut();
    }

    fn cut(&mut self) {
        let volatile = std::mem::take(&mut self.volatile);
        let n = volatile.len();
        let (mut kept, mut torn) = (0, 0);
        let mut report = format!(
            "{:?} cut at op {} (granularity {}) over {n} volatile ops:",
            self.model, self.ops, self.granularity
        );
        match self.model {
            CutModel::InOrder => {
                let k = self.rng.random_range(0..=n);
                for op in &volatile[..k] {
                    apply(&mut self.durable, op, None);
                }
                kept = k;
                report.push_str(&format!(" first {k} kept"));
                if let Some(op @ Volatile::Write { offset, data }) = volatile.get(k) {
                    let chunks = chunks(*offset, data.len() as u64, self.granularity);
                    let keep = self.rng.random_range(0..=chunks.len());
                    if keep > 0 {
                        kept += 1;
                        torn += usize::from(keep < chunks.len());
                    }
                    apply(&mut self.durable, op, Some(&chunks[..keep]));
                    report.push_str(&format!(
                        ", then {keep} of {} chunks of a {}-byte write at {offset}",
                        chunks.len(),
                        data.len()
                    ));
                }
            }
            CutModel::AnySubset => {
                for op in &volatile {
                    if !self.rng.random_bool(0.5) {
                        continue;
                    }
                    match op {
                        Volatile::Write { offset, data } if self.rng.random_bool(0.25) => {
                            let all = chunks(*offset, data.len() as u64, self.granularity);
                            let total = all.len();
                            let some: Vec<(u64, u64)> = all
                                .into_iter()
                                .filter(|_| self.rng.random_bool(0.5))
                                .collect();
                            if !some.is_empty() {
                                kept += 1;
                                torn += usize::from(some.len() < total);
                            }
                            apply(&mut self.durable, op, Some(&some));
                        }
                        _ => {
                            kept += 1;
                            apply(&mut self.durable, op, None);
                        }
                    }
                }
                report.push_str(&format!(" {kept} kept, {torn} of them torn"));
            }
        }
        self.cache = self.durable.clone();
        self.dead = true;
        self.cut = Some(CutStats {
            volatile: n,
            kept,
            torn,
            report,
        });
    }
}

/// The `granularity`-aligned pieces of `[offset, offset + len)`, as absolute ranges.
fn chunks(offset: u64, len: u64, granularity: u64) -> Vec<(u64, u64)> {
    let end = offset + len;
    let mut out = Vec::new();
    let mut at = offset;
    while at < end {
        let next = ((at / granularity) + 1) * granularity;
        let stop = next.min(end);
        out.push((at, stop));
        at = stop;
    }
    out
}

/// Applies `op` to `image`; a write keeps only `pieces` (absolute ranges) when given.
fn apply(image: &mut Vec<u8>, op: &Volatile, pieces: Option<&[(u64, u64)]>) {
    match op {
        Volatile::SetLen(len) => image.resize(*len as usize, 0),
        Volatile::Write { offset, data } => {
            let whole = [(*offset, *offset + data.len() as u64)];
            for &(start, stop) in pieces.unwrap_or(&whole) {
                if image.len() < stop as usize {
                    image.resize(stop as usize, 0);
                }
                let from = (start - offset) as usize;
                let to = (stop - offset) as usize;
                image[start as usize..stop as usize].copy_from_slice(&data[from..to]);
            }
        }
    }
}

impl StorageBackend for FaultyDisk {
    fn len(&self) -> Result<u64, io::Error> {
        let d = self.lock();
        if d.dead {
            return Err(eio("len after the power cut"));
        }
        Ok(d.cache.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        let d = self.lock();
        if d.dead {
            return Err(eio("read after the power cut"));
        }
        let end = offset as usize + out.len();
        if end > d.cache.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("read of {}..{end} past the end {}", offset, d.cache.len()),
            ));
        }
        out.copy_from_slice(&d.cache[offset as usize..end]);
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        let mut d = self.lock();
        if let Err(e) = d.mutate("set_len") {
            if !d.dead {
                d.cut_during(Some(Volatile::SetLen(len)));
            }
            return Err(e);
        }
        if d.fault == Fault::NoSpace && len > d.cache.len() as u64 {
            return Err(os(libc::ENOSPC));
        }
        d.cache.resize(len as usize, 0);
        d.volatile.push(Volatile::SetLen(len));
        Ok(())
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        let mut d = self.lock();
        let writes = d
            .volatile
            .iter()
            .any(|op| matches!(op, Volatile::Write { .. }));
        if d.holds > 0 && writes {
            d.waiting_syncs += 1;
            d = self
                .released
                .wait_while(d, |d| d.holds > 0)
                .unwrap_or_else(|p| p.into_inner());
            d.waiting_syncs -= 1;
        }
        if let Err(e) = d.mutate("sync_data") {
            if !d.dead {
                d.cut_during(None);
            }
            return Err(e);
        }
        if d.fault == Fault::SyncEio {
            return Err(os(libc::EIO));
        }
        if d.fake_sync {
            return Ok(());
        }
        let volatile = std::mem::take(&mut d.volatile);
        for op in &volatile {
            apply(&mut d.durable, op, None);
        }
        d.syncs += 1;
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        let mut d = self.lock();
        let op = Volatile::Write {
            offset,
            data: data.to_vec(),
        };
        if let Err(e) = d.mutate("write") {
            if !d.dead {
                d.cut_during(Some(op));
            }
            return Err(e);
        }
        if d.failing_writes > 0 {
            d.failing_writes -= 1;
            return Err(eio("injected write failure"));
        }
        match d.fault {
            Fault::NoSpace => return Err(os(libc::ENOSPC)),
            Fault::WriteEio => return Err(os(libc::EIO)),
            Fault::None | Fault::SyncEio => {}
        }
        apply(&mut d.cache, &op, None);
        d.volatile.push(op);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_split_at_aligned_boundaries() {
        assert_eq!(chunks(10, 5, 4), vec![(10, 12), (12, 15)]);
        assert_eq!(chunks(0, 8, 4), vec![(0, 4), (4, 8)]);
        assert_eq!(chunks(3, 0, 4), vec![]);
    }
}
