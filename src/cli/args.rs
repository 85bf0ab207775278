//! The command line of DESIGN §8, as clap types. Options may come before or after a
//! subcommand's words (`query --sqlite F top 5 --json` and `query top 5 --sqlite F --json`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use uuid::Uuid;

/// The default user of the tweet collector (as in the seed).
pub const DEFAULT_USER: &str = "mail:twitter@crawler.com";
/// The default CDVCS id of the tweet collector (as in the seed).
pub const DEFAULT_CDVCS: &str = "12d49511-e733-4007-937b-460c3794fae9";

/// The tweets CDVCS the commands use by default (`--user`, `--cdvcs` defaults).
pub fn tweets_cdvcs() -> crate::crdt::CrdtKey {
    let id = Uuid::from_u128(0x12d4_9511_e733_4007_937b_460c_3794_fae9);
    crate::crdt::CrdtKey::new(DEFAULT_USER, id)
}

/// The format of stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people.
    Text,
    /// One JSON object per line (tracing's JSON format), for log collectors.
    Json,
}

/// replikativ: replicate data between peers, realize it into SQLite, query it.
#[derive(Debug, Parser)]
#[command(name = "replikativ", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// How logs and progress go to stderr: `text`, or `json` (one JSON object per line).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole pipeline on the compiled-in sample tweets: collector and analysis peers on
    /// loopback, then the answers (count, search, top accounts and a chart).
    Demo(DemoArgs),
    /// Collect tweets from a file, standard input or an HTTP stream into a CDVCS.
    ///
    /// A file source is checkpointed with every commit and resumes exactly after a crash.
    /// Standard input and HTTP sources cannot be rewound: tweets read but not yet committed when
    /// the process dies are lost. SIGTERM/SIGINT stop the source, commit what it read, join
    /// concurrent heads and exit 0 — or 1, saying how many tweets were not committed and why.
    /// Each tweet id is committed at most once per CDVCS (repeats are counted, not committed).
    Collect(CollectArgs),
    /// Subscribe to a peer's CDVCS, replicate it into a local store and realize it into SQLite
    /// or PostgreSQL.
    Analyze(AnalyzeArgs),
    /// Query a realized SQLite file or PostgreSQL database.
    Query(QueryArgs),
    /// Show the heads and size of a CDVCS in a store (derived from the graph only).
    Log(LogArgs),
    /// Serve a store to peers and keep it in sync with other peers.
    ///
    /// Every connection shares each CDVCS either side holds and the other may read. With
    /// --mirror, every CDVCS each --connect peer holds (and those it gets later) is taken,
    /// however many (without it, at most 1024 new ones per connection): a backup of a live
    /// node is `replikativ peer --store backup --connect URL --mirror`.
    Peer(PeerArgs),
    /// Re-hash every value of a store and check every CDVCS graph (like `git fsck`).
    Verify(VerifyArgs),
    /// Operator: rewrite a stopped store of an older format in this build's.
    ///
    /// Writes the new store beside the old one, verifies it, swaps it in atomically and keeps
    /// the old store file as `store.format-N.redb` (N its format) in the same directory. Interrupted (even
    /// killed), it is run again: it finishes or restarts; the old store is never modified.
    Upgrade(UpgradeArgs),
    /// Operator: join the heads of a CDVCS in a stopped store with the deterministic merge.
    ///
    /// Concurrent writes leave several heads; writers merge them by themselves. This does it
    /// for a store no writer runs on. The merge depends only on the heads (no author, no
    /// time), so other replicas that merge the same heads make the same commit.
    Merge(MergeArgs),
    /// Operator: skip a parked commit in a sink (recorded in the sink).
    #[command(name = "realize-skip")]
    RealizeSkip(RealizeSkipArgs),
    /// Make a new node key (PKCS#8 PEM, mode 0600) and print its public key.
    Keygen(super::keys::KeygenArgs),
    /// Print the public key of a key file or of a node's store.
    Id(super::keys::IdArgs),
    /// Owner: grant or revoke a key's write access to an owned CDVCS (a signed commit).
    Grant(super::grant::GrantArgs),
    /// Give a stopped store's free pages back to the filesystem; prints the size before and
    /// after.
    Compact(super::compact::CompactArgs),
    /// Show a running node's supervision tree, connections, CDVCSs and realizers (from its
    /// /status.json).
    Status(super::status::StatusArgs),
}

/// Which CDVCS: `--user` and `--cdvcs`.
#[derive(Debug, Clone, Args)]
pub struct CrdtArgs {
    /// The owning user of the CDVCS.
    #[arg(long, default_value = DEFAULT_USER)]
    pub user: String,
    /// The CDVCS id.
    #[arg(long, default_value = DEFAULT_CDVCS)]
    pub cdvcs: Uuid,
}

