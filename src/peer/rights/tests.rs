use super::*;
use crate::identity::Keypair;

fn key(seed: u8) -> PublicKey {
    Keypair::from_seed([seed; 32]).public()
}

const LISTED_R: u8 = 1;
const LISTED_W: u8 = 2;
const LISTED_RW: u8 = 3;
const UNKNOWN: u8 = 9;

fn flags() -> Rules {
    let mut rules = Rules::new();
    rules.allow(key(LISTED_R), Rights::READ);
    rules.allow(key(LISTED_W), Rights::WRITE);
    rules.allow(key(LISTED_RW), Rights::ALL);
    rules
}

/// Every combination of rules, `--open`, loopback, side and key against the table of the
/// module docs, written out independently of `Policy::rights`.
#[test]
fn every_combination_gives_the_rights_of_the_table() {
    let listed = [
        (LISTED_R, Rights::READ),
        (LISTED_W, Rights::WRITE),
        (LISTED_RW, Rights::ALL),
    ];
    for rules in ["none", "flags", "file", "empty file"] {
        for open in [false, true] {
            for loopback in [false, true] {
                let policy = match rules {
                    "none" => Policy::new(Rules::new(), None, open, loopback),
                    "flags" => Policy::new(flags(), None, open, loopback),
                    "file" => Policy::new(Rules::new(), Some(flags()), open, loopback),
                    _ => Policy::new(Rules::new(), Some(Rules::new()), open, loopback),
                };
                for side in [Role::Dialler, Role::Acceptor] {
                    for seed in [LISTED_R, LISTED_W, LISTED_RW, UNKNOWN] {
                        let got = policy.rights(&key(seed), side);
                        let listed_as = match rules {
                            "flags" | "file" => {
                                listed.iter().find(|(s, _)| *s == seed).map(|(_, r)| *r)
                            }
                            _ => None,
                        };
                        let expected = if rules == "none" {
                            match (side, loopback, open) {
                                (Role::Dialler, _, _) | (_, true, _) => Some(Rights::ALL),
                                (Role::Acceptor, false, true) => Some(Rights::READ),
                                (Role::Acceptor, false, false) => None,
                            }
                        } else {
                            match (listed_as, open) {
                                (Some(r), false) => Some(r),
                                (Some(r), true) => Some(Rights {
                                    read: true,
                                    write: r.write,
                                }),
                                (None, true) => Some(Rights::READ),
                                (None, false) => None,
                            }
                        };
                        assert_eq!(
                            got, expected,
                            "rules {rules}, open {open}, loopback {loopback}, {side:?}, key {seed}"
                        );
                    }
                }
                let protected = policy.check_protected("0.0.0.0:8081");
                let must_refuse = rules == "none" && !open && !loopback;
                assert_eq!(protected.is_err(), must_refuse, "{rules} {open} {loopback}");
            }
        }
    }
}

#[test]
fn the_unprotected_refusal_names_the_flags_that_fix_it() {
    let policy = Policy::new(Rules::new(), None, false, false);
    let text = policy
        .check_protected("0.0.0.0:8081")
        .expect_err("refused")
        .to_string();
    for needle in ["0.0.0.0:8081", "--allow", "--allow-file", "--open"] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
}

#[test]
fn flags_and_file_combine_and_a_reload_replaces_the_file_only() {
    let mut from_flags = Rules::new();
    from_flags.allow(key(1), Rights::READ);
    let mut from_file = Rules::new();
    from_file.allow(key(1), Rights::WRITE);
    from_file.allow(key(2), Rights::READ);
    let policy = Policy::new(from_flags, Some(from_file), false, false);
    assert_eq!(policy.rights(&key(1), Role::Acceptor), Some(Rights::ALL));
    assert_eq!(policy.rights(&key(2), Role::Dialler), Some(Rights::READ));
    let reloaded = policy.with_file(Rules::new());
    assert_eq!(reloaded.rights(&key(1), Role::Acceptor), Some(Rights::READ));
    assert_eq!(reloaded.rights(&key(2), Role::Dialler), None);
    assert!(reloaded.has_rules(), "an emptied file still means rules");
}

#[test]
fn an_allow_file_with_comments_and_blank_lines_parses() {
    let text = format!(
        "# collectors\n\n{} read,write\n  {}   read # the analyzer\n{} write\n{} read\n{} write,read\n",
        key(1),
        key(2),
        key(3),
        key(3),
        key(4)
    );
    let rules = Rules::parse(&text, Path::new("allow.txt")).expect("parses");
    assert_eq!(rules.len(), 4);
    assert_eq!(rules.get(&key(1)), Some(Rights::ALL));
    assert_eq!(rules.get(&key(2)), Some(Rights::READ));
    assert_eq!(rules.get(&key(3)), Some(Rights::ALL), "listed twice: both");
    assert_eq!(rules.get(&key(4)), Some(Rights::ALL));
    assert_eq!(rules.get(&key(5)), None);
    assert!(
        Rules::parse("\n# nothing\n", Path::new("a"))
            .expect("empty")
            .is_empty()
    );
}

#[test]
fn a_bad_line_is_an_error_naming_the_file_and_the_line() {
    let good = format!("{} read\n", key(1));
    for (bad, why) in [
        (format!("{} admin", key(2)), "unknown right"),
        (format!("{} read,admin", key(2)), "unknown right"),
        (format!("{}", key(2)), "is not `KEY"),
        (format!("{} read write", key(2)), "is not `KEY"),
        ("ed25519:short read".to_string(), "not a public key"),
        ("rsa:AAAA read".to_string(), "not a public key"),
    ] {
        let text = format!("# header\n{good}\n{bad}\n");
        let err = Rules::parse(&text, Path::new("/etc/allow.txt")).expect_err(&bad);
        assert!(
            matches!(&err, RulesError::Line { line: 4, .. }),
            "{bad}: {err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("/etc/allow.txt") && text.contains("line 4") && text.contains(why),
            "{bad}: {text}"
        );
    }
    let missing = Rules::read(Path::new("/nonexistent/allow.txt")).expect_err("missing");
    assert!(missing.to_string().contains("/nonexistent/allow.txt"));
}

#[test]
fn loopback_listeners_are_recognised_and_others_are_not() {
    for addr in [
        "127.0.0.1:0",
        "127.5.6.7:80",
        "[::1]:8080",
        "localhost:8080",
        "LOCALHOST:1",
    ] {
        assert!(is_loopback(addr), "{addr}");
    }
    for addr in ["0.0.0.0:8081", "[::]:8081", "192.168.1.1:80", "10.0.0.1:80"] {
        assert!(!is_loopback(addr), "{addr}");
    }
}
