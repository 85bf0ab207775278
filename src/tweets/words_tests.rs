//! The words against SQLite FTS5's own `unicode61` tokenizer (rusqlite's bundled SQLite), the
//! independent oracle: every code point in two positions, random strings, and the edge cases
//! the search promises.

use proptest::prelude::*;
use rusqlite::Connection;

use crate::tweets::words::{distinct_words, search_word, term_matches, words};

/// FTS5's tokens of each of `docs`, in order.
fn fts5_tokens(docs: &[String]) -> Vec<Vec<String>> {
    let conn = Connection::open_in_memory().expect("memory db");
    conn.execute_batch(
        "CREATE VIRTUAL TABLE t USING fts5 (x);
         CREATE VIRTUAL TABLE v USING fts5vocab (t, 'instance');",
    )
    .expect("fts5");
    let tx = conn.unchecked_transaction().expect("tx");
    for (i, doc) in docs.iter().enumerate() {
        tx.execute(
            "INSERT INTO t (rowid, x) VALUES (?1, ?2)",
            rusqlite::params![i as i64 + 1, doc],
        )
        .expect("insert");
    }
    tx.commit().expect("commit");
    let mut out = vec![Vec::new(); docs.len()];
    let mut stmt = conn
        .prepare("SELECT doc, term FROM v ORDER BY doc, offset")
        .expect("vocab");
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
        .expect("query");
    for row in rows {
        let (doc, term) = row.expect("row");
        out[doc as usize - 1].push(term);
    }
    out
}

fn ours(doc: &str) -> Vec<String> {
    words(doc).collect()
}

#[test]
fn words_equal_fts5_tokens_for_every_code_point() {
    // Each code point inside a word ("a·b") and starting one ("·b"), 4096 code points a doc.
    let all: Vec<char> = (0..=0x10FFFF).filter_map(char::from_u32).collect();
    let docs: Vec<String> = all
        .chunks(4096)
        .map(|chunk| chunk.iter().map(|c| format!("a{c}b {c}b\n")).collect())
        .collect();
    let want = fts5_tokens(&docs);
    for (doc, want) in docs.iter().zip(&want) {
        let got = ours(doc);
        if &got != want {
            let first = doc.lines().zip(doc.lines().map(ours));
            for (line, mine) in first {
                let theirs = &fts5_tokens(&[line.to_string()])[0];
                assert_eq!(&mine, theirs, "{line:?} ({:?})", line.chars().nth(1));
            }
        }
    }
}

#[test]
fn the_promised_edge_cases() {
    let cases: &[(&str, &[&str])] = &[
        (
            "see https://t.co/AbC12?x=1",
            &["see", "https", "t", "co", "abc12", "x", "1"],
        ),
        (
            "mail Jane.Doe@Example.org",
            &["mail", "jane", "doe", "example", "org"],
        ),
        ("/usr/local/bin", &["usr", "local", "bin"]),
        ("#Brexit @user_name", &["brexit", "user", "name"]),
        ("don't l'été", &["don", "t", "l", "ete"]),
        ("CAFÉ café cafe\u{301}", &["cafe", "cafe", "cafe"]),
        ("Ærø straße ΣΊΣΥΦΟΣ", &["ærø", "straße", "σίσυφοσ"]),
        // Emoji newer than SQLite's tables are unassigned there, and so word characters.
        ("日本語 🙂 x² ½", &["日本語", "🙂", "x²", "½"]),
        ("a\u{0}b", &["a", "b"]),
        ("", &[]),
    ];
    let docs: Vec<String> = cases.iter().map(|(t, _)| t.to_string()).collect();
    let fts5 = fts5_tokens(&docs);
    for ((text, want), fts5) in cases.iter().zip(&fts5) {
        assert_eq!(&ours(text), want, "{text:?}");
        assert_eq!(&ours(text), fts5, "{text:?} against FTS5");
    }
}

#[test]
fn a_search_is_for_exactly_one_word() {
    assert_eq!(search_word(" Obama! ").as_deref(), Some("obama"));
    assert_eq!(search_word("ÉTÉ").as_deref(), Some("ete"));
    for none in ["", " ", "#", "e-mail", "two words", "\u{301}"] {
        assert_eq!(search_word(none), None, "{none:?}");
    }
    assert!(term_matches("Hello https://example.com/Obama?x", "obama"));
    assert!(term_matches("a café", "CAFE"));
    assert!(!term_matches("obamacare", "obama"));
    assert!(!term_matches("e-mail", "e-mail"));
    assert_eq!(distinct_words("b a B a"), ["a", "b"]);
}

fn text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-zA-Z0-9 _'#@./:-]{1,6}",
        Just("é".to_string()),
        Just("E\u{301}".to_string()),
        Just("\u{301}".to_string()),
        Just("ß".to_string()),
        Just("İ".to_string()),
        Just("ǅ".to_string()),
        Just("Ⅻ".to_string()),
        Just("\u{e000}".to_string()),
        Just("𐐀".to_string()),
        Just("🙂".to_string()),
        Just("中文".to_string()),
        any::<char>().prop_map(String::from),
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn random_texts_tokenize_as_fts5_does(docs in proptest::collection::vec(text(), 1..20)) {
        let fts5 = fts5_tokens(&docs);
        for (doc, want) in docs.iter().zip(&fts5) {
            prop_assert_eq!(&ours(doc), want, "{:?}", doc);
        }
    }
}
