//! The `replikativ` command: glue over the library (DESIGN §8).
//!
//! Exit status: 0 success, 2 usage error, 1 failure with the error chain printed.

use std::process::ExitCode;

use clap::Parser;
use replikativ::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let code = e.exit_code();
            let _ = e.print();
            return ExitCode::from(code.clamp(0, 255) as u8);
        }
    };
    cli::init_logging(cli.log_format);
    match cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            cli::report_error(&e);
            ExitCode::from(if cli::is_usage_error(&e) { 2 } else { 1 })
        }
    }
}
