//! [`SourceSpec`]: where a collector's tweets come from.

use std::path::PathBuf;

use crate::peer::tls::ClientTls;

/// Where tweets come from.
#[derive(Clone, Debug)]
pub enum SourceSpec {
    /// A JSON-lines file; `follow` keeps tailing it after its end.
    File {
        /// The file.
        path: PathBuf,
        /// Keep tailing.
        follow: bool,
    },
    /// Standard input.
    Stdin,
    /// An HTTP(S) URL streaming JSON lines, with an optional bearer token.
    Http {
        /// The URL.
        url: String,
        /// The bearer token.
        token: Option<String>,
        /// What an `https://` server is verified against.
        tls: ClientTls,
    },
}

impl SourceSpec {
    /// Parses the `--source` argument: `-`, an http(s) URL, or a file path. An `https://`
    /// server is verified against the system's CAs (see [`SourceSpec::with_tls`]).
    pub fn parse(arg: &str, follow: bool, token: Option<String>) -> SourceSpec {
        if arg == "-" {
            SourceSpec::Stdin
        } else if arg.starts_with("http://") || arg.starts_with("https://") {
            SourceSpec::Http {
                url: arg.to_string(),
                token,
                tls: ClientTls::default(),
            }
        } else {
            SourceSpec::File {
                path: PathBuf::from(arg),
                follow,
            }
        }
    }

    /// An HTTP source verifying `https://` against `tls` (other sources are unchanged).
    pub fn with_tls(mut self, roots: ClientTls) -> SourceSpec {
        if let SourceSpec::Http { tls, .. } = &mut self {
            *tls = roots;
        }
        self
    }

    /// The state-space key of this source's checkpoint (files only).
    pub fn checkpoint_key(&self) -> Option<Vec<u8>> {
        match self {
            SourceSpec::File { path, .. } => {
                let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
                Some(crate::store::keys::source_checkpoint(
                    &canon.to_string_lossy(),
                ))
            }
            _ => None,
        }
    }
}
