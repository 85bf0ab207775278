//! Arbitrary bytes from the network into the wire decoders: they must never panic (nor
//! allocate without bound), and whatever decodes must re-encode to something that decodes equal.
//!
//! Two decoders: the protocol codec (`replikativ::protocol::decode`), which every frame received
//! from a peer goes through first, and the CDVCS commit codec (`Commit::decode`), which every
//! received commit record goes through after it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use replikativ::crdt::Commit;
use replikativ::protocol;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = protocol::decode(data) {
        let again = protocol::encode(&msg).expect("a decoded message encodes");
        let back = protocol::decode(&again).expect("our own encoding decodes");
        assert_eq!(back.kind(), msg.kind(), "re-encoding keeps the message kind");
    }
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
