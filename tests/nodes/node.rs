//! The stage API end to end: one node, two nodes replicating over a websocket, concurrent
//! commits on two nodes (two heads), and a `Wait` realizer that pauses until a merge and then
//! applies every op exactly once.

use std::collections::HashSet;
use std::time::Duration;

use crate::common::stage_support::{fresh_key, memory_realizer, note, wait_status};
use crate::common::wait::eventually;
use replikativ::Node;
use replikativ::crdt::Commit;
use replikativ::realize::MemorySink;
use replikativ::realize::realizer::{ConflictPolicy, RealizerStatus};
use replikativ::stage::StageError;

const T: Duration = Duration::from_secs(20);

fn url(node: &Node) -> String {
    format!("ws://{}/", node.listen_addr().expect("listening"))
}

#[test]
fn the_stage_creates_transacts_watches_and_reads_history_on_one_node() {
    actix_rt::System::new().block_on(async {
        let node = Node::builder().start().await.expect("start");
        let stage = node.stage();
        let key = fresh_key();
        stage.create_cdvcs(&key).await.expect("create");
        let root = Commit::root(&key).id;
        assert_eq!(stage.heads(&key).await.expect("heads"), vec![root]);

        let mut watch = stage.watch(&key).await.expect("watch");
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(
                stage
                    .transact(&key, vec![note(&format!("n{i}")), note(&format!("m{i}"))])
                    .await
                    .expect("transact"),
            );
        }
        assert_eq!(stage.heads(&key).await.expect("heads"), vec![ids[4]]);
        let history = stage.history(&key, &ids[4]).await.expect("history");
        let mut expected = vec![root];
        expected.extend(&ids);
        assert_eq!(history, expected, "history is root then commits in order");

        for id in &ids {
            let change = tokio::time::timeout(T, watch.recv())
                .await
                .expect("a change within the deadline")
                .expect("change");
            assert_eq!(change.added.as_slice(), &[*id]);
            assert_eq!(change.origin, None);
        }

        // An empty transaction is refused with a typed error, and changes nothing.
        let err = stage.transact(&key, Vec::new()).await;
        assert!(matches!(err, Err(StageError::Replica(_))), "{err:?}");
        assert_eq!(stage.heads(&key).await.expect("heads"), vec![ids[4]]);
        node.shutdown().await;
    });
}

#[test]
fn two_nodes_replicate_a_cdvcs_both_ways_over_a_websocket() {
    actix_rt::System::new().block_on(async {
        let key = fresh_key();
        let a = Node::builder()
            .name("a")
            .listen("127.0.0.1:0")
            .cdvcs(key.clone())
            .start()
            .await
            .expect("start a");
        let b = Node::builder()
            .name("b")
            .connect(url(&a))
            .cdvcs(key.clone())
            .start()
            .await
            .expect("start b");
        let from_a = a.stage().transact(&key, vec![note("a1")]).await.expect("a");
        let b_stage = b.stage();
        let b_replica = b.replica(&key).expect("b holds the key");
        eventually("b to receive a's commit", T, || {
            b_replica.heads() == vec![from_a]
        })
        .await;

        let from_b = b_stage.transact(&key, vec![note("b1")]).await.expect("b");
        let a_replica = a.replica(&key).expect("a holds the key");
        eventually("a to receive b's commit", T, || {
            a_replica.heads() == vec![from_b]
        })
        .await;
        let history = a.stage().history(&key, &from_b).await.expect("history");
        assert_eq!(history, vec![Commit::root(&key).id, from_a, from_b]);
        assert!(
            a.peers()
                .metrics()
                .bytes_in
                .load(std::sync::atomic::Ordering::Relaxed)
                > 0
        );
        b.shutdown().await;
        a.shutdown().await;
    });
}

