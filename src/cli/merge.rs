//! `replikativ merge`: join the heads of a CDVCS in a stopped store (DESIGN §12).

use anyhow::{Result, bail};
use serde::Serialize;

use super::args::MergeArgs;
use crate::crdt::CrdtKey;
use crate::store::cdvcs;

/// `merge --json`: `{"merged":true,"commit":ID,"heads":[ID]}` or `{"merged":false,"heads":[ID]}`.
#[derive(Debug, Serialize)]
pub struct MergeJson {
    /// Whether a merge commit was made.
    pub merged: bool,
    /// The merge commit, hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The heads afterwards, hex.
    pub heads: Vec<String>,
}

/// Runs `merge`.
pub fn run(args: MergeArgs) -> Result<()> {
    let key = CrdtKey::new(args.crdt.user.clone(), args.crdt.cdvcs);
    let store = super::open_existing_store(&args.store)?;
    let Some((merge, state)) = cdvcs::join_stored(&store, &key)? else {
        bail!("the store {} holds no CDVCS {key}", args.store.display());
    };
    let heads: Vec<String> = state.heads().iter().map(|h| h.to_hex()).collect();
    if args.json {
        let out = MergeJson {
            merged: merge.is_some(),
            commit: merge.as_ref().map(|m| m.id.to_hex()),
            heads,
        };
        println!("{}", serde_json::to_string(&out)?);
    } else {
        match &merge {
            Some(m) => println!(
                "merged {} heads of {key} into {}",
                m.commit.parents.len(),
                m.id
            ),
            None => println!("nothing to merge: {key} has one head {}", heads.join(", ")),
        }
    }
    Ok(())
}
