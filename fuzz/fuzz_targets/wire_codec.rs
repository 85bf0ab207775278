//! Arbitrary bytes from the network into the wire decoders: they must never panic (nor
//! allocate without bound), and whatever decodes must re-encode to a record that decodes equal.
//!
//! FOR NOW this target fuzzes the CDVCS commit codec (`rmp_serde::from_slice::<Commit>` and
//! `Commit::decode`), the only wire decoder on this branch. When the protocol module lands,
//! point it at the protocol decoder (`replikativ::protocol::decode`) as well: that is the
//! decoder every byte received from a peer goes through first.

#![no_main]

use libfuzzer_sys::fuzz_target;
use replikativ::crdt::Commit;

fuzz_target!(|data: &[u8]| {
    let plain = rmp_serde::from_slice::<Commit>(data);
    let decoded = Commit::decode(data);
    assert_eq!(plain.is_ok(), decoded.is_ok(), "both decoders agree");
    if let Ok(received) = decoded {
        assert_eq!(
            received.id,
            replikativ::Id::of(data),
            "the id covers exactly the bytes"
        );
        let again = received.commit.clone().encode();
        let back = Commit::decode(&again.bytes).expect("our own encoding decodes");
        assert_eq!(back.commit, received.commit, "re-encoding keeps the record");
    }
});
