//! The RLPx egress/ingress MAC: a running keccak-256 state mixed with AES-256 of the
//! MAC secret.
//!
//! Spec: <https://github.com/ethereum/devp2p/blob/master/rlpx.md#framing>

use aes::cipher::{BlockEncrypt, KeyInit};
use alloy_primitives::{Keccak256, B256};

/// Length of a header MAC and of a frame MAC, in bytes.
pub(crate) const MAC_LEN: usize = 16;

/// One direction's MAC state.
#[derive(Clone)]
pub(crate) struct MacState {
    hasher: Keccak256,
    cipher: aes::Aes256,
    /// The digest of the current state, if computed since the last `update`. A frame's
    /// MAC is also the first digest the next frame's header needs, so caching it saves
    /// one keccak permutation per frame.
    cached: Option<[u8; MAC_LEN]>,
}

impl MacState {
    /// A fresh keccak state keyed (for the AES step) by `mac_secret`.
    pub(crate) fn new(mac_secret: &B256) -> Self {
        Self {
            hasher: Keccak256::new(),
            cipher: aes::Aes256::new(mac_secret.as_slice().into()),
            cached: None,
        }
    }

    /// Absorbs `data` into the keccak state.
    pub(crate) fn update(&mut self, data: &[u8]) {
        self.hasher.update(data);
        self.cached = None;
    }

    /// The first 16 bytes of the current keccak digest (the state is not consumed).
    pub(crate) fn digest(&mut self) -> [u8; MAC_LEN] {
        if let Some(d) = self.cached {
            return d;
        }
        let mut out = [0u8; 32];
        self.hasher.clone().finalize_into_array(&mut out);
        let d = out[..MAC_LEN].try_into().expect("16 of 32");
        self.cached = Some(d);
        d
    }

    /// The full 32-byte current digest (for the `ingress-mac("foo")` test vector).
    #[cfg(test)]
    pub(crate) fn digest32(&self) -> B256 {
        self.hasher.clone().finalize()
    }

    fn aes(&self, block: [u8; MAC_LEN]) -> [u8; MAC_LEN] {
        let mut b = block.into();
        self.cipher.encrypt_block(&mut b);
        b.into()
    }

    /// `update(aes(mac-secret, digest) ^ header-ciphertext)`; returns the header MAC.
    pub(crate) fn update_header(&mut self, header_ciphertext: &[u8; MAC_LEN]) -> [u8; MAC_LEN] {
        let digest = self.digest();
        let mut seed = self.aes(digest);
        seed.iter_mut().zip(header_ciphertext).for_each(|(s, c)| *s ^= c);
        self.update(&seed);
        self.digest()
    }

    /// `update(frame-ciphertext)`, then `update(aes(mac-secret, digest) ^ digest)`;
    /// returns the frame MAC.
    pub(crate) fn update_body(&mut self, frame_ciphertext: &[u8]) -> [u8; MAC_LEN] {
        self.update(frame_ciphertext);
        let prev = self.digest();
        let mut seed = self.aes(prev);
        seed.iter_mut().zip(prev).for_each(|(s, p)| *s ^= p);
        self.update(&seed);
        self.digest()
    }
}
