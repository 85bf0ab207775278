//! The operations endpoints inside an application's own actix-web app (DESIGN §14): mount
//! them under a scope of your choosing and guard that scope as you guard the rest of your
//! app — the node's own loopback-or-token rule does not apply here.
//!
//! ```no_run
//! # async fn example(node: replikativ::Node) -> std::io::Result<()> {
//! use actix_web::{App, HttpServer, web};
//! let ops = node.ops().clone();
//! HttpServer::new(move || {
//!     App::new().service(web::scope("/ops").configure(replikativ::ops::mount::configure(ops.clone())))
//! })
//! .bind("127.0.0.1:8088")?
//! .run()
//! .await
//! # }
//! ```
//! serves `/ops/healthz`, `/ops/metrics`, `/ops/status.json`, `/ops/status` (the live page)
//! and `/ops/status/events`.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};

use super::Ops;
use crate::peer::live::{AdminRequest, AdminService, into_http};

/// The routes, for `App::configure` or `Scope::configure`.
pub fn configure(ops: Arc<Ops>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::from(ops));
        for path in [
            "/healthz",
            "/metrics",
            "/status.json",
            "/status",
            "/status/events",
        ] {
            cfg.route(path, web::get().to(serve));
        }
    }
}

async fn serve(req: HttpRequest, ops: web::Data<Ops>) -> HttpResponse {
    // The routes are mounted at these paths under the app's scope: the last segments name
    // the endpoint.
    let path = req.match_pattern().unwrap_or_else(|| req.path().to_owned());
    let endpoint = [
        "/status/events",
        "/status.json",
        "/status",
        "/metrics",
        "/healthz",
    ]
    .into_iter()
    .find(|e| path.ends_with(e))
    .unwrap_or("/healthz");
    let request = AdminRequest {
        path: endpoint.to_owned(),
        bearer: None,
        trusted: true,
    };
    match ops.handle(request).await {
        Some(answer) => into_http(answer),
        None => HttpResponse::NotFound().finish(),
    }
}
