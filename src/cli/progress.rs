//! Progress of long work on stderr: a bar when stderr is a terminal (and logs are text), a
//! line every few seconds otherwise (`say!`, so JSON with `--log-format json`).

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a line is printed when there is no bar.
const EVERY: Duration = Duration::from_secs(2);

/// Realization progress: commits applied of those known, and tweets applied.
pub enum Progress {
    /// On a terminal.
    Bar(ProgressBar),
    /// Elsewhere: the time of the last line.
    Lines(Instant),
}

impl Default for Progress {
    /// A bar on a terminal with text logs, lines otherwise.
    fn default() -> Progress {
        if std::io::stderr().is_terminal() && !super::json_logs() {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} realized {pos}/{len} commits, {msg} tweets [{bar:30}] {elapsed}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            Progress::Bar(bar)
        } else {
            Progress::Lines(Instant::now())
        }
    }
}

impl Progress {
    /// `done` of `known` commits realized, `tweets` transactions applied.
    pub fn update(&mut self, done: u64, known: u64, tweets: u64) {
        match self {
            Progress::Bar(bar) => {
                bar.set_length(known.max(done));
                bar.set_position(done);
                bar.set_message(tweets.to_string());
            }
            Progress::Lines(last) if last.elapsed() > EVERY => {
                *last = Instant::now();
                say!("realized {done} of {known} commits replicated, {tweets} tweets");
            }
            Progress::Lines(_) => {}
        }
    }

    /// Clears the bar.
    pub fn finish(self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}
