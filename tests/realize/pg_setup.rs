//! The PostgreSQL sink's setup against a real server: the schema made in an empty database,
//! newer and foreign ones refused, rights named, credentials from the environment or a
//! password file, and `sslmode` honoured. Skipped loudly without the server binaries.

use replikativ::realize::SinkError;
use replikativ::realize::postgres::PgTarget;
use replikativ::tweets::{PgTweetDb, TweetQueries, open_pg_sink};

use crate::common::postgres::{PASSWORD, PgCluster};
use crate::pg_sink::{commits, realize, target, target_as};

fn unusable(r: Result<impl Sized, SinkError>) -> String {
    match r {
        Err(e @ SinkError::Unusable { .. }) => e.to_string(),
        Err(e) => panic!("expected Unusable, got {e:?}"),
        Ok(_) => panic!("expected a refusal"),
    }
}

#[test]
fn the_schema_is_made_in_an_empty_database_and_newer_or_foreign_ones_are_refused() {
    let Some(pg) = PgCluster::start("the_schema_is_made_in_an_empty_database") else {
        return;
    };
    pg.createdb("fresh");
    let t = target(&pg, "fresh");
    drop(open_pg_sink(&t).expect("creates"));
    drop(open_pg_sink(&t).expect("reopens"));
    assert_eq!(
        pg.psql(
            "fresh",
            "SELECT value FROM replikativ.meta WHERE key = 'schema:tweets'"
        ),
        "1"
    );

    pg.psql(
        "fresh",
        "UPDATE replikativ.meta SET value = '7' WHERE key = 'schema:tweets'",
    );
    let err = unusable(open_pg_sink(&t));
    assert!(err.contains("version 7") && err.contains("newer"), "{err}");
    assert!(
        PgTweetDb::open(&t)
            .expect_err("newer")
            .to_string()
            .contains("newer")
    );
    pg.psql(
        "fresh",
        "UPDATE replikativ.meta SET value = '1' WHERE key = 'schema:tweets';
                      UPDATE replikativ.meta SET value = '2' WHERE key = 'version'",
    );
    let err = unusable(open_pg_sink(&t));
    assert!(err.contains("version 2") && err.contains("newer"), "{err}");

    pg.createdb("other");
    pg.psql(
        "other",
        "CREATE SCHEMA replikativ; CREATE TABLE replikativ.stuff (x int)",
    );
    let err = unusable(open_pg_sink(&target(&pg, "other")));
    assert!(err.contains("not a replikativ sink"), "{err}");

    pg.createdb("empty");
    let err = unusable(replikativ::realize::PostgresSink::open_existing(&target(
        &pg, "empty",
    )));
    assert!(err.contains("holds no replikativ sink"), "{err}");
    let err = PgTweetDb::open(&target(&pg, "empty"))
        .expect_err("empty")
        .to_string();
    assert!(err.contains("no replikativ tweets"), "{err}");
    assert_eq!(
        pg.psql(
            "empty",
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'replikativ'"
        ),
        "0"
    );
}

#[test]
fn a_role_without_the_rights_it_needs_is_told_which() {
    let Some(pg) = PgCluster::start("a_role_without_the_rights_it_needs") else {
        return;
    };
    pg.createdb("owned");
    pg.psql("postgres", "CREATE ROLE analyst LOGIN PASSWORD 'a-secret'");
    let analyst = target_as(&pg, "analyst", "a-secret", "owned");
    let err = unusable(open_pg_sink(&analyst));
    assert!(
        err.contains("analyst") && err.contains("GRANT CREATE ON DATABASE owned"),
        "{err}"
    );

    let commits = commits();
    realize(
        &mut open_pg_sink(&target(&pg, "owned")).expect("owner"),
        &commits[..2],
    );
    pg.psql(
        "owned",
        "GRANT USAGE ON SCHEMA replikativ TO analyst;
                      GRANT SELECT ON ALL TABLES IN SCHEMA replikativ TO analyst",
    );
    let err = unusable(open_pg_sink(&analyst));
    assert!(
        err.contains("INSERT on replikativ.tweets")
            && err.contains("UPDATE on replikativ.counters"),
        "{err}"
    );
    // Reading needs no more than that.
    assert_eq!(
        PgTweetDb::open(&analyst)
            .expect("reader")
            .count()
            .expect("count"),
        80
    );

    pg.psql(
        "owned",
        "GRANT INSERT, UPDATE ON ALL TABLES IN SCHEMA replikativ TO analyst",
    );
    realize(
        &mut open_pg_sink(&analyst).expect("writer now"),
        &commits[2..],
    );
    assert_eq!(
        PgTweetDb::open(&analyst)
            .expect("reader")
            .count()
            .expect("count"),
        310
    );
}

#[test]
fn credentials_come_from_the_environment_or_a_password_file_and_tls_is_honoured() {
    let Some(pg) = PgCluster::start("credentials_and_tls") else {
        return;
    };
    let url = pg.url("postgres", "postgres");
    let no_env = |_: &str| None;
    let err = PgTarget::parse_with(&url, &no_env)
        .expect("target")
        .connect()
        .err()
        .expect("no password");
    assert!(format!("{err:?}").contains("password"), "{err:?}");
    assert!(target(&pg, "postgres").connect().is_ok());

    let dir = tempfile::tempdir().expect("tmp");
    let pgpass = dir.path().join("pgpass");
    std::fs::write(
        &pgpass,
        format!("127.0.0.1:{}:*:postgres:{PASSWORD}\n", pg.port()),
    )
    .expect("write");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let file = pgpass.to_str().expect("utf-8").to_string();
    let env = move |k: &str| (k == "PGPASSFILE").then(|| file.clone());
    assert!(
        PgTarget::parse_with(&url, &env)
            .expect("target")
            .connect()
            .is_ok()
    );

    // `tls_only` may connect over TLS only (pg_hba.conf).
    let tls_url = |mode: &str| format!("{}?sslmode={mode}", pg.url("tls_only", "postgres"));
    let env = |k: &str| (k == "PGPASSWORD").then(|| "tls-secret".to_string());
    let connect = |url: &str| PgTarget::parse_with(url, &env).expect("target").connect();
    let refused = connect(&tls_url("disable")).err().expect("plain refused");
    assert!(
        format!("{refused:?}").contains("no encryption"),
        "{refused:?}"
    );
    for mode in ["require", "prefer"] {
        let mut c = connect(&tls_url(mode)).unwrap_or_else(|e| panic!("{mode}: {e:?}"));
        let row = c
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .expect("ssl");
        assert!(row.get::<_, bool>(0), "{mode}: not encrypted");
    }
    let ca = pg.ca();
    let full = format!("{}&sslrootcert={}", tls_url("verify-full"), ca.display());
    assert!(connect(&full).is_ok(), "verify-full with the right CA");
    let other = dir.path().join("other-ca.pem");
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    std::fs::write(&other, params.self_signed(&key).expect("ca").pem()).expect("write");
    let wrong = format!("{}&sslrootcert={}", tls_url("verify-ca"), other.display());
    assert!(
        connect(&wrong).is_err(),
        "verify-ca with a foreign CA must fail"
    );
}
