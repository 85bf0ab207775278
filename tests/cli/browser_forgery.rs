//! Forgeries sent to the browser peer (DESIGN §11 and §15, issue 19), as in trust part 2
//! (`tests/hostile/relay_forgery.rs`) but received by the page in a real headless Chromium: a
//! hostile websocket server, authenticating as an acceptor with the core's handshake, is what
//! the page's `?ws=` points at. Its first connection gets a commit authored by key X and
//! signed by key Y, its second X's genuine commit with the value's bytes altered after
//! hashing, its third an honest batch. The page keeps and shows nothing of the first two, its
//! notes name the refused commit and value, and it reconnects and keeps the honest batch,
//! which a reload verifies again from IndexedDB.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;

use crate::browser_peer::{T, notes, page_search, wait_status};
use crate::common::browser::Browser;
use crate::common::cli_support::Proc;
use crate::common::{free_port, wait_port};

/// The hostile server's script, shared by its connections.
struct Script {
    crdt: replikativ::crdt::CrdtKey,
    /// Connection k gets `batches[min(k, last)]`: frames sent after the page's heads.
    batches: Vec<Vec<Vec<u8>>>,
    connections: AtomicUsize,
}

mod hostile {
    //! A websocket server that speaks the protocol as an acceptor (the core's [`Handshake`])
    //! and then sends whatever its script says.

    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use actix::{Actor, ActorContext as _, StreamHandler};
    use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
    use actix_web_actors::ws;
    use replikativ::identity::Keypair;
    use replikativ::protocol::{Message, decode, encode};
    use replikativ::sync::{Handshake, Role};

    use super::Script;

    struct Conn {
        shake: Handshake,
        script: Arc<Script>,
        index: usize,
        sent: bool,
    }

    impl Actor for Conn {
        type Context = ws::WebsocketContext<Self>;

        fn started(&mut self, ctx: &mut Self::Context) {
            ctx.binary(encode(&self.shake.hello()).expect("hello"));
        }
    }

    impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for Conn {
        fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
            let bytes = match msg {
                Ok(ws::Message::Binary(b)) => b,
                Ok(ws::Message::Ping(p)) => return ctx.pong(&p),
                Ok(ws::Message::Close(_)) | Err(_) => return ctx.stop(),
                Ok(_) => return,
            };
            let Ok(msg) = decode(&bytes) else {
                return ctx.stop();
            };
            if self.shake.peer().is_none() {
                match self.shake.on_message(&msg) {
                    Ok(Some(proof)) => ctx.binary(encode(&proof).expect("proof")),
                    Ok(None) => {}
                    Err(_) => ctx.stop(),
                }
                return;
            }
            match msg {
                Message::Heads { crdt, .. } if crdt == self.script.crdt && !self.sent => {
                    self.sent = true;
                    let last = self.script.batches.len() - 1;
                    for frame in &self.script.batches[self.index.min(last)] {
                        ctx.binary(frame.clone());
                    }
                }
                Message::Ping(n) => ctx.binary(encode(&Message::Pong(n)).expect("pong")),
                _ => {}
            }
        }
    }

    async fn accept(
        req: HttpRequest,
        stream: web::Payload,
        script: web::Data<Arc<Script>>,
    ) -> Result<HttpResponse, actix_web::Error> {
        let script: Arc<Script> = script.get_ref().clone();
        let index = script.connections.fetch_add(1, Ordering::SeqCst);
        let key = Keypair::generate().expect("a key");
        let nonce: [u8; 32] = rand::random();
        let conn = Conn {
            shake: Handshake::new(key, Role::Acceptor, nonce, None),
            script,
            index,
            sent: false,
        };
        ws::WsResponseBuilder::new(conn, &req, stream)
            .frame_size(17 << 20)
            .start()
    }

    /// Serves `script` on 127.0.0.1:`port` in a thread of its own; stop it with the handle.
    pub fn serve(script: Arc<Script>, port: u16) -> actix_web::dev::ServerHandle {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(web::Data::new(script.clone()))
                        .route("/", web::get().to(accept))
                })
                .workers(1)
                .bind(("127.0.0.1", port))
                .expect("bind the hostile server")
                .run();
                tx.send(server.handle()).expect("the test waits");
                server.await.expect("the hostile server");
            });
        });
        rx.recv().expect("the hostile server started")
    }
}

/// The frames of a batch: the heads, the values, the commits.
fn batch_frames(
    crdt: &replikativ::crdt::CrdtKey,
    values: Vec<replikativ::protocol::Blob>,
    commit: &replikativ::crdt::EncodedCommit,
) -> Vec<Vec<u8>> {
    use replikativ::protocol::message::FixedBytes;
    use replikativ::protocol::{Blob, Message, encode};
    [
        Message::Heads {
            crdt: crdt.clone(),
            heads: vec![commit.id],
        },
        Message::Values {
            crdt: crdt.clone(),
            values,
        },
        Message::Commits {
            crdt: crdt.clone(),
            commits: vec![Blob::new(commit.bytes.clone())],
            signatures: vec![commit.signature.map(FixedBytes)],
        },
    ]
    .iter()
    .map(|m| encode(m).expect("encode"))
    .collect()
}

