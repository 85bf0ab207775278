//! An independent oracle for the tweet figures of DESIGN §8: a port of `tweets_in`,
//! `usernames` and `tokens` of `acceptance/cli_smoke.py` onto serde_json, plus the source
//! composition cli_smoke uses. Tests compare the binary's answers with these numbers.

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
                let key = match author {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    _ => String::new(),
                };
                *e.per_author.entry(key).or_default() += 1;
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

/// Writes `lines` as a JSON-lines file, each terminated by a newline.
pub fn write_lines(path: &Path, lines: &[Vec<u8>]) {
    let mut all = Vec::new();
    for l in lines {
        all.extend_from_slice(l);
        all.push(b'\n');
    }
    std::fs::write(path, all).expect("write source");
}
