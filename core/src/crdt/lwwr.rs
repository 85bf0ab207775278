//! Last-writer-wins register (DESIGN §5): the write with the larger timestamp wins; equal
//! timestamps are decided by the writer's id, then by the value, so every replica picks the
//! same winner and the join is a total-order maximum (commutative, associative, idempotent).

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One write: also the op a replica broadcasts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LwwrOp<V> {
    /// Milliseconds since the Unix epoch (or any clock the writers share).
    pub ts: i64,
    /// The writer's id: the tie-break between equal timestamps.
    pub writer: Uuid,
    /// The written value.
    pub value: V,
}

impl<V: Ord> LwwrOp<V> {
    /// The order that decides the winner: `(ts, writer, value)`.
    fn rank(&self, other: &LwwrOp<V>) -> Ordering {
        (self.ts, self.writer, &self.value).cmp(&(other.ts, other.writer, &other.value))
    }
}

/// A last-writer-wins register; empty until the first write arrives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lwwr<V> {
    current: Option<LwwrOp<V>>,
}

impl<V> Default for Lwwr<V> {
    fn default() -> Self {
        Lwwr { current: None }
    }
}

impl<V: Ord + Clone> Lwwr<V> {
    /// An empty register.
    pub fn new() -> Self {
        Lwwr::default()
    }

    /// Writes `value` at `ts` as `writer` and returns the op to broadcast. A write ranked
    /// below the current one is still returned but does not win, here or anywhere.
    pub fn set(&mut self, ts: i64, writer: Uuid, value: V) -> LwwrOp<V> {
        let op = LwwrOp { ts, writer, value };
        self.downstream(&op);
        op
    }

    /// The winning value, if any write arrived.
    pub fn get(&self) -> Option<&V> {
        self.current.as_ref().map(|op| &op.value)
    }

    /// The winning write with its stamp.
    pub fn current(&self) -> Option<&LwwrOp<V>> {
        self.current.as_ref()
    }

    /// Applies a write from any replica; true when it became the current value.
    pub fn downstream(&mut self, op: &LwwrOp<V>) -> bool {
        let wins = match &self.current {
            None => true,
            Some(cur) => op.rank(cur) == Ordering::Greater,
        };
        if wins {
            self.current = Some(op.clone());
        }
        wins
    }

    /// Joins `other` into this register.
    pub fn join(&mut self, other: &Lwwr<V>) {
        if let Some(op) = &other.current {
            self.downstream(op);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_larger_timestamp_wins_in_any_order() {
        let (w1, w2) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let mut a = Lwwr::new();
        let mut b = Lwwr::new();
        let old = a.set(5, w2, "old");
        let new = b.set(7, w1, "new");
        a.downstream(&new);
        b.downstream(&old);
        assert_eq!(a, b);
        assert_eq!(a.get(), Some(&"new"));
    }

    #[test]
    fn equal_timestamps_are_decided_by_the_writer() {
        let (w1, w2) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let mut a = Lwwr::new();
        let mut b = Lwwr::new();
        let x = a.set(5, w2, "from-2");
        let y = b.set(5, w1, "from-1");
        assert!(!a.downstream(&y));
        assert!(b.downstream(&x));
        assert_eq!(a, b);
        assert_eq!(b.get(), Some(&"from-2"));
    }
}
