//! Unit tests of [`super`]: keys as OpenSSL writes them, chains, verification failures,
//! reloading and the channel binding, each over a real rustls handshake in memory.
//!
//! `testdata/` holds keys written by OpenSSL 3 (test material only):
//! `openssl genrsa -traditional -out rsa-pkcs1.key 2048`, `openssl pkey -in rsa-pkcs1.key
//! -out rsa-pkcs8.key`, `openssl ecparam -name prime256v1 -genkey -noout -out ec-sec1.key`,
//! and for each a self-signed certificate valid for 100 years: `openssl req -x509 -key K -out
//! C -days 36500 -subj /CN=localhost -addext subjectAltName=DNS:localhost -addext
//! basicConstraints=critical,CA:FALSE`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::{ClientConnection, ServerConnection};
use rustls_pki_types::ServerName;

use super::*;

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/peer/testdata");

fn testdata(name: &str) -> PathBuf {
    Path::new(TESTDATA).join(name)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write a test file");
    path
}

/// What one in-memory handshake gave each side.
#[derive(Debug)]
struct Shook {
    client_binding: Option<ChannelBinding>,
    server_binding: Option<ChannelBinding>,
}

/// A full handshake between `client` (dialling `name`) and `server`, in memory.
fn handshake(
    client: Arc<rustls::ClientConfig>,
    server: ServerConfig,
    name: &str,
) -> Result<Shook, rustls::Error> {
    let name = ServerName::try_from(name.to_string()).expect("a server name");
    let mut c = ClientConnection::new(client, name)?;
    let mut s = ServerConnection::new(Arc::new(server))?;
    for _ in 0..20 {
        if !c.is_handshaking() && !s.is_handshaking() {
            return Ok(Shook {
                client_binding: ChannelBinding::of(&c),
                server_binding: ChannelBinding::of(&s),
            });
        }
        let mut buf = Vec::new();
        c.write_tls(&mut buf).expect("client writes");
        s.read_tls(&mut buf.as_slice()).expect("server reads");
        // A server that fails still sends its alert: the client's error is the one to report.
        let server_state = s.process_new_packets();
        let mut buf = Vec::new();
        s.write_tls(&mut buf).expect("server writes");
        c.read_tls(&mut buf.as_slice()).expect("client reads");
        c.process_new_packets()?;
        server_state?;
    }
    panic!("the handshake did not finish in 20 rounds");
}

/// A CA, and a leaf for `localhost` signed by it: (CA PEM, leaf chain PEM, leaf key PEM).
fn ca_and_leaf(intermediate: bool) -> (String, String, String) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // A name of its own: two test CAs must not look like one (same name, other key).
    ca_params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("test CA {}", uuid::Uuid::new_v4()),
    );
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("CA");
    let leaf_key = KeyPair::generate().expect("key");
    let leaf_params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    let chain = if intermediate {
        let mut mid_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        mid_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let mid = CertifiedIssuer::signed_by(mid_params, KeyPair::generate().expect("key"), &ca)
            .expect("intermediate");
        let leaf = leaf_params.signed_by(&leaf_key, &mid).expect("leaf");
        format!("{}{}", leaf.pem(), mid.pem())
    } else {
        leaf_params.signed_by(&leaf_key, &ca).expect("leaf").pem()
    };
    (ca.pem(), chain, leaf_key.serialize_pem())
}

#[test]
fn rsa_pkcs1_rsa_pkcs8_and_ec_sec1_keys_from_openssl_serve_a_verified_handshake() {
    for (cert, key) in [
        ("rsa.pem", "rsa-pkcs1.key"),
        ("rsa.pem", "rsa-pkcs8.key"),
        ("ec.pem", "ec-sec1.key"),
    ] {
        let server =
            ServerTls::load(testdata(cert), testdata(key)).unwrap_or_else(|e| panic!("{key}: {e}"));
        // The self-signed certificate is its own trust anchor.
        let client = ClientTls::with_cas(&[testdata(cert)]).expect("CA");
        let shook = handshake(
            client.peers(),
            server.server_config().expect("config"),
            "localhost",
        )
        .unwrap_or_else(|e| panic!("{key}: {e}"));
        assert!(
            shook.client_binding.is_some(),
            "{key}: TLS 1.3 has a binding"
        );
        assert_eq!(
            shook.client_binding, shook.server_binding,
            "{key}: both ends derive the same channel binding"
        );
    }
}

#[test]
fn a_pkcs8_key_and_a_chain_with_an_intermediate_verify_against_the_root_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, chain, key) = ca_and_leaf(true);
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2);
    assert!(key.contains("BEGIN PRIVATE KEY"), "rcgen writes PKCS#8");
    let server = ServerTls::load(
        write(dir.path(), "fullchain.pem", &chain),
        write(dir.path(), "privkey.pem", &key),
    )
    .expect("loads");
    let client = ClientTls::with_cas(&[write(dir.path(), "ca.pem", &ca)]).expect("CA");
    let shook = handshake(
        client.peers(),
        server.server_config().expect("config"),
        "localhost",
    )
    .expect("verified through the intermediate");
    assert_eq!(shook.client_binding, shook.server_binding);
    // Two connections have different bindings.
    let again = handshake(
        client.peers(),
        server.server_config().expect("config"),
        "localhost",
    )
    .expect("again");
    assert_ne!(again.client_binding, shook.client_binding);
}

