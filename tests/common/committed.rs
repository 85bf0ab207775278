//! What a collector committed and what a realizer applied, read back from the store's commit
//! graph and the SQLite file themselves (not from the binary's counters), for comparison with
//! the source's tweet ids ([`super::tweets_oracle::check_each_once`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use replikativ::store::{FILE_NAME, Store, keys};

/// The collector's default user and CDVCS (DESIGN §8).
pub const USER: &str = "mail:twitter@crawler.com";
/// The collector's default CDVCS id.
pub const CDVCS: &str = "12d49511-e733-4007-937b-460c3794fae9";

/// Whether `dir` holds a store file (opening a missing one would create it).
pub fn store_exists(dir: &Path) -> bool {
    dir.join(FILE_NAME).is_file()
}

/// The tweet ids of every `add-tweet` transaction in the default CDVCS's commit graph in the
/// store at `dir`, with how often each occurs. The store must not be open elsewhere.
pub fn store_tweet_ids(dir: &Path) -> BTreeMap<String, u64> {
    store_tweet_authors(dir, USER)
        .into_iter()
        .map(|(id, authors)| (id, authors.len() as u64))
        .collect()
}

/// The tweet ids of every `add-tweet` transaction in the CDVCS (`user`, default CDVCS id) in
/// the store at `dir`, each with the author named by every commit holding it (one entry per
/// occurrence). The store must not be open elsewhere.
pub fn store_tweet_authors(dir: &Path, user: &str) -> BTreeMap<String, Vec<String>> {
    assert!(store_exists(dir), "no store at {}", dir.display());
    let store = Store::open(dir).expect("open the collected store");
    let crdt: uuid::Uuid = CDVCS.parse().expect("uuid");
    let mut ids: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, _) in store
        .scan_state(&keys::graph_prefix(user, &crdt))
        .expect("graph")
    {
        let id = keys::graph_entry_commit(&k).expect("graph key");
        let bytes = store.get_value(&id).expect("read").expect("commit");
        let commit = replikativ::crdt::Commit::decode(&bytes).expect("decode");
        for tx in commit.commit.transactions {
            if tx.op != "add-tweet" {
                continue;
            }
            let params = store.get_value(&tx.params).expect("read").expect("params");
            let value = replikativ::tweets::decode_params(&params).expect("params decode");
            let tweet = value["id"]
                .as_str()
                .unwrap_or_else(|| panic!("add-tweet params without a string id: {value}"));
            ids.entry(tweet.to_string())
                .or_default()
                .push(commit.commit.author.clone());
        }
    }
    ids
}

/// How many `add-tweet` transactions the store at `dir` holds (0 when there is no store yet).
pub fn store_tweet_count(dir: &Path) -> u64 {
    if !store_exists(dir) {
        return 0;
    }
    store_tweet_ids(dir).values().sum()
}

/// Opens an existing SQLite file without creating one. Read-write although only read: after
/// a SIGKILL the first connection recovers the WAL, which a read-only one cannot.
fn open_sqlite(db: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
        .expect("open sqlite")
}

/// The ids in a realized SQLite file's `tweets` table (a set: the table is keyed by id; a
/// double apply shows in [`super::cli_support::account_ops`] instead).
pub fn sqlite_tweet_ids(db: &Path) -> BTreeSet<String> {
    let conn = open_sqlite(db);
    let mut stmt = conn.prepare("SELECT id FROM tweets").expect("tweets table");
    stmt.query_map([], |r| r.get::<_, String>(0))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

/// The `ops_applied` counter of a realized SQLite file (0 when the file or counter is not
/// there yet).
pub fn sqlite_ops_applied(db: &Path) -> u64 {
    if !db.is_file() {
        return 0;
    }
    let conn = open_sqlite(db);
    let n: Option<i64> = conn
        .query_row(
            "SELECT value FROM counters WHERE name = 'ops_applied'",
            [],
            |r| r.get(0),
        )
        .ok();
    n.map_or(0, |n| u64::try_from(n).expect("non-negative"))
}
