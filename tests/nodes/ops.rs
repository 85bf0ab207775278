//! Operations endpoints (DESIGN §14) of a running node: `/healthz`, `/status.json` and
//! `/metrics` (parsed by a Prometheus text parser), checked against what the test did (commits
//! made, the peer connected, the realizer's sink); beyond loopback only with the admin token.

use std::net::SocketAddr;
use std::time::Duration;

use crate::common::nodes::{commit_range, key, realizing_client, server, url};
use crate::common::wait::wait_until;
use replikativ::Node;
use replikativ::node::StoreLocation;
use replikativ::realize::Sink;

/// [`crate::common::http::get`] off the arbiter thread.
async fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    let (path, token) = (path.to_owned(), token.map(str::to_owned));
    tokio::task::spawn_blocking(move || crate::common::http::get(addr, &path, token.as_deref()))
        .await
        .expect("request thread")
}

#[test]
fn healthz_status_and_metrics_describe_the_node() {
    let crdt = key("ops@replikativ.io");
    actix_rt::System::new().block_on(async {
        let a = server(&crdt).await;
        commit_range(&a, &crdt, 0..5).await;
        let (b, sink) = realizing_client(&url(&a), &crdt).await;
        wait_until(
            "b realizes the five commits",
            Duration::from_secs(30),
            || sink.clone().applied().map(|s| s.len()).unwrap_or(0) >= 5,
            || "waiting".into(),
        )
        .await;
        let addr = a.listen_addr().expect("listening");

        let (code, body) = get(addr, "/healthz", None).await;
        assert_eq!((code, body.trim()), (200, "ok"));

        let (code, body) = get(addr, "/status.json", None).await;
        assert_eq!(code, 200, "{body}");
        let status: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        for field in [
            "node",
            "tree",
            "connections",
            "cdvcs",
            "realizers",
            "events",
        ] {
            assert!(status.get(field).is_some(), "{field} in {status}");
        }
        assert_eq!(status["node"], a.public_key().to_string());
        let peers: Vec<&str> = status["connections"]
            .as_array()
            .expect("connections")
            .iter()
            .map(|c| c["peer"].as_str().expect("peer"))
            .collect();
        assert_eq!(peers, [b.public_key().to_string()]);
        let ours = status["cdvcs"]
            .as_array()
            .expect("cdvcs")
            .iter()
            .find(|c| c["user"] == crdt.user.as_str() && c["id"] == crdt.id.to_string())
            .expect("the CDVCS is listed");
        assert_eq!(ours["commits"], 5, "{ours}");
        assert_eq!(ours["heads"].as_array().map(Vec::len), Some(1));
        assert_eq!(status["tree"]["path"], "server");

        let (code, body) = get(addr, "/metrics", None).await;
        assert_eq!(code, 200, "{body}");
        let value = |name: &str, label| crate::common::http::metric(&body, name, label);
        let cdvcs_id = crdt.id.to_string();
        assert_eq!(
            value("replikativ_commits", Some(("cdvcs", &cdvcs_id))),
            Some(5.0)
        );
        assert_eq!(
            value("replikativ_heads", Some(("cdvcs", &cdvcs_id))),
            Some(1.0)
        );
        assert_eq!(value("replikativ_peers_connected", None), Some(1.0));
        // B caught up: once its connection recorded the lag (about every second), A has no
        // commit B lacks.
        let b_key = b.public_key().to_string();
        let body = {
            let mut body = body;
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while crate::common::http::metric(
                &body,
                "replikativ_sync_lag_commits",
                Some(("peer", &b_key)),
            )
            .is_none()
            {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no lag series for {b_key}:\n{body}"
                );
                actix_rt::time::sleep(Duration::from_millis(100)).await;
                body = get(addr, "/metrics", None).await.1;
            }
            body
        };
        let value = |name: &str, label| crate::common::http::metric(&body, name, label);
        assert_eq!(
            value("replikativ_sync_lag_commits", Some(("peer", &b_key))),
            Some(0.0)
        );
        assert!(value("replikativ_bytes_sent_total", None).is_some_and(|v| v > 0.0));
        assert!(value("replikativ_bytes_received_total", None).is_some_and(|v| v > 0.0));
        assert_eq!(
            value("replikativ_child_restarts_total", Some(("child", "store"))),
            Some(0.0)
        );
        // A runs no realizer: no realizer series. Its store committed durably.
        assert!(value("replikativ_realizer_parked", None).is_none());
        assert!(value("replikativ_store_commit_seconds", None).is_some_and(|n| n >= 5.0));

        b.shutdown().await;
        a.shutdown().await;
    });
}

#[test]
fn beyond_loopback_the_endpoints_need_the_admin_token() {
    actix_rt::System::new().block_on(async {
        let open = |token: Option<&str>| {
            let mut b = Node::builder()
                .store(StoreLocation::Memory)
                .listen("0.0.0.0:0")
                .open(true);
            if let Some(t) = token {
                b = b.admin_token(t);
            }
            b.start()
        };
        let with = open(Some("s3cret")).await.expect("start");
        let port = with.listen_addr().expect("listening").port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let (code, body) = get(addr, "/status.json", None).await;
        assert_eq!(code, 401, "{body}");
        assert!(body.contains("Bearer"), "{body}");
        assert_eq!(get(addr, "/metrics", Some("wrong")).await.0, 401);
        assert_eq!(get(addr, "/healthz", Some("s3cret")).await.0, 200);
        assert_eq!(get(addr, "/status.json", Some("s3cret")).await.0, 200);
        with.shutdown().await;

        let without = open(None).await.expect("start");
        let port = without.listen_addr().expect("listening").port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let (code, body) = get(addr, "/metrics", Some("anything")).await;
        assert_eq!(code, 403, "{body}");
        assert!(body.contains("--admin-token-file"), "{body}");
        without.shutdown().await;
    });
}
