//! Why a node could not start, or its tree could not be reached.

use replikativ_actors::SupervisionError;

use crate::replicas::RegistryError;
use crate::store::StoreError;

/// Why a node could not start, or its tree could not be reached.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// Opening the store failed.
    #[error("cannot open the store")]
    Store(#[source] Box<StoreError>),
    /// The supervision tree refused.
    #[error("supervision")]
    Supervision(#[source] Box<SupervisionError>),
    /// A replica named at start could not be started.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The node's key could not be read or made.
    #[error("the node's key")]
    Key(#[from] crate::identity::KeyError),
    /// The trust settings cannot be used (a bad allow file, no rules beyond loopback).
    #[error(transparent)]
    Trust(#[from] crate::peer::trust::TrustError),
}

impl From<StoreError> for NodeError {
    fn from(e: StoreError) -> Self {
        NodeError::Store(Box::new(e))
    }
}

impl From<SupervisionError> for NodeError {
    fn from(e: SupervisionError) -> Self {
        NodeError::Supervision(Box::new(e))
    }
}
