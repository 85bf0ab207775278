//! Property tests for every CRDT law (DESIGN §5): join is commutative, associative and
//! idempotent; replicas that see the same ops in any order, with duplicates and partitions,
//! converge; the optimised CDVCS queries agree with naive definitions on random graphs.
//! Case counts are bounded and smaller when `CI` is set.

use std::collections::{BTreeSet, HashMap, HashSet};

use proptest::prelude::*;
use replikativ::Id;
use replikativ::crdt::{
    Cdvcs, CdvcsError, CdvcsOp, CrdtKey, Lwwr, LwwrOp, OrMap, OrMapOp, Tag, Transaction,
};
use uuid::Uuid;

fn cases() -> u32 {
    if std::env::var_os("CI").is_some() {
        24
    } else {
        96
    }
}

fn tx(i: usize) -> Vec<Transaction> {
    vec![Transaction {
        op: "add".into(),
        params: Id::of(&i.to_le_bytes()),
    }]
}

/// One step of a simulated run: `kind` picks the action, `a`, `b` pick replicas or ops.
type Step = (u8, u8, u16);

/// Replicas of one CDVCS that commit, merge, and receive each other's ops through a network
/// that may reorder, duplicate and partition. An op whose parents have not arrived yet waits in
/// the receiver's pending list (the replication layer would fetch them) and is retried.
struct Sim {
    replicas: Vec<Cdvcs>,
    pending: Vec<Vec<CdvcsOp>>,
    sent: Vec<(usize, CdvcsOp)>,
    split: bool,
    clock: usize,
}

impl Sim {
    fn new(n: usize) -> Sim {
        let (root, _) = Cdvcs::new(&CrdtKey::new("u", Uuid::nil()));
        Sim {
            replicas: vec![root; n],
            pending: vec![Vec::new(); n],
            sent: Vec::new(),
            split: false,
            clock: 0,
        }
    }

    fn act(&mut self, r: usize) {
        self.clock += 1;
        let s = &mut self.replicas[r];
        let author = format!("r{r}");
        let out = if s.heads().len() == 1 {
            s.commit(&author, self.clock as i64, tx(self.clock))
        } else {
            // Merge in reverse id order, to exercise a caller-chosen order.
            let heads: Vec<Id> = s.heads().iter().rev().copied().collect();
            s.merge(&heads, &author, self.clock as i64, Vec::new())
        };
        let (_, op) = out.expect("a single head commits, several heads merge");
        self.sent.push((r, op));
    }

    fn deliver(&mut self, to: usize, op: CdvcsOp) {
        match self.replicas[to].downstream(&op) {
            Ok(_) => self.retry(to),
            Err(CdvcsError::MissingParents { .. }) | Err(CdvcsError::UnknownHead { .. }) => {
                self.pending[to].push(op)
            }
            Err(e) => panic!("unexpected refusal {e}"),
        }
    }

    fn retry(&mut self, to: usize) {
        loop {
            let before = self.pending[to].len();
            let waiting = std::mem::take(&mut self.pending[to]);
            for op in waiting {
                if self.replicas[to].downstream(&op).is_err() {
                    self.pending[to].push(op);
                }
            }
            if self.pending[to].len() == before {
                return;
            }
        }
    }

    fn side(&self, r: usize) -> bool {
        r < self.replicas.len() / 2
    }

    fn run(&mut self, steps: &[Step]) {
        let n = self.replicas.len();
        for &(kind, a, b) in steps {
            let r = a as usize % n;
            match kind % 8 {
                0..=2 => self.act(r),
                3..=5 if !self.sent.is_empty() => {
                    let (from, op) = self.sent[b as usize % self.sent.len()].clone();
                    if !(self.split && self.side(from) != self.side(r)) {
                        self.deliver(r, op);
                    }
                }
                6 => self.split = !self.split,
                _ => {}
            }
        }
    }

