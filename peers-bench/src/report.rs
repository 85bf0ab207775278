//! The markdown report over all systems' figures.

use std::fmt::Write;

use crate::figures::{Exchange, SystemFigures};

fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}

fn secs(s: f64) -> String {
    if s < 0.001 {
        format!("{:.1} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

/// `12345678` → `12,345,678`.
fn thousands(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0 { format!("-{out}") } else { out }
}

fn bytes_vs_payload(e: &Exchange) -> String {
    if e.payload_bytes == 0 {
        return format!("{} B", thousands(e.bytes as i64));
    }
    format!(
        "{} B ({:.2}x payload)",
        thousands(e.bytes as i64),
        e.bytes as f64 / e.payload_bytes as f64
    )
}

/// The report: machine, workload, one summary table and one reconnect table.
pub fn render(all: &[SystemFigures], n: u64) -> String {
    let mut md = String::new();
    let cores = std::thread::available_parallelism().map_or(0, |c| c.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|r| r.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let _ = writeln!(md, "# Peer comparison, N = {}\n", thousands(n as i64));
    let _ = writeln!(
        md,
        "Machine: {cores} cores, {mem_gib:.0} GiB RAM. In memory, one writer and one reader \
         document per system, each system in its own child process."
    );
    if let Some(f) = all.first() {
        let _ = writeln!(
            md,
            "Workload: {} distinct tweets from {} repeated with fresh ids to N; payload \
             (key + value bytes) {} B, {:.0} B per tweet. Ingest in batches of 1,000 tweets, \
             one transaction/commit each.\n",
            f.base_tweets,
            f.source,
            thousands(f.payload_bytes as i64),
            f.payload_bytes as f64 / f.n as f64
        );
    }
    for f in all {
        let _ = writeln!(
            md,
            "- **{}** stores {}; sync: {}.",
            f.system, f.stored, f.protocol
        );
    }
    let _ = writeln!(
        md,
        "\n| system | ingest | tweets/s | full sync | full sync bytes | messages | peak RSS after ingest + full sync | peak RSS at the end (incl. reconnects) | peak RSS before the documents |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
    for f in all {
        let (sync_time, sync_bytes, messages) = match &f.full_sync {
            Some(e) => (secs(e.secs), bytes_vs_payload(e), e.messages.to_string()),
            None => ("did not finish".into(), "-".into(), "-".into()),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {sync_time} | {sync_bytes} | {messages} | {} | {} | {} |",
            f.system,
            secs(f.ingest_secs),
            thousands((f.n as f64 / f.ingest_secs) as i64),
            mib(f.rss_after_sync_kib),
            mib(f.peak_rss_kib),
            mib(f.rss_before_kib),
        );
    }
    for f in all {
        if let Some(note) = &f.note {
            let _ = writeln!(md, "\n**{}**: {note}.", f.system);
        }
    }
    let _ = writeln!(
        md,
        "\nReconnect after the full sync (the writer adds the new tweets in one transaction/commit \
         first; each row adds its own new tweets):\n"
    );
    let _ = writeln!(
        md,
        "| system | sync state | new tweets | bytes | payload | beyond payload | messages | time |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
    for f in all {
        for r in &f.reconnects {
            let e = &r.exchange;
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} B | {} B | {} B | {} | {} |",
                f.system,
                r.variant,
                thousands(r.new_tweets as i64),
                thousands(e.bytes as i64),
                thousands(e.payload_bytes as i64),
                thousands(e.overhead()),
                e.messages,
                secs(e.secs),
            );
        }
    }
    md
}
