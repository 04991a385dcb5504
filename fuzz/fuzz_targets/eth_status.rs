//! Decoding a Status and validating it against the dev chain (EIP-2124 fork-id rules).
#![no_main]
use std::sync::OnceLock;
use tern_chainspec::{ChainSpec, ForkFilter, Head};
use tern_eth_wire::{genesis_status, EthMessage, EthVersion, LocalStatus};

fn local() -> &'static (LocalStatus, ForkFilter) {
    static LOCAL: OnceLock<(LocalStatus, ForkFilter)> = OnceLock::new();
    LOCAL.get_or_init(|| {
        let spec = ChainSpec::dev();
        let filter = spec.fork_filter(Head { timestamp: spec.genesis_header.timestamp, ..Default::default() });
        (genesis_status(&spec), filter)
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let [v, payload @ ..] = data else { return };
    let version = if v % 2 == 0 { EthVersion::Eth68 } else { EthVersion::Eth69 };
    if let Ok(EthMessage::Status(status)) = EthMessage::decode(version, 0, payload) {
        let (local, filter) = local();
        let _ = local.validate(version, &status, filter);
    }
});
