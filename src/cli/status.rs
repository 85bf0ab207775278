//! `replikativ status URL`: a running node's supervision tree, connections, CDVCSs and
//! realizers, read from its `/status.json` (DESIGN §14). `ws(s)://` URLs are mapped to
//! `http(s)://`; exit 1 when the node cannot be reached or refuses.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use serde_json::Value;

/// `replikativ status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The node's base URL: http(s)://HOST:PORT/ (ws:// and wss:// are accepted).
    pub url: String,
    /// Print `/status.json` as it came, on one line.
    #[arg(long)]
    pub json: bool,
    /// A file holding the node's admin token (needed when it listens beyond loopback).
    #[arg(long, value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Also trust this CA (PEM) for https:// (repeatable).
    #[arg(long, value_name = "PEM")]
    pub ca: Vec<PathBuf>,
}

/// The `/status.json` URL of a node's base URL.
pub fn status_url(base: &str) -> Result<String, super::UsageError> {
    let (scheme, rest) = base
        .split_once("://")
        .ok_or_else(|| super::UsageError(format!("{base:?} is not a URL (http://HOST:PORT/)")))?;
    let scheme = match scheme {
        "http" | "ws" => "http",
        "https" | "wss" => "https",
        other => {
            return Err(super::UsageError(format!(
                "{other}:// is not a node URL: use http(s):// or ws(s)://"
            )));
        }
    };
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err(super::UsageError(format!("{base:?} names no host")));
    }
    Ok(format!("{scheme}://{host}/status.json"))
}

/// Runs `status`.
pub fn run(args: StatusArgs) -> Result<()> {
    let url = status_url(&args.url)?;
    let token = match &args.admin_token_file {
        Some(path) => Some(super::node_args::read_token(path)?),
        None => None,
    };
    let tls = crate::peer::tls::ClientTls::with_cas(&args.ca)?;
    let fetched = url.clone();
    let body = actix_rt::System::new().block_on(async move {
        let url = fetched;
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .connector(awc::Connector::new().rustls_0_23(tls.http()))
            .finish();
        let mut request = client.get(&url);
        if let Some(token) = &token {
            request = request.bearer_auth(token);
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach {url}: {e}"))?;
        let body = response
            .body()
            .limit(64 * 1024 * 1024)
            .await
            .with_context(|| format!("reading {url}"))?;
        let text = String::from_utf8_lossy(&body).into_owned();
        if !response.status().is_success() {
            bail!("{url} answered {}: {}", response.status(), text.trim());
        }
        Ok(text)
    })?;
    if args.json {
        let value: Value =
            serde_json::from_str(&body).with_context(|| format!("{url} sent no JSON"))?;
        println!("{value}");
        return Ok(());
    }
    let status: Value =
        serde_json::from_str(&body).with_context(|| format!("{url} sent no JSON"))?;
    print!("{}", describe(&status));
    Ok(())
}

/// The status as text for a terminal.
pub fn describe(status: &Value) -> String {
    let mut out = format!("node {}\n\nsupervision tree\n", text(&status["node"]));
    tree(&status["tree"], 1, &mut out);
    out.push_str("\nconnections\n");
    for c in status["connections"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  {} {} ({}{}), {} B in, {} B out\n",
            text(&c["peer"]),
            text(&c["remote"]),
            text(&c["rights"]),
            if c["dialled"] == true {
                ", dialled"
            } else {
                ""
            },
            c["bytes_in"],
            c["bytes_out"]
        ));
    }
    out.push_str("\nCDVCSs\n");
    for c in status["cdvcs"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  {}/{}: {} commits, {} head(s)\n",
            text(&c["user"]),
            text(&c["id"]),
            c["commits"],
            c["heads"].as_array().map_or(0, Vec::len)
        ));
    }
    out.push_str("\nrealizers\n");
    for r in status["realizers"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  {} on {}: {}, {} commits applied\n",
            text(&r["name"]),
            text(&r["cdvcs"]),
            text(&r["state"]),
            r["applied_commits"]
        ));
        if let Some(p) = r.get("parked") {
            out.push_str(&format!(
                "    parked at {}: {}\n    skip it with: {}\n",
                text(&p["commit"]),
                text(&p["reason"]),
                text(&p["skip"])
            ));
        }
    }
    out
}

fn tree(t: &Value, depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    out.push_str(&format!(
        "{pad}{} ({})\n",
        text(&t["path"]),
        text(&t["strategy"])
    ));
    for c in t["children"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{pad}  {} {} gen {} restarts {}\n",
            text(&c["id"]),
            text(&c["state"]),
            c["generation"],
            c["restarts"]
        ));
        if let Some(chain) = c["last_exit"].as_array() {
            let chain: Vec<&str> = chain.iter().filter_map(Value::as_str).collect();
            out.push_str(&format!("{pad}    last exit: {}\n", chain.join(": ")));
        }
        if c.get("tree").is_some() {
            tree(&c["tree"], depth + 2, out);
        }
    }
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_urls_map_to_their_status_json() {
        assert_eq!(
            status_url("ws://127.0.0.1:8080/").expect("ok"),
            "http://127.0.0.1:8080/status.json"
        );
        assert_eq!(
            status_url("wss://node.example:443").expect("ok"),
            "https://node.example:443/status.json"
        );
        assert_eq!(
            status_url("http://h:1/status").expect("ok"),
            "http://h:1/status.json"
        );
        assert!(status_url("ftp://h/").is_err());
        assert!(status_url("h:1").is_err());
        assert!(status_url("http:///").is_err());
    }
}