    /// Heals the partition and delivers every op to every replica, in a rotated order.
    fn heal(&mut self, rotate: usize) {
        let all = self.sent.clone();
        for r in 0..self.replicas.len() {
            let k = (rotate + r) % all.len().max(1);
            for (_, op) in all[k..].iter().chain(&all[..k]) {
                self.deliver(r, op.clone());
            }
        }
    }
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec((any::<u8>(), any::<u8>(), any::<u16>()), 0..60)
}

fn graph_of(s: &Cdvcs) -> HashMap<Id, Vec<Id>> {
    s.entries().collect()
}

fn naive_ancestors(g: &HashMap<Id, Vec<Id>>, from: &[Id]) -> HashSet<Id> {
    let mut seen: HashSet<Id> = from.iter().copied().collect();
    let mut todo: Vec<Id> = from.to_vec();
    while let Some(c) = todo.pop() {
        for p in &g[&c] {
            if seen.insert(*p) {
                todo.push(*p);
            }
        }
    }
    seen
}

fn naive_history(g: &HashMap<Id, Vec<Id>>, c: Id, seen: &mut HashSet<Id>, out: &mut Vec<Id>) {
    seen.insert(c);
    for p in &g[&c] {
        if !seen.contains(p) {
            naive_history(g, *p, seen, out);
        }
    }
    out.push(c);
}

