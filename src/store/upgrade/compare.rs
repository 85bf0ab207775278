//! The check before the swap: the new store passes `verify` and holds exactly what the old
//! one holds, compared both ways, byte for byte.

use std::collections::HashSet;
use std::ops::ControlFlow;

use crate::id::Id;

use super::{Counts, UpgradeError, store_err};
use crate::store::Store;

/// Verifies `new` and checks it holds exactly what `old` holds.
pub(super) fn compare(old: &Store, new: &Store) -> Result<Counts, UpgradeError> {
    let report = new.verify().map_err(store_err("verifying the new store"))?;
    if !report.is_ok() {
        return Err(UpgradeError::Mismatch(format!("verify: {report}")));
    }
    let mismatch = |what: String| Err(UpgradeError::Mismatch(what));
    let (mut state, mut differs) = (0u64, None);
    old.visit_state(b"", |k, v| {
        state += 1;
        match new.get_state(k) {
            Ok(Some(got)) if got == v => ControlFlow::Continue(()),
            other => {
                differs = Some(format!("state record {}: {other:?}", k.escape_ascii()));
                ControlFlow::Break(())
            }
        }
    })
    .map_err(store_err("reading the old store's state"))?;
    if let Some(d) = differs {
        return mismatch(d);
    }
    let mut new_state = 0u64;
    new.visit_state(b"", |_, _| {
        new_state += 1;
        ControlFlow::Continue(())
    })
    .map_err(store_err("reading the new store's state"))?;
    let old_blobs = old.all_blobs().map_err(store_err("reading old blobs"))?;
    let new_blobs = new.all_blobs().map_err(store_err("reading new blobs"))?;
    if old_blobs != new_blobs {
        return mismatch("the blobs differ".into());
    }
    // Every old value is in the new store; every new value is in the old one, equal. The
    // new store's ids are gathered in memory: a lookup by id alone there would search every
    // pack for a param (`packs.rs`); a param stored twice counts once.
    let mut missing = None;
    let mut new_ids: HashSet<Id> = HashSet::new();
    new.for_each_value(|id, bytes| {
        if !new_ids.insert(id) {
            return ControlFlow::Continue(());
        }
        match old.get_value(&id) {
            Ok(Some(b)) if b == bytes => ControlFlow::Continue(()),
            other => {
                missing = Some(format!(
                    "value {id} of the new store: {:?}",
                    other.map(|_| ())
                ));
                ControlFlow::Break(())
            }
        }
    })
    .map_err(store_err("reading the new store's values"))?;
    old.for_each_value(|id, _| {
        if new_ids.contains(&id) {
            ControlFlow::Continue(())
        } else {
            missing = Some(format!("value {id} of the old store is not in the new one"));
            ControlFlow::Break(())
        }
    })
    .map_err(store_err("reading the old store's values"))?;
    if let Some(m) = missing {
        return mismatch(m);
    }
    let values = new_ids.len() as u64;
    let old_values = old.value_count().map_err(store_err("counting"))?;
    if (state, old_values) != (new_state, values) {
        return mismatch(format!(
            "{state} state records and {old_values} values before, {new_state} and {values} after"
        ));
    }
    Ok(Counts {
        values,
        packs: report.packs_checked,
        state,
        blobs: new_blobs.len() as u64,
    })
}
