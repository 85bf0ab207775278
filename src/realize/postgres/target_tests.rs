//! URL, environment and password file, as libpq combines them.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt as _;

use postgres::config::{Host, SslMode};

use super::{PgTarget, redact, split_pgpass};

fn parse(url: &str, env: &[(&str, &str)]) -> PgTarget {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    PgTarget::parse_with(url, &|k| env.get(k).cloned()).expect("parses")
}

#[test]
fn the_url_wins_and_the_environment_fills_in() {
    let t = parse(
        "postgres://alice@db.example:6000/tweets?sslmode=require",
        &[
            ("PGUSER", "bob"),
            ("PGHOST", "other"),
            ("PGDATABASE", "x"),
            ("PGPASSWORD", "pw"),
        ],
    );
    let c = t.config();
    assert_eq!(c.get_user(), Some("alice"));
    assert_eq!(c.get_hosts(), [Host::Tcp("db.example".into())]);
    assert_eq!(c.get_ports(), [6000]);
    assert_eq!(c.get_dbname(), Some("tweets"));
    assert_eq!(c.get_password(), Some(&b"pw"[..]));
    assert!(matches!(c.get_ssl_mode(), SslMode::Require));

    let t = parse(
        "postgres://",
        &[
            ("PGUSER", "bob"),
            ("PGHOST", "h"),
            ("PGPORT", "7"),
            ("PGDATABASE", "d"),
            ("PGSSLMODE", "disable"),
        ],
    );
    let c = t.config();
    assert_eq!(
        (c.get_user(), c.get_dbname(), c.get_ports()),
        (Some("bob"), Some("d"), &[7][..])
    );
    assert!(matches!(c.get_ssl_mode(), SslMode::Disable));
}

#[test]
fn a_private_password_file_supplies_the_password_and_a_shared_one_is_ignored() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("pgpass");
    std::fs::write(
        &file,
        "# comment\nother:*:*:*:nope\nh:5433:tweets:alice:s\\:cret\\\\x\n*:*:*:*:fallback\n",
    )
    .expect("write");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let f = file.to_str().expect("utf-8");
    let t = parse("postgres://alice@h:5433/tweets", &[("PGPASSFILE", f)]);
    assert_eq!(t.config().get_password(), Some(&b"s:cret\\x"[..]));
    let t = parse("postgres://carol@h:1/db", &[("PGPASSFILE", f)]);
    assert_eq!(t.config().get_password(), Some(&b"fallback"[..]));
    let t = parse(&format!("postgres://alice@h:5433/tweets?passfile={f}"), &[]);
    assert_eq!(t.config().get_password(), Some(&b"s:cret\\x"[..]));

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let t = parse("postgres://alice@h:5433/tweets", &[("PGPASSFILE", f)]);
    assert_eq!(
        t.config().get_password(),
        None,
        "a file others can read is ignored"
    );
}

#[test]
fn passwords_never_show_and_bad_settings_are_named() {
    assert_eq!(
        redact("postgres://u:secret@h/db?x=1"),
        "postgres://u:***@h/db?x=1"
    );
    assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    let t = parse("postgres://u:secret@h/db", &[]);
    assert!(!format!("{t} {t:?}").contains("secret"));
    for (url, needle) in [
        ("sqlite.db", "not a postgres:// URL"),
        ("postgres://h/db?sslmode=sometimes", "unknown sslmode"),
        (
            "postgres://h/db?sslmode=verify-full",
            "needs a root certificate",
        ),
        ("postgres://u:secret@h/db?bogus=1", "bogus"),
    ] {
        let err = PgTarget::parse_with(url, &|_| None)
            .expect_err(url)
            .to_string();
        assert!(err.contains(needle), "{url}: {err}");
        assert!(!err.contains("secret"), "{err}");
    }
    assert_eq!(
        split_pgpass("a:b\\:c:d:e:f:g"),
        ["a", "b:c", "d", "e", "f:g"]
    );
}
