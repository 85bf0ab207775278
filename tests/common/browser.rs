//! The one WebDriver harness of the project's browser tests: Debian's `chromium` driven
//! headless through `chromedriver`, spoken to over the W3C WebDriver protocol (JSON over
//! HTTP on loopback, a handful of endpoints, written here on std's TCP rather than pulling an
//! HTTP client stack into the tests).
//!
//! Without the browser, [`Browser::start`] answers `None` after printing loudly how to enable
//! the tests — unless `CI` is set, where a missing browser fails the test.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const DRIVER: &str = "/usr/bin/chromedriver";

/// A headless Chromium session; the driver is killed on drop.
pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    log: PathBuf,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session, or `None` (printed) when they
    /// are not installed and `CI` is not set.
    pub fn start(test: &str) -> Option<Browser> {
        if !Path::new(CHROMIUM).exists() || !Path::new(DRIVER).exists() {
            let how = "install Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)";
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: no browser at {CHROMIUM} / {DRIVER}; {how}"
            );
            eprintln!(
                "\n*** SKIPPED {test}: no browser at {CHROMIUM} / {DRIVER}; {how} to run it ***\n"
            );
            return None;
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let log = profile.path().join("chromedriver.log");
        // Port 0: chromedriver binds a free port itself and prints it, so no other test can
        // take the port between choosing it and binding it (a race CI once lost: the test
        // then spoke to another test's listener and was reset).
        let mut driver = Command::new(DRIVER)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("chromedriver log file"))
            .spawn()
            .expect("start chromedriver");
        let port = driver_port(&mut driver, &log);
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--window-size=1200,1000".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut browser = Browser {
            driver,
            addr,
            log,
            session: String::new(),
            _profile: profile,
        };
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args}
        }}});
        let created = browser.call("POST", "/session", Some(caps));
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"))
            .to_owned();
        Some(browser)
    }

    /// Opens `url`.
    pub fn goto(&mut self, url: &str) {
        let path = format!("/session/{}/url", self.session);
        self.call("POST", &path, Some(json!({ "url": url })));
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page; its value.
    pub fn execute(&mut self, script: &str, args: Vec<Value>) -> Value {
        let path = format!("/session/{}/execute/sync", self.session);
        self.call(
            "POST",
            &path,
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// The page's `document.body.innerText`.
    pub fn text(&mut self) -> String {
        self.execute("return document.body.innerText;", vec![])
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until `pred` holds of the page's text, without reloading it; the text.
    pub fn wait_text(
        &mut self,
        what: &str,
        limit: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let start = Instant::now();
        loop {
            let text = self.text();
            if pred(&text) {
                return text;
            }
            assert!(
                start.elapsed() < limit,
                "the page never showed {what} within {limit:?}; it shows:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A PNG screenshot of the viewport, written to `path`.
    pub fn screenshot(&mut self, path: &Path) {
        use base64::Engine as _;
        let shot = self.call(
            "GET",
            &format!("/session/{}/screenshot", self.session),
            None,
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot.as_str().expect("base64 PNG"))
            .expect("decode screenshot");
        std::fs::write(path, png).expect("write screenshot");
    }

    /// One WebDriver call: its `value`, or a panic naming the error.
    fn call(&mut self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut s = TcpStream::connect(self.addr)
            .unwrap_or_else(|e| panic!("connect to chromedriver: {e}{}", self.driver_log()));
        s.set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        s.write_all(request.as_bytes())
            .unwrap_or_else(|e| panic!("send to chromedriver: {e}{}", self.driver_log()));
        let payload = read_answer(&mut s)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}{}", self.driver_log()));
        let payload = String::from_utf8_lossy(&payload).into_owned();
        let answer: Value = serde_json::from_str(&payload)
            .unwrap_or_else(|e| panic!("chromedriver sent no JSON ({e}): {payload}"));
        if let Some(error) = answer["value"].get("error") {
            panic!(
                "WebDriver {method} {path}: {error}: {}",
                answer["value"]["message"]
            );
        }
        answer["value"].clone()
    }

    /// The driver's exit status, if it ended, and the end of its log, for a failure message.
    fn driver_log(&mut self) -> String {
        let status = match self.driver.try_wait() {
            Ok(Some(status)) => format!("chromedriver exited: {status}"),
            Ok(None) => "chromedriver is running".to_owned(),
            Err(e) => format!("chromedriver status unknown: {e}"),
        };
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!("\n{status}; the end of its log:\n{}", tail.join("\n"))
    }
}

/// Reads chromedriver's stdout until it names the port it bound; keeps draining the rest
/// on a thread so the driver never blocks on a full pipe.
fn driver_port(driver: &mut Child, log: &Path) -> u16 {
    use std::io::BufRead as _;
    let stdout = driver.stdout.take().expect("chromedriver stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        let mut sent = false;
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            if sent {
                continue;
            }
            if let Some(port) = line
                .split("started successfully on port ")
                .nth(1)
                .and_then(|rest| rest.trim_end_matches('.').trim().parse::<u16>().ok())
            {
                let _ = tx.send(port);
                sent = true;
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("chromedriver did not say which port it bound within 30 s; its log:\n{log}")
        })
}

/// Reads one HTTP answer's body: by its `Content-Length`, or chunked to its last chunk
/// (chromedriver keeps the connection open, so "read to the end" would wait).
fn read_answer(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let complete = |raw: &[u8]| -> Option<Vec<u8>> {
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
        let body = &raw[split + 4..];
        if head.contains("transfer-encoding: chunked") {
            return body.ends_with(b"0\r\n\r\n").then(|| dechunk(body));
        }
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())?;
        (body.len() >= length).then(|| body[..length].to_vec())
    };
    loop {
        if let Some(body) = complete(&raw) {
            return Ok(body);
        }
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "chromedriver closed the connection mid-answer",
            ));
        }
        raw.extend_from_slice(&buf[..n]);
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line) = body.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&body[..line]);
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        let rest = &body[line + 2..];
        if n == 0 || rest.len() < n {
            break;
        }
        out.extend_from_slice(&rest[..n]);
        body = rest[n..].strip_prefix(b"\r\n").unwrap_or(&rest[n..]);
    }
    out
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let path = format!("/session/{}", self.session);
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.call("DELETE", &path, None);
            }));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Where committed screenshots go: `docs/` of the repository.
pub fn docs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs")
}
