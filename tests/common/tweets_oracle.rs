//! An independent oracle for the tweet figures of DESIGN §8: a port of `tweets_in`,
//! `usernames` and `tokens` of `acceptance/cli_smoke.py` onto serde_json, plus the source
//! composition cli_smoke uses. Tests compare the binary's answers with these numbers, and
//! what a store or sink holds (`committed`) with the tweet ids of the source, each exactly
//! once ([`source_tweets`], [`check_each_once`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Map, Value};

/// The line limit of DESIGN §8 (longer lines are skipped).
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// The tweets of one line: objects with a string `id` and a string `text`, from `data`
/// (array or object) or the flat line. `None` when the line is not JSON.
pub fn tweets_in(line: &[u8]) -> Option<Vec<Map<String, Value>>> {
    let v: Value = serde_json::from_slice(line).ok()?;
    let Value::Object(o) = v else {
        return Some(Vec::new());
    };
    let items: Vec<Value> = match o.get("data") {
        Some(Value::Array(a)) => a.clone(),
        Some(d @ Value::Object(_)) => vec![d.clone()],
        _ => vec![Value::Object(o.clone())],
    };
    Some(
        items
            .into_iter()
            .filter_map(|t| match t {
                Value::Object(t) if t.get("id").is_some_and(Value::is_string) => {
                    t.get("text").is_some_and(Value::is_string).then_some(t)
                }
                _ => None,
            })
            .collect(),
    )
}

/// author id (as JSON) → username, from `includes.users` and a flat record's `author`.
pub fn usernames(line: &[u8]) -> Vec<(Value, Value)> {
    let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(line) else {
        return Vec::new();
    };
    let mut users: Vec<(Value, Value)> = Vec::new();
    let mut add = |u: &Value| {
        if let (Some(id), Some(name)) = (u.get("id"), u.get("username")) {
            users.retain(|(known, _)| known != id);
            users.push((id.clone(), name.clone()));
        }
    };
    if let Some(Value::Array(list)) = o.get("includes").and_then(|i| i.get("users")) {
        list.iter().filter(|u| u.is_object()).for_each(&mut add);
    }
    if let Some(a @ Value::Object(_)) = o.get("author") {
        add(a);
    }
    users
}

/// The lowercase word tokens of a text (Python's `[^\W_]+`).
pub fn tokens(text: &str) -> BTreeSet<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// The author of a tweet as the sink keys it: a string `author_id`, a number's digits, else "".
pub fn author_key(tweet: &Map<String, Value>) -> String {
    match tweet.get("author_id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// The distinct tweet ids of `lines`, each with the author key of its first occurrence:
/// what must be committed, and realized, each exactly once (a collector commits a tweet id
/// at most once per CDVCS). `includes.tweets` are context, not tweets of the source.
pub fn source_tweets(lines: &[Vec<u8>]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for raw in lines.iter().filter(|l| l.len() <= MAX_LINE) {
        for t in tweets_in(raw).unwrap_or_default() {
            let id = t["id"].as_str().unwrap_or_default().to_string();
            out.entry(id).or_insert_with(|| author_key(&t));
        }
    }
    out
}

/// How many of `tweets` (id → author key) each author has.
pub fn per_author(tweets: &BTreeMap<String, String>) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for author in tweets.values() {
        *out.entry(author.clone()).or_default() += 1;
    }
    out
}

/// Checks a multiset of tweet ids (id → occurrences) against the ids that must each be there
/// exactly once; the error lists what was lost, doubled, or not in the source.
pub fn check_each_once<'a>(
    expected: impl IntoIterator<Item = &'a String>,
    got: &BTreeMap<String, u64>,
) -> Result<(), String> {
    let expected: BTreeSet<&String> = expected.into_iter().collect();
    let lost: Vec<&String> = expected
        .iter()
        .copied()
        .filter(|id| !got.contains_key(id.as_str()))
        .collect();
    let doubled: Vec<(&String, &u64)> = got.iter().filter(|(_, n)| **n > 1).collect();
    let foreign: Vec<&String> = got.keys().filter(|id| !expected.contains(id)).collect();
    if lost.is_empty() && doubled.is_empty() && foreign.is_empty() {
        return Ok(());
    }
    let few = |v: String, n: usize| if n > 10 { format!("{v}…") } else { v };
    Err(format!(
        "of {} source ids, {} lost {}; {} doubled (id, times) {}; {} not in the source {}",
        expected.len(),
        lost.len(),
        few(format!("{:?}", &lost[..lost.len().min(10)]), lost.len()),
        doubled.len(),
        few(
            format!("{:?}", &doubled[..doubled.len().min(10)]),
            doubled.len()
        ),
        foreign.len(),
        few(
            format!("{:?}", &foreign[..foreign.len().min(10)]),
            foreign.len()
        ),
    ))
}

