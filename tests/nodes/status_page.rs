//! The live status page (DESIGN §14) in a real headless Chromium through the project's
//! WebDriver harness: a two-node setup shows its tree and connection, and the page updates —
//! without a reload — when a realizer's child restarts after a crash and when it parks on a
//! poison record (with the command that skips it).
//!
//! `REPLIKATIV_SCREENSHOTS=1` also writes `docs/status-page.png`.

use std::time::Duration;

use crate::common::browser::{Browser, docs_dir};
use crate::common::nodes::url;
use crate::common::stage_support::{memory_realizer, note};
use replikativ::Node;
use replikativ::crdt::CrdtKey;
use replikativ::node::StoreLocation;
use replikativ::realize::MemorySink;
use replikativ::realize::memory::InjectedFailure;
use replikativ::realize::realizer::ConflictPolicy;

const T: Duration = Duration::from_secs(30);

/// Runs `f` with the browser off the node's thread (the nodes keep serving meanwhile).
async fn with_browser<T: Send + 'static>(
    browser: Browser,
    f: impl FnOnce(&mut Browser) -> T + Send + 'static,
) -> (Browser, T) {
    tokio::task::spawn_blocking(move || {
        let mut browser = browser;
        let out = f(&mut browser);
        (browser, out)
    })
    .await
    .expect("browser thread")
}

#[test]
fn the_status_page_follows_a_restart_and_a_parked_realizer_without_a_reload() {
    let Some(browser) = Browser::start("status page") else {
        return;
    };
    let key = CrdtKey::new("mail:status@replikativ.io", uuid::Uuid::new_v4());
    let sink = MemorySink::accepting(&["note"]);
    actix_rt::System::new().block_on(async {
        let a = Node::builder()
            .name("a")
            .store(StoreLocation::Memory)
            .listen("127.0.0.1:0")
            .cdvcs(key.clone())
            .realize(memory_realizer("mem", &key, &sink, ConflictPolicy::Wait))
            .start()
            .await
            .expect("node a");
        let b = Node::builder()
            .name("b")
            .store(StoreLocation::Memory)
            .connect(url(&a))
            .cdvcs(key.clone())
            .start()
            .await
            .expect("node b");
        let stage = a.stage();
        stage
            .transact(&key, vec![note("first")])
            .await
            .expect("first");
        let page = format!("http://{}/status", a.listen_addr().expect("listening"));
        let b_key = b.public_key().to_string();
        let (browser, _) = with_browser(browser, move |br| {
            br.goto(&page);
            br.wait_text("the tree and the connection", T, |t| {
                t.contains("store running")
                    && t.contains("mem")
                    && t.contains(&b_key)
                    && t.contains("updates: live")
            })
        })
        .await;

        // A crash of the realizer: its supervisor restarts it; the page shows it.
        sink.fail_next(InjectedFailure::Panic);
        stage
            .transact(&key, vec![note("second")])
            .await
            .expect("second");
        let (browser, _) = with_browser(browser, |br| {
            br.wait_text("the realizer's restart", T, |t| {
                t.lines()
                    .any(|l| l.contains("mem") && l.contains("restarts 1"))
                    && t.contains("restart scheduled")
            })
        })
        .await;

        // A poison record: the realizer parks at it; the page names it and the skip command.
        let poison = stage
            .transact(&key, vec![("poison".to_owned(), b"\xa1x".to_vec())])
            .await
            .expect("poison");
        let wanted = poison.to_hex();
        let (browser, text) = with_browser(browser, move |br| {
            let text = br.wait_text("the parked realizer", T, |t| {
                t.contains("parked at") && t.contains(&wanted) && t.contains("realize-skip")
            });
            if std::env::var_os("REPLIKATIV_SCREENSHOTS").is_some() {
                br.screenshot(&docs_dir().join("status-page.png"));
            }
            text
        })
        .await;
        assert!(text.contains("updates: live"), "{text}");
        drop(browser);
        b.shutdown().await;
        a.shutdown().await;
    });
}

/// A node listening beyond loopback keeps its status behind the admin token: the page opened
/// without it, or with a wrong one, shows the refusal and no data; opened as
/// `/status#token=…` it goes live (the token travels in the fragment, never to a server log).
#[test]
fn the_status_page_beyond_loopback_goes_live_only_with_the_admin_token() {
    let Some(browser) = Browser::start("status page with a token") else {
        return;
    };
    let key = CrdtKey::new("mail:token@replikativ.io", uuid::Uuid::new_v4());
    let token = format!("t-{}", uuid::Uuid::new_v4().simple());
    actix_rt::System::new().block_on(async {
        let a = Node::builder()
            .name("a")
            .store(StoreLocation::Memory)
            .listen("0.0.0.0:0")
            .open(true)
            .admin_token(token.clone())
            .cdvcs(key.clone())
            .start()
            .await
            .expect("node a listening beyond loopback");
        let port = a.listen_addr().expect("listening").port();
        let base = format!("http://127.0.0.1:{port}/status");
        let (browser, _) = with_browser(browser, move |br| {
            br.goto(&format!("{base}?try=none"));
            let refused = br.wait_text("the refusal without a token", T, |t| {
                t.contains("reconnecting (401")
            });
            assert!(!refused.contains("store running"), "{refused}");
            br.goto(&format!("{base}?try=wrong#token=not-the-token"));
            let refused = br.wait_text("the refusal of a wrong token", T, |t| {
                t.contains("reconnecting (401")
            });
            assert!(!refused.contains("store running"), "{refused}");
            br.goto(&format!("{base}?try=right#token={token}"));
            br.wait_text("the live page with the token", T, |t| {
                t.contains("store running") && t.contains("updates: live")
            })
        })
        .await;
        drop(browser);
        a.shutdown().await;
    });
}