#[test]
fn an_unknown_ca_and_a_wrong_name_are_refused_with_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, chain, key) = ca_and_leaf(false);
    let server = ServerTls::load(
        write(dir.path(), "cert.pem", &chain),
        write(dir.path(), "key.pem", &key),
    )
    .expect("loads");
    let (other_ca, _, _) = ca_and_leaf(false);
    let client = ClientTls::with_cas(&[write(dir.path(), "other.pem", &other_ca)]).expect("CA");
    let err = handshake(
        client.peers(),
        server.server_config().expect("config"),
        "localhost",
    )
    .expect_err("an unknown issuer is refused");
    let text = describe(&err, "localhost");
    assert!(
        text.contains("not signed by a trusted CA") && text.contains("--ca"),
        "{text}"
    );
    let client = ClientTls::with_cas(&[write(dir.path(), "ca.pem", &ca)]).expect("CA");
    let err = handshake(
        client.peers(),
        server.server_config().expect("config"),
        "example.org",
    )
    .expect_err("a name the certificate does not list is refused");
    let text = describe(&err, "example.org");
    assert!(text.contains("not made out to that name"), "{text}");
}

#[test]
fn tls_1_2_has_no_binding_and_peers_refuse_it() {
    let (ca, chain, key) = ca_and_leaf(false);
    let dir = tempfile::tempdir().expect("tempdir");
    let server = ServerTls::load(
        write(dir.path(), "cert.pem", &chain),
        write(dir.path(), "key.pem", &key),
    )
    .expect("loads");
    let tls12_only = || {
        ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS12])
            .expect("TLS 1.2")
            .with_no_client_auth()
            .with_cert_resolver(server.current.clone())
    };
    let client = ClientTls::with_cas(&[write(dir.path(), "ca.pem", &ca)]).expect("CA");
    let shook = handshake(client.http(), tls12_only(), "localhost").expect("https allows 1.2");
    assert_eq!((shook.client_binding, shook.server_binding), (None, None));
    assert!(
        handshake(client.peers(), tls12_only(), "localhost").is_err(),
        "a peer dial needs TLS 1.3"
    );
}

#[test]
fn reload_serves_the_new_pair_and_a_bad_file_keeps_the_old_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca1, chain1, key1) = ca_and_leaf(false);
    let (ca2, chain2, key2) = ca_and_leaf(false);
    let (cert, key) = (
        write(dir.path(), "cert.pem", &chain1),
        write(dir.path(), "key.pem", &key1),
    );
    let server = ServerTls::load(&cert, &key).expect("loads");
    let trusts = |ca: &str, name: &str| {
        let client = ClientTls::with_cas(&[write(dir.path(), name, ca)]).expect("CA");
        handshake(
            client.peers(),
            server.server_config().expect("config"),
            "localhost",
        )
        .is_ok()
    };
    assert!(trusts(&ca1, "ca1.pem") && !trusts(&ca2, "ca2.pem"));
    write(dir.path(), "cert.pem", &chain2);
    write(dir.path(), "key.pem", &key2);
    server.reload().expect("reloads");
    assert!(trusts(&ca2, "ca2.pem") && !trusts(&ca1, "ca1.pem"));
    write(dir.path(), "key.pem", "not a key");
    assert!(matches!(server.reload(), Err(TlsError::NoKey { .. })));
    assert!(trusts(&ca2, "ca2.pem"), "the pair in use stays");
}

#[test]
fn bad_files_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, chain, key) = ca_and_leaf(false);
    let cert = write(dir.path(), "cert.pem", &chain);
    let missing = dir.path().join("missing.pem");
    let err = ServerTls::load(&missing, &cert).expect_err("missing file");
    assert!(err.to_string().contains("missing.pem"), "{err}");
    // The certificate given as the key.
    let err = ServerTls::load(&cert, &cert).expect_err("no key");
    assert!(
        err.to_string().contains("cert.pem") && err.to_string().contains("holds a certificate"),
        "{err}"
    );
    let encrypted = write(
        dir.path(),
        "enc.key",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
    );
    let err = ServerTls::load(&cert, &encrypted).expect_err("encrypted");
    assert!(err.to_string().contains("openssl pkey"), "{err}");
    // A key that belongs to another certificate.
    let (_, _, other_key) = ca_and_leaf(false);
    let other = write(dir.path(), "other.key", &other_key);
    let err = ServerTls::load(&cert, &other).expect_err("mismatch");
    assert!(
        err.to_string().contains("other.key") && err.to_string().contains("cert.pem"),
        "{err}"
    );
    // A CA file with no certificate in it, and one holding only a key.
    let empty = write(dir.path(), "empty.pem", "");
    let err = ClientTls::with_cas(&[&empty]).expect_err("empty CA file");
    assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
    assert!(err.to_string().contains("empty.pem"), "{err}");
    let key_only = write(dir.path(), "key-only.pem", &key);
    assert!(ClientTls::with_cas(&[&key_only]).is_err());
    assert!(ClientTls::with_cas(&[write(dir.path(), "ca.pem", &ca)]).is_ok());
}