fn join(a: &Cdvcs, b: &Cdvcs) -> Cdvcs {
    let mut out = a.clone();
    out.downstream(&b.to_op()).expect("a full state is closed");
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn cdvcs_join_is_commutative_associative_idempotent(run in steps()) {
        let mut sim = Sim::new(3);
        sim.run(&run);
        let [a, b, c] = [&sim.replicas[0], &sim.replicas[1], &sim.replicas[2]];
        prop_assert_eq!(join(a, b), join(b, a));
        prop_assert_eq!(join(&join(a, b), c), join(a, &join(b, c)));
        prop_assert_eq!(&join(a, a), a);
    }

    #[test]
    fn cdvcs_replicas_converge_under_reordering_duplicates_and_partitions(
        run in steps(), rotate in 0usize..64,
    ) {
        let mut sim = Sim::new(4);
        sim.run(&run);
        sim.heal(rotate);
        for r in 1..4 {
            prop_assert_eq!(&sim.replicas[r], &sim.replicas[0]);
            prop_assert!(sim.pending[r].is_empty());
        }
        let s = &sim.replicas[0];
        let g = graph_of(s);
        // Heads are exactly the commits no other commit descends from.
        let maximal: BTreeSet<Id> = g.keys()
            .filter(|c| !g.values().any(|ps| ps.contains(c)))
            .copied().collect();
        prop_assert_eq!(s.heads(), &maximal);
        // A rebuilt state from its entries in reverse order is the same state.
        let mut entries: Vec<(Id, Vec<Id>)> = s.entries().collect();
        entries.reverse();
        let restored = Cdvcs::restore(entries, s.heads().iter().copied().collect());
        prop_assert_eq!(restored.as_ref(), Ok(s));
    }

    #[test]
    fn cdvcs_queries_agree_with_naive_definitions(
        run in steps(), picks in prop::collection::vec(any::<u16>(), 4),
    ) {
        let mut sim = Sim::new(3);
        sim.run(&run);
        let s = join(&join(&sim.replicas[0], &sim.replicas[1]), &sim.replicas[2]);
        let g = graph_of(&s);
        let mut all: Vec<Id> = g.keys().copied().collect();
        all.sort();
        let pick = |k: usize| all[picks[k] as usize % all.len()];
        let (x, y, z) = (pick(0), pick(1), pick(2));

        for h in s.heads() {
            let mut want = Vec::new();
            naive_history(&g, *h, &mut HashSet::new(), &mut want);
            prop_assert_eq!(s.history(h).expect("head"), want);
        }

        let (ax, ay) = (naive_ancestors(&g, &[x]), naive_ancestors(&g, &[y]));
        prop_assert_eq!(s.is_ancestor(&x, &y), ay.contains(&x));
        let common: HashSet<Id> = ax.intersection(&ay).copied().collect();
        let lowest: BTreeSet<Id> = common.iter()
            .filter(|c| !common.iter().any(|d| d != *c && naive_ancestors(&g, &[*d]).contains(c)))
            .copied().collect();
        prop_assert_eq!(s.lca(&x, &y).expect("known"), lowest);

        let between = s.commits_between(&[z], &[x, y]).expect("known");
        let az = naive_ancestors(&g, &[z]);
        let want: BTreeSet<Id> = ax.union(&ay).filter(|c| !az.contains(c)).copied().collect();
        prop_assert_eq!(between.iter().copied().collect::<BTreeSet<Id>>(), want);
        let pos: HashMap<Id, usize> = between.iter().enumerate().map(|(i, c)| (*c, i)).collect();
        for c in &between {
            for p in &g[c] {
                prop_assert!(pos.get(p).is_none_or(|&ip| ip < pos[c]), "parent after child");
            }
        }
        let mut fresh = s.clone();
        let before: Vec<Id> = s.commits_between(&[], &[z]).expect("known");
        let mut partial = Cdvcs::restore(
            before.iter().map(|c| (*c, g[c].clone())), vec![]).expect("closed");
        let op = s.op_for(&s.commits_between(&[z], &s.heads().iter().copied().collect::<Vec<_>>())
            .expect("heads"));
        partial.downstream(&op).expect("delta applies onto the receiver's ancestry");
        prop_assert_eq!(&partial, &s);
        prop_assert!(fresh.downstream(&op).expect("idempotent").is_empty());
    }

    #[test]
    fn cdvcs_has_several_heads_exactly_after_concurrent_commits(ka in 0usize..4, kb in 0usize..4, merge in any::<bool>()) {
        let (base, _) = Cdvcs::new(&CrdtKey::new("u", Uuid::nil()));
        let (mut a, mut b) = (base.clone(), base.clone());
        for i in 0..ka { a.commit("a", i as i64, tx(i)).expect("commit"); }
        for i in 0..kb { b.commit("b", i as i64, tx(i)).expect("commit"); }
        let mut ab = join(&a, &b);
        prop_assert_eq!(ab.heads().len() > 1, ka > 0 && kb > 0);
        if merge && ab.heads().len() > 1 {
            let heads: Vec<Id> = ab.heads().iter().copied().collect();
            ab.merge(&heads, "m", 9, Vec::new()).expect("merge");
            prop_assert_eq!(ab.heads().len(), 1);
        }
    }
}

// OR-Map and LWW register: ops from several replicas, delivered in arbitrary orders.

fn ormap_ops() -> impl Strategy<Value = Vec<(u8, u8, u8)>> {
    prop::collection::vec((0u8..3, 0u8..4, any::<u8>()), 0..40)
}

/// Three replicas; each step assocs (kind 0, 1) or dissocs (kind 2) a key at one replica.
/// Returns the replicas (which have seen only their own ops) and all ops.
type Map = OrMap<u8, u8>;

fn ormap_run(steps: &[(u8, u8, u8)]) -> (Vec<Map>, Vec<OrMapOp<u8, u8>>) {
    let mut reps = vec![OrMap::new(); 3];
    let mut ops = Vec::new();
    for (i, &(kind, key, v)) in steps.iter().enumerate() {
        let r = v as usize % 3;
        let op = if kind < 2 {
            let tag = Tag(Uuid::from_u128(i as u128 + 1));
            reps[r].assoc(tag, key, v).expect("fresh tag")
        } else {
            reps[r].dissoc(&key)
        };
        // Replica r shares each op with its right neighbour straight away.
        reps[(r + 1) % 3].downstream(&op);
        ops.push(op);
    }
    (reps, ops)
}

