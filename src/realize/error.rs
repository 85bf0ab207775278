//! Why a realizer incarnation ended ([`RealizeError`]), and [`error_chain`] to render any
//! error with its causes.

use super::sink::SinkError;
use crate::id::Id;
use crate::store::StoreError;

/// Why a realizer incarnation ended.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RealizeError {
    /// The sink failed.
    #[error("realizer {name}: applying commit {commit} failed")]
    Sink {
        /// Which realizer.
        name: String,
        /// The commit.
        commit: Id,
        /// The sink's error.
        #[source]
        source: Box<SinkError>,
    },
    /// The sink could not be opened or read.
    #[error("realizer {name}: the sink is unavailable")]
    Open {
        /// Which realizer.
        name: String,
        /// Why.
        #[source]
        source: Box<SinkError>,
    },
    /// The sink's thread died.
    #[error("realizer {name}: the sink's thread is gone")]
    WorkerGone {
        /// Which realizer.
        name: String,
    },
    /// A commit record or value could not be read from the local store.
    #[error("realizer {name}: reading {what} {id} from the store failed")]
    Store {
        /// Which realizer.
        name: String,
        /// Commit or value.
        what: &'static str,
        /// Its id.
        id: Id,
        /// The store's error (boxed to keep results small).
        #[source]
        source: Box<StoreError>,
    },
    /// A durable commit's record or value is absent or undecodable (a damaged store).
    #[error("realizer {name}: {what} {id} is missing or damaged in the local store")]
    Damaged {
        /// Which realizer.
        name: String,
        /// Commit or value.
        what: &'static str,
        /// Its id.
        id: Id,
    },
}

/// `e` with its `source()` chain joined by `": "` (the supervision runtime's renderer).
pub use replikativ_actors::error_chain;