/// The figures the binary must report for a source.
#[derive(Debug, Default)]
pub struct Expected {
    /// `add-tweet` records (one per tweet occurrence).
    pub records: u64,
    /// Distinct tweet ids.
    pub distinct: u64,
    /// Distinct tweets whose text holds `term` as a token.
    pub hits: u64,
    /// Distinct tweets per username (first occurrence credited), descending.
    pub user_counts: Vec<u64>,
    /// Records per `author_id` as the sink keys it (string, number digits, else "").
    pub per_author: BTreeMap<String, u64>,
}

impl Expected {
    /// The figures of `lines`, searching for `term`.
    pub fn of(lines: &[Vec<u8>], term: &str) -> Expected {
        let mut e = Expected::default();
        let mut ids = BTreeSet::new();
        let mut hits = BTreeSet::new();
        let mut per_user: BTreeMap<String, u64> = BTreeMap::new();
        for raw in lines.iter().filter(|l| l.len() <= MAX_LINE) {
            let users = usernames(raw);
            for t in tweets_in(raw).unwrap_or_default() {
                e.records += 1;
                let id = t["id"].as_str().unwrap_or_default().to_string();
                let author = t.get("author_id");
                *e.per_author.entry(author_key(&t)).or_default() += 1;
                if !ids.contains(&id)
                    && let Some((_, name)) = users.iter().find(|(uid, _)| Some(uid) == author)
                {
                    let name = name
                        .as_str()
                        .map_or_else(|| name.to_string(), str::to_string);
                    *per_user.entry(name).or_default() += 1;
                }
                if tokens(t["text"].as_str().unwrap_or_default()).contains(term) {
                    hits.insert(id.clone());
                }
                ids.insert(id);
            }
        }
        e.distinct = ids.len() as u64;
        e.hits = hits.len() as u64;
        e.user_counts = per_user.into_values().collect();
        e.user_counts.sort_unstable_by(|a, b| b.cmp(a));
        e
    }
}

/// The lines of cli_smoke's source: flat, brexit, kpop, geo_tweets, then an empty line,
/// `not json` and a page whose only item has no text.
pub fn shipped_source(data: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for f in [
        "flat.jsonl",
        "brexit.jsonl",
        "kpop.jsonl",
        "geo_tweets.jsonl",
    ] {
        let bytes = std::fs::read(data.join(f)).expect("read shipped tweets");
        out.extend(bytes.split(|b| *b == b'\n').map(<[u8]>::to_vec));
        if bytes.ends_with(b"\n") {
            out.pop();
        }
    }
    out.push(Vec::new());
    out.push(b"not json".to_vec());
    out.push(br#"{"data": [{"id": "1", "username": "no text: a user"}]}"#.to_vec());
    out
}

/// The non-empty lines of the file at `path`.
pub fn lines_of(path: &Path) -> Vec<Vec<u8>> {
    std::fs::read(path)
        .expect("read a source file")
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// Writes `lines` as a JSON-lines file, each terminated by a newline.
pub fn write_lines(path: &Path, lines: &[Vec<u8>]) {
    let mut all = Vec::new();
    for l in lines {
        all.extend_from_slice(l);
        all.push(b'\n');
    }
    std::fs::write(path, all).expect("write source");
}