#[test]
fn concurrent_transacts_on_two_nodes_make_two_heads_and_a_wait_realizer_resumes_after_the_merge() {
    actix_rt::System::new().block_on(async {
        let key = fresh_key();
        let sink = MemorySink::new();
        let a = Node::builder()
            .name("a")
            .listen("127.0.0.1:0")
            .cdvcs(key.clone())
            .start()
            .await
            .expect("start a");
        let b = Node::builder()
            .name("b")
            .realize(memory_realizer("mem", &key, &sink, ConflictPolicy::Wait))
            .start()
            .await
            .expect("start b");
        let realizer = b.realizer("mem").expect("realizer");
        let mut status = realizer.status();

        // Not connected yet: each side commits on its own, so the histories diverge.
        let a1 = a
            .stage()
            .transact(&key, vec![note("a1")])
            .await
            .expect("a1");
        let a2 = a
            .stage()
            .transact(&key, vec![note("a2")])
            .await
            .expect("a2");
        let b1 = b
            .stage()
            .transact(&key, vec![note("b1")])
            .await
            .expect("b1");
        wait_status(&mut status, T, |s| *s == RealizerStatus::Idle).await;
        assert!(realizer.is_applied(&b1));

        b.stage().connect(&url(&a)).await.expect("connect");
        let mut two: Vec<_> = vec![a2, b1];
        two.sort();
        let a_replica = a.replica(&key).expect("a");
        let b_replica = b.replica(&key).expect("b");
        eventually("both nodes to hold both heads", T, || {
            a_replica.heads() == two && b_replica.heads() == two
        })
        .await;
        let waiting = wait_status(&mut status, T, |s| {
            matches!(s, RealizerStatus::Waiting { .. })
        })
        .await;
        assert_eq!(waiting, RealizerStatus::Waiting { heads: two.clone() });
        // A transact is refused while there are two heads.
        assert!(a.stage().transact(&key, vec![note("x")]).await.is_err());
        assert!(!realizer.is_applied(&a1) && !realizer.is_applied(&a2));
        assert_eq!(
            sink.snapshot().ops.len(),
            1,
            "only b1 is applied while waiting"
        );

        // Merge on a; b receives the merge and the realizer applies a's branch and the merge.
        let heads = a.stage().heads(&key).await.expect("heads");
        let merge = a
            .stage()
            .merge(&key, heads, vec![note("merge-fix")])
            .await
            .expect("merge");
        eventually("b to receive the merge", T, || {
            b_replica.heads() == vec![merge]
        })
        .await;
        eventually("the merge to be realized", T, || {
            realizer.is_applied(&merge)
        })
        .await;
        wait_status(&mut status, T, |s| *s == RealizerStatus::Idle).await;

        let snap = sink.snapshot();
        let tags: Vec<String> = snap
            .ops
            .iter()
            .map(|op| op.params["tag"].as_str().expect("tag").to_string())
            .collect();
        assert_eq!(tags.len(), 4, "every op applied once: {tags:?}");
        let unique: HashSet<&String> = tags.iter().collect();
        assert_eq!(unique.len(), 4, "no op applied twice: {tags:?}");
        assert_eq!(tags[0], "b1");
        assert_eq!(
            &tags[1..],
            ["a1", "a2", "merge-fix"],
            "history order after the merge"
        );
        for id in [a1, a2, b1, merge] {
            assert!(snap.applied.contains(&id));
        }
        b.shutdown().await;
        a.shutdown().await;
    });
}

#[allow(dead_code)]
#[path = "../../examples/embed.rs"]
mod embed;

#[test]
fn the_embedded_service_adds_and_lists_notes_and_shows_its_supervision_tree_and_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    actix_rt::System::new().block_on(async {
        let app = embed::start(dir.path(), "127.0.0.1:0", "127.0.0.1:0")
            .await
            .expect("start the service");
        let base = format!("http://{}", app.http);
        let client = awc::Client::new();

        for (author, text) in [("ada", "first"), ("bob", "second"), ("ada", "third")] {
            let mut res = client
                .post(format!("{base}/notes"))
                .send_json(&serde_json::json!({"author": author, "text": text}))
                .await
                .expect("POST /notes");
            assert_eq!(res.status().as_u16(), 201);
            let body: serde_json::Value = res.json().await.expect("json");
            assert_eq!(body["realized"], true, "{body}");
            assert_eq!(body["commit"].as_str().map(str::len), Some(64), "{body}");
        }
        let mut res = client
            .post(format!("{base}/notes"))
            .send_json(&serde_json::json!({"text": "no author"}))
            .await
            .expect("POST a bad note");
        assert_eq!(res.status().as_u16(), 400);
        let _ = res.body().await;

        let mut res = client
            .get(format!("{base}/notes"))
            .send()
            .await
            .expect("GET");
        let notes: serde_json::Value = res.json().await.expect("json");
        assert_eq!(
            notes,
            serde_json::json!([
                {"author": "ada", "text": "first"},
                {"author": "bob", "text": "second"},
                {"author": "ada", "text": "third"},
            ])
        );

        let mut res = client
            .get(format!("{base}/realizer"))
            .send()
            .await
            .expect("GET /realizer");
        let status: serde_json::Value = res.json().await.expect("json");
        assert_eq!(status["applied"], 3, "{status}");

        let mut res = client
            .get(format!("{base}/supervision/tree"))
            .send()
            .await
            .expect("GET tree");
        let tree = String::from_utf8(res.body().await.expect("body").to_vec()).expect("utf-8");
        for part in [
            "embed",
            "store",
            "replicas",
            "peers",
            "listener",
            "realizers",
            "notes",
        ] {
            assert!(tree.contains(part), "tree lacks {part}:\n{tree}");
        }

        // The node's operations endpoints, mounted in the app under /ops.
        let mut res = client
            .get(format!("{base}/ops/metrics"))
            .send()
            .await
            .expect("GET /ops/metrics");
        assert_eq!(res.status().as_u16(), 200);
        let metrics = String::from_utf8(res.body().await.expect("body").to_vec()).expect("utf-8");
        assert_eq!(
            crate::common::http::metric(&metrics, "replikativ_realized_ops_total", None),
            Some(3.0),
            "{metrics}"
        );
        let mut res = client
            .get(format!("{base}/ops/status.json"))
            .send()
            .await
            .expect("GET /ops/status.json");
        let status: serde_json::Value = res.json().await.expect("json");
        assert_eq!(status["node"], app.node.public_key().to_string());
        let page = client
            .get(format!("{base}/ops/status"))
            .send()
            .await
            .expect("GET /ops/status")
            .body()
            .await
            .expect("page");
        assert!(String::from_utf8_lossy(&page).contains("replikativ node"));

        // Stopping and restarting the realizer shows up in the recent events.
        let realizers = app
            .node
            .supervisor()
            .supervisor("realizers")
            .await
            .expect("realizers");
        realizers.terminate_child("notes").await.expect("terminate");
        realizers.restart_child("notes").await.expect("restart");
        let url = format!("{base}/supervision/events");
        crate::common::wait::eventually_async("the restart to be listed", T, || {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let Ok(mut res) = client.get(url).send().await else {
                    return false;
                };
                let events: serde_json::Value = res.json().await.unwrap_or_default();
                events.as_array().is_some_and(|evs| {
                    evs.iter().any(|e| {
                        e["child"] == "notes"
                            && e["supervisor"] == "embed/realizers"
                            && e["generation"] == 2
                    })
                })
            }
        })
        .await;
        app.server.stop(true).await;
        app.node.shutdown().await;
    });
}

