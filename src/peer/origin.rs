//! Which websocket upgrades a node accepts from web browsers (DESIGN §11), as a pure check.
//!
//! Browsers do not apply CORS to websockets: any page a user opens could otherwise talk to a
//! node on their machine. Browsers always send `Origin` on a websocket upgrade; other
//! clients (replikativ's own, awc) send none and are not browsers, so they pass here and are
//! authenticated by their keys. An upgrade carrying `Origin` is accepted only when
//!
//! - its `Host` names this node — `localhost`, an IP address, or the host given to
//!   `--listen`, with the port the node listens on — so a page whose own name was rebound to
//!   this machine's address (DNS rebinding) is refused, and
//! - the origin is the node's own (`http://` or `https://` and the `Host`), or one listed
//!   with `--allow-origin`.

use std::net::IpAddr;

use super::trust::normalize_origin;

/// What an upgrade is checked against: the listener's port and host, and allowed origins.
#[derive(Clone, Debug)]
pub struct UpgradeRules {
    /// The port the node listens on.
    pub port: u16,
    /// The host given to `--listen` (lower case).
    pub listen_host: String,
    /// Origins allowed besides the node's own, normalized.
    pub origins: Vec<String>,
}

impl UpgradeRules {
    /// Rules for a listener bound to `port`, configured as `listen` (`HOST:PORT`).
    pub fn new(listen: &str, port: u16, origins: Vec<String>) -> UpgradeRules {
        let host = listen.rsplit_once(':').map_or(listen, |(h, _)| h);
        UpgradeRules {
            port,
            listen_host: host.trim_matches(['[', ']']).to_ascii_lowercase(),
            origins,
        }
    }

    /// Accepts or refuses (saying why) an upgrade with these `Origin` and `Host` headers.
    pub fn check(&self, origin: Option<&str>, host: Option<&str>) -> Result<(), String> {
        let Some(origin) = origin else {
            return Ok(());
        };
        let host = host.unwrap_or_default().trim().to_ascii_lowercase();
        if !self.names_this_node(&host) {
            return Err(format!(
                "the Host header {host:?} does not name this node (localhost, an IP address or {}, port {}): refused against DNS rebinding",
                self.listen_host, self.port
            ));
        }
        let origin = normalize_origin(origin);
        let own = [format!("http://{host}"), format!("https://{host}")];
        if own.contains(&origin) || self.origins.contains(&origin) {
            return Ok(());
        }
        Err(format!(
            "web pages of origin {origin} may not open websockets to this node (allow them with --allow-origin {origin})"
        ))
    }

    /// Whether `host` (`NAME[:PORT]`, lower case) names this node.
    fn names_this_node(&self, host: &str) -> bool {
        let (name, port) = split_host(host);
        let port_ok = match port {
            Some(p) => p.parse::<u16>().ok() == Some(self.port),
            None => self.port == 80,
        };
        port_ok
            && (name == "localhost" || name == self.listen_host || name.parse::<IpAddr>().is_ok())
    }
}

/// `name` and `port` of a `Host` header; an IPv6 name is given without its brackets.
fn split_host(host: &str) -> (&str, Option<&str>) {
    if let Some(rest) = host.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((name, tail)) => (name, tail.strip_prefix(':')),
            None => (rest, None),
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> UpgradeRules {
        UpgradeRules::new(
            "node.example.org:8080",
            8080,
            vec![normalize_origin("https://App.example.com/")],
        )
    }

    #[test]
    fn clients_without_an_origin_are_not_browsers_and_pass() {
        assert_eq!(rules().check(None, Some("anything:1")), Ok(()));
        assert_eq!(rules().check(None, None), Ok(()));
    }

    #[test]
    fn a_page_of_the_node_itself_or_of_an_allowed_origin_is_accepted() {
        let r = rules();
        for (origin, host) in [
            ("http://localhost:8080", "localhost:8080"),
            ("http://127.0.0.1:8080", "127.0.0.1:8080"),
            ("https://[::1]:8080", "[::1]:8080"),
            ("http://node.example.org:8080", "node.example.org:8080"),
            ("HTTP://LOCALHOST:8080/", "LocalHost:8080"),
            ("https://app.example.com", "localhost:8080"),
            ("https://app.example.com", "10.1.2.3:8080"),
        ] {
            assert_eq!(r.check(Some(origin), Some(host)), Ok(()), "{origin} {host}");
        }
    }

    #[test]
    fn a_foreign_origin_is_refused_naming_the_flag_that_allows_it() {
        let r = rules();
        for origin in [
            "http://evil.example.com",
            "null",
            "http://localhost:9999",
            "https://app.example.com:444",
        ] {
            let why = r
                .check(Some(origin), Some("localhost:8080"))
                .expect_err(origin);
            assert!(why.contains("--allow-origin"), "{origin}: {why}");
        }
    }

    #[test]
    fn a_host_that_does_not_name_the_node_is_refused_against_dns_rebinding() {
        let r = rules();
        for host in [
            "evil.example.com:8080",
            "localhost:8081",
            "localhost",
            "127.0.0.1",
            "",
            "node.example.org.evil.com:8080",
        ] {
            let origin = format!("http://{host}");
            let why = r.check(Some(&origin), Some(host)).expect_err(host);
            assert!(why.contains("DNS rebinding"), "{host}: {why}");
        }
        let on_80 = UpgradeRules::new("0.0.0.0:80", 80, Vec::new());
        assert_eq!(
            on_80.check(Some("http://localhost"), Some("localhost")),
            Ok(())
        );
    }
}