/// `replikativ demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the demo writes its stores, SQLite file and chart.
    #[arg(long, default_value = "replikativ-demo")]
    pub dir: PathBuf,
}

/// `replikativ collect`.
#[derive(Debug, Args)]
pub struct CollectArgs {
    /// The store directory (created if missing).
    #[arg(long)]
    pub store: PathBuf,
    /// A JSON-lines file, `-` for standard input, or an http:// URL streaming JSON lines.
    #[arg(long)]
    pub source: String,
    /// Also serve peers on HOST:PORT while collecting.
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,
    /// Peers to connect to and stay in sync with while collecting (repeatable), e.g. another
    /// collector writing the same CDVCS: concurrent commits are joined by a deterministic merge.
    #[arg(long, value_name = "URL")]
    pub connect: Vec<String>,
    /// Keep tailing the file after its end (and keep serving) until SIGTERM/SIGINT. An
    /// appended line is read at once (change notification; on network filesystems, which do
    /// not notify of other machines' writes, set REPLIKATIV_FOLLOW_POLL=1 to poll every 200 ms).
    #[arg(long)]
    pub follow: bool,
    /// Flush the buffer into a commit at least this often (milliseconds).
    #[arg(long, default_value_t = 10_000)]
    pub flush_ms: u64,
    /// Flush when this many tweets are buffered.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// A file holding the bearer token for an HTTP source.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Collect into a CDVCS owned by this node's key (`--user` is its public key): only the
    /// owner and keys it grants write access to may write it.
    #[arg(long, conflicts_with = "user")]
    pub owned: bool,
    /// Which CDVCS.
    #[command(flatten)]
    pub crdt: CrdtArgs,
    /// Node flags.
    #[command(flatten)]
    pub node: super::node_args::NodeArgs,
}

/// `replikativ analyze`.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// The local store directory of this analysis peer.
    #[arg(long)]
    pub store: PathBuf,
    /// The peer to subscribe to, e.g. ws://127.0.0.1:8080/.
    #[arg(long, value_name = "URL")]
    pub connect: String,
    /// The SQLite file to realize into.
    #[arg(long, required_unless_present = "postgres")]
    pub sqlite: Option<PathBuf>,
    /// Or realize into this PostgreSQL database: postgres://[USER@][HOST][:PORT]/DB[?sslmode=…].
    /// What the URL leaves out comes from PGHOST, PGPORT, PGUSER, PGDATABASE, PGSSLMODE…;
    /// the password from the URL, PGPASSWORD or ~/.pgpass. The database may be empty (made by
    /// `createdb`): the sink creates its schema `replikativ`.
    #[arg(long, value_name = "URL", conflicts_with = "sqlite")]
    pub postgres: Option<String>,
    /// Keep following across disconnects and collector restarts.
    #[arg(long)]
    pub follow: bool,
    /// Give up connecting (or waiting for the peer to have the CDVCS) after this many seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Also serve peers (what this node holds) and /status, /metrics on HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,
    /// Which CDVCS.
    #[command(flatten)]
    pub crdt: CrdtArgs,
    /// Node flags.
    #[command(flatten)]
    pub node: super::node_args::NodeArgs,
}

/// `replikativ query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The realized SQLite file.
    #[arg(long, global = true)]
    pub sqlite: Option<PathBuf>,
    /// Or the realized PostgreSQL database (a URL; credentials as for `analyze --postgres`).
    #[arg(long, global = true, value_name = "URL", conflicts_with = "sqlite")]
    pub postgres: Option<String>,
    /// Print one JSON object on the last line of stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// The query.
    #[command(subcommand)]
    pub query: Query,
}

