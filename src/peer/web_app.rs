//! The browser peer's page at `/app` (DESIGN §15, `replikativ peer --web`): the page, its
//! script, the service worker that keeps them for offline reloads, and the browser peer
//! itself (`web/`, the pure core in WebAssembly), all built in: the binary serves the
//! committed build (`web/pkg`, rebuilt by `web/build.sh`), so no web toolchain is needed to
//! run it. `config.json` names the CDVCS the page replicates unless its URL says `?crdt=`.
//!
//! The page's websocket goes to the node that served it, under the node's `Origin` rule (its
//! own origin passes) and its trust rules (a node with rules must allow the page's key, shown
//! on the page, to read). Mount it in your own actix-web app with [`configure`].

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::crdt::CrdtKey;

/// The files of the page, by path under `/app/`, with their content types.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../web/app/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/app/app.js"),
    ),
    (
        "sw.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/app/sw.js"),
    ),
    (
        "replikativ_web.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/pkg/replikativ_web.js"),
    ),
    (
        "replikativ_web_bg.wasm",
        "application/wasm",
        include_bytes!("../../web/pkg/replikativ_web_bg.wasm"),
    ),
];

/// What a node serves at `/app`: the page, replicating `crdt` by default.
#[derive(Clone, Debug)]
pub struct WebApp {
    crdt: CrdtKey,
}

impl WebApp {
    /// The page, replicating `crdt` unless its URL names another.
    pub fn new(crdt: CrdtKey) -> WebApp {
        WebApp { crdt }
    }

    /// The answer for `path` (the request path, `/app` or under `/app/`), or `None` when
    /// the path is not the page's.
    pub fn serve(&self, path: &str) -> Option<HttpResponse> {
        let rest = path.strip_prefix("/app")?;
        let name = match rest {
            "" => {
                return Some(
                    HttpResponse::MovedPermanently()
                        .insert_header((LOCATION, "/app/"))
                        .finish(),
                );
            }
            "/" => "index.html",
            other => other.strip_prefix('/')?,
        };
        if name == "config.json" {
            let config = serde_json::json!({ "crdt": self.crdt.to_string() });
            return Some(
                HttpResponse::Ok()
                    .insert_header((CACHE_CONTROL, "no-cache"))
                    .json(config),
            );
        }
        let (_, kind, bytes) = FILES.iter().find(|(n, _, _)| *n == name)?;
        Some(
            HttpResponse::Ok()
                .insert_header((CONTENT_TYPE, *kind))
                // The service worker checks the network first; browsers revalidate.
                .insert_header((CACHE_CONTROL, "no-cache"))
                .body(*bytes),
        )
    }
}

/// The page's routes for an application's own actix-web app, at `/app/…` of its root (the
/// page's websocket goes to `/` of the same host: mount the node's listener there, or serve
/// the page from the node itself with `replikativ peer --web`).
pub fn configure(app: WebApp) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::new(app))
            .route("/app", web::get().to(serve))
            .route("/app/{file}", web::get().to(serve));
    }
}

async fn serve(req: HttpRequest, app: web::Data<WebApp>) -> HttpResponse {
    app.serve(req.path())
        .unwrap_or_else(|| HttpResponse::NotFound().body("no such file of the page\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody as _;

    fn body(r: HttpResponse) -> Vec<u8> {
        r.into_body()
            .try_into_bytes()
            .map(|b| b.to_vec())
            .unwrap_or_default()
    }

    #[test]
    fn the_page_its_files_and_its_config_are_served_and_nothing_else() {
        let key = CrdtKey::new("tweets", uuid::Uuid::from_u128(7));
        let app = WebApp::new(key.clone());
        let redirect = app.serve("/app").expect("redirect");
        assert_eq!(redirect.status(), 301);
        let page = app.serve("/app/").expect("page");
        assert!(String::from_utf8_lossy(&body(page)).contains("app.js"));
        let wasm = app.serve("/app/replikativ_web_bg.wasm").expect("wasm");
        assert_eq!(
            wasm.headers().get(CONTENT_TYPE).expect("type"),
            "application/wasm"
        );
        assert_eq!(&body(wasm)[..4], b"\0asm");
        let config: serde_json::Value =
            serde_json::from_slice(&body(app.serve("/app/config.json").expect("config")))
                .expect("json");
        assert_eq!(config["crdt"], key.to_string());
        for path in [
            "/app/../Cargo.toml",
            "/app/nope.js",
            "/application",
            "/status",
        ] {
            assert!(app.serve(path).is_none(), "{path}");
        }
    }
}
