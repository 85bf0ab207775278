//! What a word is, defined once for every sink: the tokens of SQLite FTS5's default
//! `unicode61` tokenizer (`remove_diacritics 1`), which the SQLite sink's full-text index uses.
//!
//! A word is a maximal run of token characters — letters, numbers and private-use characters
//! (general categories `L*`, `N*`, `Co`, and code points unassigned in SQLite's Unicode
//! tables) — case folded (simple folding) with the diacritics of
//! Latin letters removed; combining diacritics (U+0300–U+0331) inside a word are dropped,
//! anywhere else they separate. Everything else separates, so the words inside URLs, e-mail
//! addresses, paths, hashtags and mentions are found: `https://t.co/AbC` is `https`, `t`,
//! `co`, `abc`; `don't` is `don`, `t`; `snake_case` is `snake`, `case`; `Café` is `cafe`.
//!
//! The SQLite sink narrows a search with FTS5 and decides with [`term_matches`]; the Postgres
//! sink stores each tweet's [`distinct_words`] and compares them exactly. Both therefore count
//! the same tweets for any one-word search. The tables come from SQLite's source
//! ([`unicode61`]); a unit test checks every code point against the bundled FTS5.
//!
//! ```
//! use replikativ_core::words::{search_word, words};
//!
//! let found: Vec<String> = words("Ünïcode @User_1 https://t.co/X?a=b").collect();
//! assert_eq!(found, ["unicode", "user", "1", "https", "t", "co", "x", "a", "b"]);
//! assert_eq!(search_word("CAFÉ").as_deref(), Some("cafe"));
//! assert_eq!(search_word("e-mail"), None); // two words: no one-word search matches it
//! ```

mod unicode61;

use self::unicode61::{BLOCK, DATA, DIA, DIA_CHAR, FOLD, FOLD_OFFSET, MAP};

/// The words of `text`, in order, repeats included.
pub fn words(text: &str) -> Words<'_> {
    Words {
        chars: text.chars(),
    }
}

/// The distinct words of `text`, sorted (what the Postgres sink stores per tweet).
pub fn distinct_words(text: &str) -> Vec<String> {
    let mut all: Vec<String> = words(text).collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// The one word a search for `term` looks for: `None` when the term holds no word or several
/// (such a term equals no word, so a search for it finds nothing).
pub fn search_word(term: &str) -> Option<String> {
    let mut found = words(term);
    let word = found.next()?;
    found.next().is_none().then_some(word)
}

/// Whether a one-word search for `term` finds `text`.
pub fn term_matches(text: &str, term: &str) -> bool {
    search_word(term).is_some_and(|word| words(text).any(|w| w == word))
}

/// The iterator of [`words`].
#[derive(Clone, Debug)]
pub struct Words<'a> {
    chars: std::str::Chars<'a>,
}

impl Iterator for Words<'_> {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        // A word starts at a token character; a diacritic does not start one.
        let first = self.chars.by_ref().find(|&c| is_token_char(c))?;
        let mut word = String::new();
        push_folded(&mut word, first);
        for c in self.chars.by_ref() {
            if is_token_char(c) || is_diacritic(c) {
                push_folded(&mut word, c);
            } else {
                break;
            }
        }
        Some(word)
    }
}

/// Appends the folded form of `c` (nothing for a removed diacritic).
fn push_folded(word: &mut String, c: char) {
    let folded = fold(c as u32);
    if folded != 0 {
        // Folding maps a code point below U+10000 to one below U+10000 that is no surrogate.
        word.push(char::from_u32(folded).unwrap_or(c));
    }
}

/// Whether `c` belongs to a word: general category `L*`, `N*` or `Co`, or a code point the
/// tables do not list (as in SQLite, which counts its category 0 as a token category).
fn is_token_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric();
    }
    // SQLite reads the noncharacters U+FFFE and U+FFFF as U+FFFD, a symbol.
    if matches!(c, '\u{FFFE}' | '\u{FFFF}') {
        return false;
    }
    // Unlisted; Ll, Lm, Lo, Lt, Lu; Nd, Nl, No; Co (the table's category numbers).
    matches!(category(c as u32), 0 | 5..=9 | 13..=15 | 31)
}

/// The table's general category of `code` (0 for a code point it does not list).
fn category(code: u32) -> u16 {
    if code >= 1 << 20 {
        return 0;
    }
    let plane = (code >> 16) as usize;
    let (lo, hi) = (BLOCK[plane] as usize, BLOCK[plane + 1] as usize);
    let key = (code & 0xFFFF) as u16;
    // The last entry of the plane starting at or before `key`.
    let at = lo + MAP[lo..hi].partition_point(|&start| start <= key);
    if at == lo {
        return 0;
    }
    let at = at - 1;
    if u32::from(key) >= u32::from(MAP[at]) + u32::from(DATA[at] >> 5) {
        return 0;
    }
    match DATA[at] & 0x1F {
        // Alternating upper and lower case letters.
        30 if (key - MAP[at]) & 1 == 1 => 5,
        30 => 9,
        category => category,
    }
}

/// Whether `c` is one of the combining diacritics `unicode61` drops inside a word.
fn is_diacritic(c: char) -> bool {
    let c = c as u32;
    const MASK0: u32 = 0x0802_9FDF;
    const MASK1: u32 = 0x0003_61F8;
    match c {
        768..800 => MASK0 & (1 << (c - 768)) != 0,
        800..=817 => MASK1 & (1 << (c - 800)) != 0,
        _ => false,
    }
}

/// Simple case folding and diacritic removal of one code point (0: dropped).
fn fold(c: u32) -> u32 {
    if c < 128 {
        return u32::from((c as u8).to_ascii_lowercase());
    }
    if c < 0x10000 {
        let at = FOLD.partition_point(|&e| e >> 16 <= c) - 1;
        let (start, flags, range) = (FOLD[at] >> 16, (FOLD[at] >> 8) & 0xFF, FOLD[at] & 0xFF);
        let mut folded = c;
        if c < start + range && (1 & flags & (start ^ c)) == 0 {
            folded = (c + u32::from(FOLD_OFFSET[(flags >> 1) as usize])) & 0xFFFF;
        }
        return remove_diacritic(folded);
    }
    if (66560..66600).contains(&c) {
        return c + 40;
    }
    c
}

/// The ASCII letter under a lowercase Latin letter with a simple diacritic (0 for a combining
/// diacritic), or `c` itself.
fn remove_diacritic(c: u32) -> u32 {
    let key = (c << 3) | 7;
    let at = DIA.partition_point(|&d| u32::from(d) <= key) - 1;
    let (entry, base) = (u32::from(DIA[at]), DIA_CHAR[at]);
    if base & 0x80 != 0 || c > (entry >> 3) + (entry & 7) {
        c
    } else {
        u32::from(base & 0x7F)
    }
}