/// A test CA and a certificate it signed for `localhost`, as PEM files in `dir`: (CA, chain,
/// key).
pub(crate) fn test_pki(dir: &std::path::Path) -> [std::path::PathBuf; 3] {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("CA");
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .expect("params")
        .signed_by(&key, &ca)
        .expect("certificate");
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write PEM");
        path
    };
    [
        write("ca.pem", ca.pem()),
        write("cert.pem", cert.pem()),
        write("key.pem", key.serialize_pem()),
    ]
}

/// The embedding API's TLS, key and rules: the example serves `wss://` as its own key to the
/// keys it allows; a node trusting the CA with an allowed key replicates its notes, one that
/// does not trust the CA is refused with the reason, and an unlisted key is refused.
#[test]
fn the_embedded_service_serves_its_notes_over_wss_to_a_node_that_trusts_its_ca() {
    use replikativ::peer::tls::{ClientTls, ServerTls};
    let dir = tempfile::tempdir().expect("tempdir");
    let [ca, cert, key] = test_pki(dir.path());
    let own = replikativ::identity::Keypair::from_seed([41; 32]);
    let allowed = replikativ::identity::Keypair::from_seed([42; 32]);
    let unlisted = replikativ::identity::Keypair::from_seed([43; 32]);
    actix_rt::System::new().block_on(async {
        let options = embed::PeerOptions {
            tls: Some(ServerTls::load(&cert, &key).expect("server TLS")),
            key: Some(own.clone()),
            allow: vec![allowed.public()],
            ..Default::default()
        };
        let app = embed::start_with(&dir.path().join("a"), "127.0.0.1:0", "127.0.0.1:0", options)
            .await
            .expect("start the service");
        let mut res = awc::Client::new()
            .post(format!("http://{}/notes", app.http))
            .send_json(&serde_json::json!({"author": "ada", "text": "over TLS"}))
            .await
            .expect("POST /notes");
        assert_eq!(res.status().as_u16(), 201);
        let _ = res.body().await;
        let heads = app
            .node
            .replica(&embed::notes_key())
            .expect("notes")
            .heads();
        let port = app.node.listen_addr().expect("listening").port();
        let url = format!("wss://localhost:{port}/");

        assert_eq!(app.node.public_key(), own.public());
        let trusting = Node::builder()
            .name("trusting")
            .key(allowed.clone())
            .connect(url.clone())
            .tls_client(ClientTls::with_cas(&[&ca]).expect("CA"))
            .cdvcs(embed::notes_key())
            .start()
            .await
            .expect("start");
        let stranger = Node::builder()
            .name("stranger")
            .key(unlisted.clone())
            .connect(url.clone())
            .tls_client(ClientTls::with_cas(&[&ca]).expect("CA"))
            .cdvcs(embed::notes_key())
            .start()
            .await
            .expect("start");
        let untrusting = Node::builder()
            .name("untrusting")
            .connect(url.clone())
            .cdvcs(embed::notes_key())
            .start()
            .await
            .expect("start");
        eventually("the note to replicate over wss://", T, || {
            trusting
                .replica(&embed::notes_key())
                .is_some_and(|r| r.heads() == heads)
        })
        .await;
        eventually(
            "the untrusting node to name the certificate error",
            T,
            || {
                untrusting
                    .peers()
                    .last_dial_error(&url)
                    .is_some_and(|e| e.contains("not signed by a trusted CA"))
            },
        )
        .await;
        let held = untrusting
            .replica(&embed::notes_key())
            .expect("notes")
            .heads();
        assert_ne!(held, heads, "nothing came from the unverified peer");
        eventually("the unlisted key to be refused", T, || {
            stranger
                .peers()
                .refusal(&url)
                .is_some_and(|why| why.contains("unknown peer key"))
        })
        .await;
        stranger.shutdown().await;
        trusting.shutdown().await;
        untrusting.shutdown().await;
        app.server.stop(true).await;
        app.node.shutdown().await;
    });
}
