//! The `realizers` subtree of a node: one realizer per spec, each watching its replica.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use replikativ_actors::{ChildSpec, Shutdown, Strategy, Supervisor};

use super::{NodeBuilder, restart_backoff};
use crate::realize::realizer::{RealizerActor, RealizerShared};
use crate::replicas::Replicas;
use crate::store::Store;

impl NodeBuilder {
    /// `realizers (one_for_one)`: one realizer per spec, each watching its replica.
    pub(super) fn realizers_subtree(
        &self,
        replicas: &Replicas,
        store: &Store,
    ) -> (Supervisor, HashMap<String, Arc<RealizerShared>>) {
        let mut sup = Supervisor::new("realizers")
            .strategy(Strategy::OneForOne)
            .intensity(20, Duration::from_secs(10))
            .backoff(restart_backoff());
        let mut shared = HashMap::new();
        for spec in &self.realizers {
            let realizer = RealizerShared::new(
                spec.name.clone(),
                replicas.adopt(&spec.key),
                store.clone(),
                spec.open.clone(),
                spec.policy,
            );
            shared.insert(spec.name.clone(), realizer.clone());
            sup = sup.child(
                ChildSpec::new(spec.name.clone(), move || {
                    RealizerActor::new(realizer.clone())
                })
                .shutdown(Shutdown::Timeout(Duration::from_secs(10))),
            );
        }
        (sup, shared)
    }
}
