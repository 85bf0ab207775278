//! Peer comparison: the repository's tweet workload through `automerge` (its sync protocol) and
//! `yrs` (state vector + diff), in memory, one writer and one reader per system.
//!
//! `cargo run --release --manifest-path peers-bench/Cargo.toml -- [--quick] [--n N]`
//!
//! The parent re-executes itself once per system (`--system yrs|automerge`) so each system's
//! peak RSS (VmHWM) is its own; a child prints its figures as one JSON line on stdout. The
//! parent renders the markdown table, prints it and writes `peers-bench/results.md`.

mod automerge_peer;
mod drive;
mod figures;
mod report;
mod rss;
mod workload;
mod yrs_peer;

use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use crate::figures::SystemFigures;
use crate::workload::Workload;

/// Tweets per transaction / commit during ingest.
pub const BATCH: usize = 1_000;

/// New tweets on the writer before each reconnect.
pub const RECONNECT_NEW: [usize; 3] = [0, 10, 1_000];

const SYSTEMS: [&str; 2] = ["yrs", "automerge"];

struct Args {
    n: u64,
    quick: bool,
    system: Option<String>,
    mem_limit_gib: u64,
}

/// Address-space limit of each child by default: a system that needs more is stopped there
/// (and reported so) instead of pushing a shared machine into swap or the OOM killer.
const DEFAULT_MEM_LIMIT_GIB: u64 = 8;

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        n: 100_000,
        quick: false,
        system: None,
        mem_limit_gib: DEFAULT_MEM_LIMIT_GIB,
    };
    let mut n_given = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => args.quick = true,
            "--n" => {
                let v = it.next().context("--n needs a number")?;
                n_given = Some(
                    v.replace('_', "")
                        .parse()
                        .with_context(|| format!("--n {v}"))?,
                );
            }
            "--system" => args.system = Some(it.next().context("--system needs a name")?),
            "--mem-limit-gib" => {
                let v = it.next().context("--mem-limit-gib needs a number")?;
                args.mem_limit_gib = v.parse().with_context(|| format!("--mem-limit-gib {v}"))?;
            }
            "-h" | "--help" => {
                println!(
                    "peers-bench [--quick] [--n N] [--mem-limit-gib G]   (N = 100000 by default, \
                     10000 with --quick; each system's child process is limited to G GiB of \
                     address space, {DEFAULT_MEM_LIMIT_GIB} by default, 0 = no limit)"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    args.n = n_given.unwrap_or(if args.quick { 10_000 } else { 100_000 });
    Ok(args)
}

/// Limits this process's address space (RLIMIT_AS); an allocation past it aborts the child.
fn limit_memory(gib: u64) -> anyhow::Result<()> {
    if gib == 0 {
        return Ok(());
    }
    let bytes = gib.saturating_mul(1 << 30) as libc::rlim_t;
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: bytes,
    };
    // SAFETY: setrlimit reads the struct we pass and touches no Rust-owned memory.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) };
    if rc != 0 {
        bail!(
            "setrlimit(RLIMIT_AS, {gib} GiB): {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// Child: runs one system, printing its figures as a JSON line after every phase.
fn run_child(system: &str, n: u64, mem_limit_gib: u64) -> anyhow::Result<()> {
    limit_memory(mem_limit_gib)?;
    let (workload, source) = Workload::load()?;
    eprintln!(
        "{system}: {} base tweets from {}, mean value {:.0} bytes",
        workload.base_len(),
        source.description,
        workload.base_mean_value_len()
    );
    match system {
        "yrs" => drive::run::<yrs_peer::Yrs>(n, workload, source.description),
        "automerge" => drive::run::<automerge_peer::Automerge>(n, workload, source.description),
        other => bail!("unknown system {other:?} (yrs or automerge)"),
    }
}

/// Parent: one child per system, then the report.
fn run_parent(n: u64, mem_limit_gib: u64) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("finding this binary")?;
    let mut all = Vec::new();
    for system in SYSTEMS {
        eprintln!("running {system} with N = {n} in a child process");
        let out = Command::new(&exe)
            .args(["--system", system, "--n", &n.to_string()])
            .args(["--mem-limit-gib", &mem_limit_gib.to_string()])
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("starting the {system} child"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        // The last line is the latest phase the child finished.
        let Some(line) = stdout.lines().last() else {
            bail!("the {system} child printed no figures ({})", out.status);
        };
        let mut figures: SystemFigures =
            serde_json::from_str(line).with_context(|| format!("parsing {system}'s figures"))?;
        if !out.status.success() || !figures.complete {
            let limit = if mem_limit_gib == 0 {
                String::new()
            } else {
                format!(" (its address space was limited to {mem_limit_gib} GiB)")
            };
            figures.note = Some(format!(
                "the child ended with {}{limit}; the phase after the last one shown did not finish",
                out.status
            ));
        }
        all.push(figures);
    }
    let markdown = report::render(&all, n);
    print!("{markdown}");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results.md");
    std::fs::write(&path, &markdown).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("written to {}", path.display());
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    match &args.system {
        Some(system) => run_child(system, args.n, args.mem_limit_gib),
        None => run_parent(args.n, args.mem_limit_gib),
    }
}
