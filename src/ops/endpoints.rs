//! The operations endpoints as the listener calls them: `/healthz`, `/metrics`,
//! `/status.json`, the live page `/status` and its event stream `/status/events`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Ops, metrics, text};
use crate::peer::context::PeerContext;
use crate::peer::live::{AdminBody, AdminRequest, AdminResponse, AdminService};

/// The live status page: one file, no external assets (works offline).
const PAGE: &str = include_str!("status.html");

/// How often the event stream looks for a changed status, and the longest it stays silent
/// (a comment-free repeat keeps proxies from closing it).
const TICK: Duration = Duration::from_millis(500);
const KEEPALIVE_TICKS: u32 = 30;

impl AdminService for Ops {
    fn handle(
        &self,
        request: AdminRequest,
    ) -> Pin<Box<dyn Future<Output = Option<AdminResponse>>>> {
        let known = matches!(
            request.path.as_str(),
            "/healthz" | "/metrics" | "/status.json" | "/status" | "/status/events"
        );
        if !known {
            return Box::pin(async { None });
        }
        let Some(peers) = self.peers.upgrade() else {
            return Box::pin(async { Some(text(503, "the node is stopping")) });
        };
        // The page itself holds no data: it asks the event stream, which checks the token.
        if request.path == "/status" {
            return Box::pin(async {
                Some(AdminResponse {
                    status: 200,
                    content_type: "text/html; charset=utf-8",
                    body: AdminBody::Text(PAGE.to_owned()),
                })
            });
        }
        if let Err(refused) = self.admitted(&peers, &request) {
            return Box::pin(async move { Some(refused) });
        }
        let me = self.clone();
        Box::pin(async move {
            Some(match request.path.as_str() {
                "/healthz" => me.health(&peers).await,
                "/metrics" => me.metrics(&peers).await,
                "/status/events" => me.events_stream(peers),
                _ => match me.status_json(&peers).await {
                    Ok(body) => AdminResponse {
                        status: 200,
                        content_type: "application/json",
                        body: AdminBody::Text(body),
                    },
                    Err(why) => text(503, &why),
                },
            })
        })
    }
}

impl Ops {
    /// 200 when the root supervisor answers and the store can be read, 503 otherwise.
    async fn health(&self, peers: &PeerContext) -> AdminResponse {
        if let Err(e) = self.root.which_children().await {
            return text(503, &format!("the root supervisor does not answer: {e}"));
        }
        match peers.store.list_crdts() {
            Ok(_) => text(200, "ok"),
            Err(e) => text(503, &format!("the store does not answer: {e}")),
        }
    }

    async fn status_json(&self, peers: &PeerContext) -> Result<String, String> {
        let status = self.status(peers).await?;
        serde_json::to_string(&status).map_err(|e| format!("encoding the status: {e}"))
    }

    async fn metrics(&self, peers: &PeerContext) -> AdminResponse {
        let status = match self.status(peers).await {
            Ok(s) => s,
            Err(why) => return text(503, &why),
        };
        let bytes = metrics::Bytes {
            sent: peers.metrics().bytes_out.load(Ordering::Relaxed),
            received: peers.metrics().bytes_in.load(Ordering::Relaxed),
        };
        let counters = match self.counters.lock() {
            Ok(c) => c
                .iter()
                .map(|(n, h, r)| (n.clone(), h.clone(), r()))
                .collect(),
            Err(p) => p
                .into_inner()
                .iter()
                .map(|(n, h, r)| (n.clone(), h.clone(), r()))
                .collect(),
        };
        let extra = metrics::Extra {
            commit_seconds: Some(self.commit_seconds.clone()),
            counters,
        };
        match metrics::render(&status, bytes, extra) {
            Ok(body) => AdminResponse {
                status: 200,
                content_type: "text/plain; version=0.0.4; charset=utf-8",
                body: AdminBody::Text(body),
            },
            Err(e) => text(500, &format!("rendering the metrics: {e}")),
        }
    }

    /// The status as server-sent events: at once, then whenever it changes (looked at every
    /// [`TICK`]), and at least every [`KEEPALIVE_TICKS`] ticks; ends with the node.
    fn events_stream(&self, peers: Arc<PeerContext>) -> AdminResponse {
        let me = self.clone();
        let state = (me, Arc::downgrade(&peers), None::<String>, 0u32, true);
        drop(peers);
        let stream =
            futures_util::stream::unfold(state, |(me, peers, last, quiet, first)| async move {
                if !first {
                    tokio::time::sleep(TICK).await;
                }
                let mut quiet = quiet;
                loop {
                    let node = peers.upgrade()?;
                    let now = me.status_json(&node).await.ok()?;
                    drop(node);
                    if last.as_deref() != Some(now.as_str()) || quiet >= KEEPALIVE_TICKS {
                        return Some((now.clone(), (me, peers, Some(now), 0, false)));
                    }
                    quiet += 1;
                    tokio::time::sleep(TICK).await;
                }
            });
        AdminResponse {
            status: 200,
            content_type: "text/event-stream",
            body: AdminBody::Events(Box::pin(stream)),
        }
    }
}
