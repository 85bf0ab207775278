//! Have/want negotiation for one CRDT, run by the side that cannot compute what the peer
//! lacks because the peer announced heads it does not hold (the histories diverged, or the
//! peer is ahead).
//!
//! Round 1 asks about our heads plus the persisted hint (heads the peer held last session,
//! present in our graph) or, without a hint, an exponentially spaced sample of our ancestry.
//! Each `Known` answer grows the set of ids the peer holds; the next round samples only the
//! region between what it lacks and what it holds, so the frontier sharpens geometrically.
//! Negotiation ends when the peer holds all our heads, a round asks nothing new, or
//! `max_rounds` is reached; then we send `commits_between(known, our heads)`. Ending early
//! only makes that delta larger (duplicates are harmless), never wrong.

use std::collections::HashSet;

use crate::id::Id;

use super::config::SyncLimits;
use super::graph::GraphView;

/// State of one negotiation.
pub(crate) struct Negotiation {
    round: usize,
    our_heads: Vec<Id>,
    asked: HashSet<Id>,
    last_sample: Vec<Id>,
    known: Vec<Id>,
    exclude: Vec<Id>,
}

impl Negotiation {
    /// Starts a negotiation; returns it with the first `Have` sample.
    pub(crate) fn start(
        graph: &dyn GraphView,
        hint: &[Id],
        frontier: &[Id],
        limits: &SyncLimits,
    ) -> (Negotiation, Vec<Id>) {
        let our_heads = graph.heads();
        // A hint that is exactly our heads (we were level, the peer moved on: the usual
        // reconnect) still counts: round 1 then asks about our heads alone.
        let hint: Vec<Id> = hint
            .iter()
            .filter(|id| graph.contains(id))
            .copied()
            .collect();
        let mut sample: Vec<Id> = our_heads.clone();
        if hint.is_empty() {
            sample.extend(graph.ancestry_sample(&our_heads, frontier, limits.max_sample));
        } else {
            sample.extend(hint);
        }
        let mut seen = HashSet::new();
        sample.retain(|id| seen.insert(*id));
        sample.truncate(limits.max_sample.max(our_heads.len()));
        let negotiation = Negotiation {
            round: 1,
            our_heads,
            asked: seen,
            last_sample: sample.clone(),
            known: Vec::new(),
            exclude: frontier.to_vec(),
        };
        (negotiation, sample)
    }

    /// Takes the peer's `Known` answer; returns the next sample, or `None` when done.
    pub(crate) fn answer(
        &mut self,
        graph: &dyn GraphView,
        ids: &[Id],
        limits: &SyncLimits,
    ) -> Option<Vec<Id>> {
        // Only ids we asked about and hold count: a peer cannot steer us with others.
        for id in ids {
            if self.asked.contains(id) && graph.contains(id) && !self.known.contains(id) {
                self.known.push(*id);
            }
        }
        if self.our_heads.iter().all(|h| self.known.contains(h)) || self.round >= limits.max_rounds
        {
            return None;
        }
        self.round += 1;
        let unknown: Vec<Id> = self
            .last_sample
            .iter()
            .filter(|id| !self.known.contains(id))
            .copied()
            .collect();
        let mut exclude = self.known.clone();
        exclude.extend(self.exclude.iter().copied());
        let next: Vec<Id> = graph
            .ancestry_sample(&unknown, &exclude, limits.max_sample)
            .into_iter()
            .filter(|id| self.asked.insert(*id))
            .collect();
        if next.is_empty() {
            return None;
        }
        self.last_sample = next.clone();
        Some(next)
    }

    /// Ids the peer confirmed it holds.
    pub(crate) fn known(&self) -> &[Id] {
        &self.known
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chain `ids[0] <- ids[1] <- ...`; the sample is every ancestor (to tell it apart).
    struct Chain(Vec<Id>);

    impl GraphView for Chain {
        fn contains(&self, id: &Id) -> bool {
            self.0.contains(id)
        }
        fn heads(&self) -> Vec<Id> {
            self.0.last().copied().into_iter().collect()
        }
        fn commits_between(&self, _: &[Id], _: &[Id]) -> Vec<Id> {
            Vec::new()
        }
        fn ancestry_sample(&self, _: &[Id], _: &[Id], max: usize) -> Vec<Id> {
            self.0.iter().rev().skip(1).take(max).copied().collect()
        }
    }

    fn chain(n: u8) -> Chain {
        Chain((0..n).map(|i| Id::of(&[i])).collect())
    }

    #[test]
    fn a_hint_equal_to_our_heads_asks_about_our_heads_alone() {
        let g = chain(50);
        let (_, sample) = Negotiation::start(&g, &g.heads(), &[], &SyncLimits::default());
        assert_eq!(sample, g.heads());
    }

    #[test]
    fn without_a_usable_hint_the_first_round_samples_our_ancestry() {
        let g = chain(50);
        let foreign = [Id::of(b"not ours")];
        let (_, sample) = Negotiation::start(&g, &foreign, &[], &SyncLimits::default());
        assert_eq!(sample.len(), 50);
        assert_eq!(sample[0], g.heads()[0]);
    }
}
