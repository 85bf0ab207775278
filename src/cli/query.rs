//! `replikativ query`: answers from a realized SQLite file or PostgreSQL database (the same
//! answers from either). Results go to stdout; with `--json` the last line is exactly the
//! object of DESIGN §8.

use anyhow::{Context as _, Result};

use super::args::{Query, QueryArgs};
use super::sink_target::SinkTarget;
use crate::tweets::{CountJson, SearchJson, TopEntry, TopJson, top_chart_svg};

/// Runs a query.
pub fn run(args: QueryArgs) -> Result<()> {
    let target = SinkTarget::from_flags("query", args.sqlite.as_deref(), args.postgres.as_deref())?;
    let mut db = target.open_queries()?;
    match args.query {
        Query::Count => {
            let count = db.count()?;
            if args.json {
                println!("{}", serde_json::to_string(&CountJson { count })?);
            } else {
                println!("{count} tweets");
            }
        }
        Query::Search { term, limit } => {
            let (count, tweets) = db.search(&term, limit)?;
            if args.json {
                println!("{}", serde_json::to_string(&SearchJson { count, tweets })?);
            } else {
                println!("{count} tweets match {term:?}");
                for t in &tweets {
                    let who = t.username.as_deref().unwrap_or("?");
                    println!("  @{who} [{}]: {}", t.id, one_line(&t.text));
                }
            }
        }
        Query::Top { n, chart } => {
            let rows = db.top(n)?;
            if let Some(chart) = &chart {
                top_chart_svg(&rows, chart)
                    .with_context(|| format!("drawing the chart into {}", chart.display()))?;
                say!("chart written to {}", chart.display());
            }
            if args.json {
                let top = rows
                    .into_iter()
                    .map(|(username, tweets)| TopEntry { username, tweets })
                    .collect();
                println!("{}", serde_json::to_string(&TopJson { top })?);
            } else {
                print_top(&rows);
            }
        }
        Query::Stats => {
            let stats = db.stats()?;
            if args.json {
                println!("{}", serde_json::to_string(&stats)?);
            } else {
                println!(
                    "{} tweets, {} ops applied, {} commits applied",
                    stats.tweets, stats.ops_applied, stats.commits_applied
                );
            }
        }
    }
    Ok(())
}

/// Prints the top accounts as a table.
pub fn print_top(rows: &[(String, u64)]) {
    let width = rows.iter().map(|(u, _)| u.len()).max().unwrap_or(8).max(8);
    println!("{:<width$}  tweets", "account");
    for (user, n) in rows {
        println!("{:<width$}  {n:>6}", format!("@{user}"));
    }
}

/// A tweet's text on one line, shortened for a terminal.
pub fn one_line(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() > 120 {
        let mut s: String = flat.chars().take(117).collect();
        s.push_str("...");
        s
    } else {
        flat
    }
}