/// A commit on the root of `crdt` adding the tweet `params`, authored by `author`.
fn tweet_commit(
    crdt: &replikativ::crdt::CrdtKey,
    params: &[u8],
    author: &replikativ::identity::Keypair,
    ts: i64,
) -> replikativ::crdt::Commit {
    use replikativ::crdt::{Commit, Transaction};
    use replikativ::id::Id;
    Commit {
        parents: vec![Commit::root(crdt).id],
        transactions: vec![Transaction {
            op: "add-tweet".into(),
            params: Id::of(params),
        }],
        author: author.public().to_string(),
        ts,
    }
}

#[test]
fn a_forged_commit_and_a_tampered_value_are_refused_by_the_page_and_an_honest_batch_kept() {
    use replikativ::crdt::CrdtKey;
    use replikativ::crdt::authorship::sign;
    use replikativ::identity::Keypair;
    use replikativ::protocol::Blob;
    use replikativ::protocol::ByteBuf;
    use replikativ::tweets::encode_params;

    let Some(mut br) = Browser::start("browser peer refuses forgeries") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let crdt = CrdtKey::new("mail:hostile@replikativ.io", uuid::Uuid::new_v4());
    let (x, y) = (
        Keypair::generate().expect("x"),
        Keypair::generate().expect("y"),
    );
    let tweet = |id: &str, word: &str| {
        encode_params(&json!({"id": id, "text": format!("{word} says hello"), "author_id": "1"}))
    };

    // 1. A commit authored by X, signed by Y.
    let forged_params = tweet("880000000000000001", "forgedword");
    let mut forged = tweet_commit(&crdt, &forged_params, &x, 1).encode();
    forged.signature = Some(sign(&y, &forged.id));
    // 2. X's own commit, its value's bytes altered after hashing.
    let genuine_params = tweet("880000000000000002", "tamperedword");
    let mut tampered_commit = tweet_commit(&crdt, &genuine_params, &x, 2).encode();
    tampered_commit.signature = Some(sign(&x, &tampered_commit.id));
    let mut altered = genuine_params.clone();
    let at = altered.len() - 3;
    altered[at] ^= 0x20;
    let tampered_value = Blob {
        id: replikativ::id::Id::of(&genuine_params),
        bytes: ByteBuf(altered),
    };
    // 3. An honest batch: X's commit, signed by X, with its value.
    let honest_params = tweet("880000000000000003", "honestword");
    let mut honest = tweet_commit(&crdt, &honest_params, &x, 3).encode();
    honest.signature = Some(sign(&x, &honest.id));

    let script = Arc::new(Script {
        crdt: crdt.clone(),
        batches: vec![
            batch_frames(&crdt, vec![Blob::new(forged_params)], &forged),
            batch_frames(&crdt, vec![tampered_value], &tampered_commit),
            batch_frames(&crdt, vec![Blob::new(honest_params)], &honest),
        ],
        connections: AtomicUsize::new(0),
    });
    let ph = free_port();
    let server = hostile::serve(script.clone(), ph);

    // A node serves the page; its websocket goes to the hostile server.
    let pb = free_port();
    let lb = format!("127.0.0.1:{pb}");
    let _b = Proc::spawn(
        &["peer", "--store", "b", "--listen", &lb, "--web"],
        d,
        "b.log",
    );
    wait_port(pb, T);
    let page = format!("http://{lb}/app/?crdt={crdt}&ws=ws://127.0.0.1:{ph}/");
    br.goto(&page);
    let s = wait_status(&mut br, "the honest batch after two refusals", |s| {
        s["tweets"] == 1 && s["caught_up"] == true
    });
    assert!(
        script.connections.load(Ordering::SeqCst) >= 3,
        "the page reconnected after each refusal"
    );
    assert_eq!(s["commits"], 2, "the root and the honest commit: {s}");
    assert_eq!(s["records"], 1, "only the honest batch kept: {s}");
    assert_eq!(s["heads"], json!([honest.id.to_string()]), "{s}");
    let said = notes(&mut br);
    eprintln!("browser peer, the page's notes: {said:?}");
    let forged_id = forged.id.to_string();
    let value_id = tampered_value_id(&genuine_params);
    assert!(
        said.iter()
            .any(|n| n.contains("refused") && n.contains(&forged_id) && n.contains("signature")),
        "a note refuses the forged commit {forged_id}: {said:?}"
    );
    assert!(
        said.iter()
            .any(|n| n.contains("refused") && n.contains(&value_id)),
        "a note refuses the tampered value {value_id}: {said:?}"
    );
    for word in ["forgedword", "tamperedword"] {
        assert_eq!(page_search(&mut br, word).0, 0, "{word}");
    }
    let (n, ids) = page_search(&mut br, "honestword");
    assert_eq!(
        (n, ids),
        (1, BTreeSet::from(["880000000000000003".to_owned()]))
    );

    // A reload verifies the kept record again: the honest tweet, nothing else.
    actix_rt::System::new().block_on(server.stop(false));
    br.goto(&page);
    let s = wait_status(&mut br, "the reload", |s| s["records"] == 1);
    assert_eq!(s["tweets"], 1, "{s}");
    assert_eq!(s["commits"], 2, "{s}");
    assert_eq!(page_search(&mut br, "forgedword").0, 0);
    assert_eq!(page_search(&mut br, "honestword").0, 1);
}

/// The id the tampered value claims (its genuine bytes' hash).
fn tampered_value_id(genuine: &[u8]) -> String {
    replikativ::id::Id::of(genuine).to_string()
}
