//! What the `discv4_packet` fuzz target and its `cargo test` twin do with one input.
//! Included with `#[path]` by both.
#![allow(dead_code, unreachable_pub)]

use tern_discv4::{decode, decode_message, message_data, record_fork_id, Message, NodeEnr};

/// First byte even: the rest is a whole packet through `decode` (size, hash, signature,
/// type, data). Odd: the rest is `type ‖ data` through `decode_message`, as after a valid
/// hash and signature, which random bytes would rarely pass. What decodes must
/// round-trip through `message_data`, and an ENRResponse's record goes through the ENR
/// decoder and the fork-id reader as the service does. Returns what decoded: `Some(true)`
/// a packet, `Some(false)` a message.
pub fn check_input(data: &[u8]) -> Option<bool> {
    let [mode, rest @ ..] = data else { return None };
    let (message, packet) = if mode % 2 == 0 {
        (decode(rest).ok()?.message, true)
    } else {
        let [kind, body @ ..] = rest else { return None };
        (decode_message(*kind, body).ok()?, false)
    };
    let again = decode_message(message.kind(), &message_data(&message)).expect("re-decodes");
    assert_eq!(again, message, "round trip");
    if let Message::EnrResponse(r) = &message {
        if let Ok(record) = <NodeEnr as alloy_rlp::Decodable>::decode(&mut &r.enr[..]) {
            let _ = record.verify();
            let _ = record_fork_id(&record);
        }
    }
    Some(packet)
}
