//! Independent re-statement of cli_smoke.py's rules (`tweets_in`, `usernames`, `tokens`,
//! `source`) with serde_json directly, so the tests compare the library against a second
//! implementation rather than against itself.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

/// The repo's copy of the shared tweets.
pub fn data(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/tweets")
        .join(name)
}

/// Python's `bytes.splitlines()` for files that only use `\n`.
pub fn file_lines(name: &str) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(data(name)).expect("read data file");
    let mut lines: Vec<Vec<u8>> = bytes.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    if lines.last().is_some_and(Vec::is_empty) {
        lines.pop();
    }
    lines
}

/// `tweets_in(line)`: the tweet objects of a line (empty when none or not JSON).
pub fn tweets_in(line: &[u8]) -> Vec<serde_json::Map<String, Value>> {
    let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(line) else {
        return Vec::new();
    };
    let items: Vec<Value> = match o.get("data") {
        Some(Value::Array(a)) => a.clone(),
        Some(d @ Value::Object(_)) => vec![d.clone()],
        _ => vec![Value::Object(o.clone())],
    };
    items
        .into_iter()
        .filter_map(|t| match t {
            Value::Object(t)
                if t.get("id").is_some_and(Value::is_string)
                    && t.get("text").is_some_and(Value::is_string) =>
            {
                Some(t)
            }
            _ => None,
        })
        .collect()
}

/// `usernames(line)`: author id (as JSON text) → username.
pub fn usernames(line: &[u8]) -> HashMap<String, String> {
    let mut users = HashMap::new();
    let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(line) else {
        return users;
    };
    let listed = o
        .get("includes")
        .and_then(|i| i.get("users"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for u in listed.iter().chain(o.get("author")) {
        if let (Some(id), Some(name)) = (u.get("id"), u.get("username").and_then(Value::as_str)) {
            users.insert(id.to_string(), name.to_string());
        }
    }
    users
}

/// `tokens(text)`: lowercased maximal runs of letters and digits.
pub fn tokens(text: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    let mut cur = String::new();
    for c in text.to_lowercase().chars() {
        if c.is_alphanumeric() {
            cur.push(c);
        } else if !cur.is_empty() {
            out.insert(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.insert(cur);
    }
    out
}

/// What cli_smoke's `source()` computes for a list of lines.
#[derive(Debug, Default)]
pub struct Expected {
    pub records: u64,
    pub distinct: u64,
    pub hits: u64,
    pub top: Vec<u64>,
    pub per_user: BTreeMap<String, u64>,
}

pub fn expected(lines: &[Vec<u8>], term: &str) -> Expected {
    let (mut records, mut ids, mut hits) = (0u64, HashSet::new(), HashSet::new());
    let mut per_user: BTreeMap<String, u64> = BTreeMap::new();
    for raw in lines {
        let users = usernames(raw);
        for t in tweets_in(raw) {
            records += 1;
            let id = t["id"].as_str().expect("id").to_string();
            let author = t.get("author_id").map(Value::to_string);
            if !ids.contains(&id)
                && let Some(u) = author.and_then(|a| users.get(&a))
            {
                *per_user.entry(u.clone()).or_default() += 1;
            }
            if tokens(t["text"].as_str().expect("text")).contains(term) {
                hits.insert(id.clone());
            }
            ids.insert(id);
        }
    }
    let mut top: Vec<u64> = per_user.values().copied().collect();
    top.sort_unstable_by(|a, b| b.cmp(a));
    top.truncate(5);
    Expected {
        records,
        distinct: ids.len() as u64,
        hits: hits.len() as u64,
        top,
        per_user,
    }
}

/// The smoke test's source: four files and three lines holding no tweet, `\n`-joined.
pub fn smoke_source() -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut lines = Vec::new();
    for f in [
        "flat.jsonl",
        "brexit.jsonl",
        "kpop.jsonl",
        "geo_tweets.jsonl",
    ] {
        lines.extend(file_lines(f));
    }
    lines.push(Vec::new());
    lines.push(b"not json".to_vec());
    lines.push(br#"{"data": [{"id": "1", "username": "no text: a user"}]}"#.to_vec());
    let mut bytes = lines.join(&b'\n');
    bytes.push(b'\n');
    (lines, bytes)
}

/// The distinct tweets (first occurrence wins) of `lines` whose text holds the one word of
/// `term`, with SQLite FTS5's own `unicode61` tokenizer as the judge of what a word is (not the
/// library's port of it): 0 when the term holds no word or several.
pub fn fts5_hits(lines: &[Vec<u8>], term: &str) -> u64 {
    let conn = rusqlite::Connection::open_in_memory().expect("memory db");
    conn.execute_batch(
        "CREATE VIRTUAL TABLE t USING fts5 (x);
         CREATE VIRTUAL TABLE v USING fts5vocab (t, 'instance');",
    )
    .expect("fts5");
    let mut seen = HashSet::new();
    for raw in lines {
        for t in tweets_in(raw) {
            if seen.insert(t["id"].as_str().expect("id").to_string()) {
                conn.execute("INSERT INTO t (x) VALUES (?1)", [t["text"].as_str()])
                    .expect("insert");
            }
        }
    }
    conn.execute("INSERT INTO t (rowid, x) VALUES (-1, ?1)", [term])
        .expect("insert term");
    let mut stmt = conn
        .prepare("SELECT term FROM v WHERE doc = -1")
        .expect("vocab");
    let term_words: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .expect("term words")
        .collect::<Result<_, _>>()
        .expect("rows");
    let [word] = term_words.as_slice() else {
        return 0;
    };
    conn.query_row(
        "SELECT COUNT(DISTINCT doc) FROM v WHERE term = ?1 AND doc > 0",
        [word],
        |r| r.get::<_, i64>(0),
    )
    .expect("count") as u64
}