/// The queries.
#[derive(Debug, Subcommand)]
pub enum Query {
    /// Number of distinct tweets.
    Count,
    /// Full-text search over the tweets' text.
    Search {
        /// The term to search for.
        term: String,
        /// How many matches to print.
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
    /// The N accounts with the most distinct tweets.
    Top {
        /// How many accounts.
        n: usize,
        /// Also draw a bar chart into this SVG file.
        #[arg(long, value_name = "FILE.svg")]
        chart: Option<PathBuf>,
    },
    /// Tweets, ops applied and commits applied.
    Stats,
}

/// A CDVCS in a store, for `log` and `merge` (a merge needs a stopped node's store).
#[derive(Debug, Args)]
pub struct StoreCdvcsArgs {
    /// The store directory.
    #[arg(long)]
    pub store: PathBuf,
    /// Print one JSON object on the last line of stdout.
    #[arg(long)]
    pub json: bool,
    /// Which CDVCS.
    #[command(flatten)]
    pub crdt: CrdtArgs,
}

/// `replikativ log`.
pub type LogArgs = StoreCdvcsArgs;
/// `replikativ merge`.
pub type MergeArgs = StoreCdvcsArgs;

/// `replikativ peer`.
#[derive(Debug, Args)]
pub struct PeerArgs {
    /// The store directory.
    #[arg(long)]
    pub store: PathBuf,
    /// Serve peers on HOST:PORT (optional with --connect).
    #[arg(long, value_name = "HOST:PORT", required_unless_present = "connect")]
    pub listen: Option<String>,
    /// Peers to connect to and stay in sync with (repeatable).
    #[arg(long, value_name = "URL")]
    pub connect: Vec<String>,
    /// Mirror the --connect peers: subscribe to every CDVCS each holds and lets this node's
    /// key read, and to those it gets later, however many; catches up over one connection.
    /// Reconnecting with nothing new costs one digest each way, not one message per CDVCS.
    #[arg(long)]
    pub mirror: bool,
    /// Without --mirror: how many CDVCSs new to this node one connection may create (an
    /// accepted peer's subscriptions, or what a --connect peer offers, counted over its
    /// redials). A connection that would create more is closed with an error saying so, on
    /// both sides; the CDVCSs taken stay in sync.
    #[arg(long, value_name = "N", default_value_t = crate::sync::SyncLimits::default().max_subscriptions)]
    pub max_subscriptions: usize,
    /// Serve the browser peer's page at /app/ of the listener: a live, verified replica of
    /// the tweets CDVCS in the browser (kept in IndexedDB), searchable offline
    /// (`/app/?crdt=user/uuid` for another CDVCS). Its key must be allowed to read on a
    /// node with rules.
    #[arg(long, requires = "listen")]
    pub web: bool,
    /// Node flags.
    #[command(flatten)]
    pub node: super::node_args::NodeArgs,
}

/// `replikativ verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The store directory.
    #[arg(long)]
    pub store: PathBuf,
}

/// `replikativ upgrade`.
#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// The store directory (of a stopped node).
    #[arg(long)]
    pub store: PathBuf,
}

/// `replikativ realize-skip`.
#[derive(Debug, Args)]
pub struct RealizeSkipArgs {
    /// The SQLite sink.
    #[arg(long, required_unless_present = "postgres")]
    pub sqlite: Option<PathBuf>,
    /// Or the PostgreSQL sink (a URL; credentials as for `analyze --postgres`).
    #[arg(long, value_name = "URL", conflicts_with = "sqlite")]
    pub postgres: Option<String>,
    /// The parked commit to skip (64 hex characters).
    #[arg(long)]
    pub commit: crate::Id,
    /// Why it is skipped (recorded).
    #[arg(long, default_value = "skipped by operator")]
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("replikativ").chain(args.iter().copied()))
    }

    /// The shipped systemd unit's command line is one this build accepts.
    #[test]
    fn the_systemd_units_exec_start_parses() {
        let unit = include_str!("../../docs/replikativ-peer.service");
        let exec = unit
            .split("ExecStart=")
            .nth(1)
            .expect("an ExecStart")
            .lines()
            .take_while(|l| !l.trim().is_empty() && !l.starts_with("ExecReload"))
            .map(|l| l.trim().trim_end_matches('\\'))
            .collect::<Vec<_>>()
            .join(" ");
        let words: Vec<&str> = exec.split_whitespace().skip(1).collect();
        let cli = parse(&words).unwrap_or_else(|e| panic!("{exec}: {e}"));
        assert_eq!(cli.log_format, LogFormat::Json);
        assert!(matches!(cli.command, Command::Peer(_)));
    }

    #[test]
    fn query_options_work_before_and_after_the_query_words() {
        for args in [
            &["query", "--sqlite", "f.db", "top", "5", "--json"][..],
            &["query", "top", "5", "--sqlite", "f.db", "--json"][..],
        ] {
            let cli = parse(args).expect("parses");
            let Command::Query(q) = cli.command else {
                panic!("not a query")
            };
            assert!(q.json);
            assert_eq!(q.sqlite.as_deref(), Some(std::path::Path::new("f.db")));
            assert!(matches!(q.query, Query::Top { n: 5, chart: None }));
        }
    }

    #[test]
    fn collect_defaults_follow_the_seed() {
        let cli = parse(&["collect", "--store", "s", "--source", "-"]).expect("parses");
        let Command::Collect(c) = cli.command else {
            panic!("not collect")
        };
        assert_eq!(c.flush_ms, 10_000);
        assert_eq!(c.batch, 1000);
        assert_eq!(c.crdt.user, DEFAULT_USER);
        assert_eq!(tweets_cdvcs().id.to_string(), DEFAULT_CDVCS);
        assert_eq!(c.crdt.cdvcs.to_string(), DEFAULT_CDVCS);
    }

    #[test]
    fn a_bad_commit_id_is_a_usage_error() {
        let err = parse(&["realize-skip", "--sqlite", "x", "--commit", "zz"]).expect_err("bad id");
        assert_eq!(err.exit_code(), 2);
    }
}