fn ormap_join(a: &OrMap<u8, u8>, b: &OrMap<u8, u8>) -> OrMap<u8, u8> {
    let mut out = a.clone();
    out.join(b);
    out
}

fn lww_ops() -> impl Strategy<Value = Vec<LwwrOp<u8>>> {
    prop::collection::vec(
        (0i64..5, 0u128..3, any::<u8>()).prop_map(|(ts, w, value)| LwwrOp {
            ts,
            writer: Uuid::from_u128(w),
            value,
        }),
        0..12,
    )
}

fn lww_of(ops: &[LwwrOp<u8>]) -> Lwwr<u8> {
    let mut r = Lwwr::new();
    for op in ops {
        r.downstream(op);
    }
    r
}

fn lww_join(a: &Lwwr<u8>, b: &Lwwr<u8>) -> Lwwr<u8> {
    let mut out = a.clone();
    out.join(b);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn ormap_join_is_commutative_associative_idempotent(steps in ormap_ops()) {
        let (r, _) = ormap_run(&steps);
        prop_assert_eq!(ormap_join(&r[0], &r[1]), ormap_join(&r[1], &r[0]));
        prop_assert_eq!(
            ormap_join(&ormap_join(&r[0], &r[1]), &r[2]),
            ormap_join(&r[0], &ormap_join(&r[1], &r[2]))
        );
        prop_assert_eq!(&ormap_join(&r[0], &r[0]), &r[0]);
    }

    #[test]
    fn ormap_replicas_converge_in_any_delivery_order(
        steps in ormap_ops(), order in prop::collection::vec(any::<prop::sample::Index>(), 0..80),
    ) {
        let (_, ops) = ormap_run(&steps);
        let mut forward = OrMap::new();
        for op in &ops { forward.downstream(op); }
        // Shuffled, with duplicates, then everything once more to be complete.
        let mut shuffled = OrMap::new();
        if !ops.is_empty() {
            for i in &order { shuffled.downstream(&ops[i.index(ops.len())]); }
        }
        for op in ops.iter().rev() { shuffled.downstream(op); }
        prop_assert_eq!(&shuffled, &forward);
        // A key holds exactly the values whose assoc no dissoc observed.
        let removed: HashSet<Tag> = ops.iter().flat_map(|o| o.removes.iter().copied()).collect();
        for key in 0u8..4 {
            let mut want: Vec<(Tag, u8)> = ops.iter().flat_map(|o| o.adds.iter())
                .filter(|(t, k, _)| *k == key && !removed.contains(t))
                .map(|(t, _, v)| (*t, *v)).collect();
            want.sort();
            let got: Vec<u8> = forward.get(&key).into_iter().copied().collect();
            prop_assert_eq!(got, want.into_iter().map(|(_, v)| v).collect::<Vec<u8>>());
        }
    }

    #[test]
    fn lww_join_is_commutative_associative_idempotent(a in lww_ops(), b in lww_ops(), c in lww_ops()) {
        let (a, b, c) = (lww_of(&a), lww_of(&b), lww_of(&c));
        prop_assert_eq!(lww_join(&a, &b), lww_join(&b, &a));
        prop_assert_eq!(lww_join(&lww_join(&a, &b), &c), lww_join(&a, &lww_join(&b, &c)));
        prop_assert_eq!(&lww_join(&a, &a), &a);
    }

    #[test]
    fn lww_replicas_converge_on_the_largest_stamp(ops in lww_ops()) {
        let forward = lww_of(&ops);
        let mut rev = ops.clone();
        rev.reverse();
        prop_assert_eq!(&lww_of(&rev), &forward);
        let best = ops.iter().max_by(|x, y| (x.ts, x.writer, x.value).cmp(&(y.ts, y.writer, y.value)));
        prop_assert_eq!(forward.current(), best);
    }
}
