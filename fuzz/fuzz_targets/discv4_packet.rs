//! discv4 packets as a peer could send them (UDP, before any bond): see
//! `discv4_check.rs`.
#![no_main]
#[path = "../discv4_check.rs"]
mod discv4_check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = discv4_check::check_input(data);
});
