//! The RLPx frame codec: AES-256-CTR encryption with the keccak egress/ingress MACs.
//!
//! ```text
//! frame = header-ciphertext || header-mac || frame-ciphertext || frame-mac
//! header = frame-size (3 bytes, big endian) || header-data (rlp [0, 0]) || zero padding to 16
//! ```
//! Spec: <https://github.com/ethereum/devp2p/blob/master/rlpx.md#framing>

use crate::{
    mac::{MacState, MAC_LEN},
    EciesError, Secrets,
};
use aes::cipher::{KeyIvInit, StreamCipher};
use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;

/// Length of the encrypted frame header, in bytes.
const HEADER_LEN: usize = 16;

/// Largest frame body the 24-bit frame-size field can express, in bytes (16 MiB - 1).
///
/// Spec: <https://github.com/ethereum/devp2p/blob/master/rlpx.md#framing>
pub const MAX_FRAME_SIZE: usize = 0xFF_FFFF;

/// Largest first frame a peer may send, in bytes: the first frame is the p2p Hello (or a
/// Disconnect), and Hello is limited to 2 KiB, so a peer that has not said Hello yet
/// cannot make us buffer more than this.
pub const MAX_FIRST_FRAME_SIZE: usize = 2048;

/// Most bytes reserved ahead of what has arrived while a frame body is read: a frame
/// header announcing 16 MiB reserves memory only as its bytes come in.
pub const READ_RESERVE: usize = 64 * 1024;

/// `header-data` as we send it: the RLP list `[capability-id = 0, context-id = 0]`.
/// Receivers ignore it, as rlpx.md allows.
const HEADER_DATA: [u8; 3] = [0xc2, 0x80, 0x80];

fn padded(len: usize) -> usize {
    len.div_ceil(16) * 16
}

#[derive(Debug, Clone, Copy)]
enum ReadState {
    Header,
    Body { size: usize },
}

/// Encodes and decodes RLPx frames for one established session.
///
/// Each decoded item is one frame's plaintext (message id and payload); each encoded item
/// becomes one frame. MACs are verified before anything is decrypted. A clone continues
/// the same session independently (both copies hold the same cipher and MAC states).
#[derive(Clone)]
pub struct FrameCodec {
    egress_aes: Aes256Ctr,
    ingress_aes: Aes256Ctr,
    egress_mac: MacState,
    ingress_mac: MacState,
    state: ReadState,
    /// Largest frame body accepted next: [`MAX_FIRST_FRAME_SIZE`] until the first frame
    /// has been read, then [`MAX_FRAME_SIZE`].
    max_ingress: usize,
}

impl std::fmt::Debug for FrameCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameCodec").field("state", &self.state).finish_non_exhaustive()
    }
}

impl FrameCodec {
    /// A codec from the secrets of a completed handshake.
    pub fn new(secrets: Secrets) -> Self {
        let iv = [0u8; 16];
        Self {
            egress_aes: Aes256Ctr::new(secrets.aes.as_slice().into(), &iv.into()),
            ingress_aes: Aes256Ctr::new(secrets.aes.as_slice().into(), &iv.into()),
            egress_mac: secrets.egress_mac,
            ingress_mac: secrets.ingress_mac,
            state: ReadState::Header,
            max_ingress: MAX_FIRST_FRAME_SIZE,
        }
    }

    /// Accepts frames up to [`MAX_FRAME_SIZE`] from now on, as after a first frame: for
    /// benchmarks and tools that drive a codec without a Hello.
    pub fn without_first_frame_limit(mut self) -> Self {
        self.max_ingress = MAX_FRAME_SIZE;
        self
    }
}

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = EciesError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, EciesError> {
        if let ReadState::Header = self.state {
            if src.len() < HEADER_LEN + MAC_LEN {
                src.reserve(HEADER_LEN + MAC_LEN - src.len());
                return Ok(None);
            }
            let mut header: [u8; HEADER_LEN] = src[..HEADER_LEN].try_into().expect("16 bytes");
            let expected = self.ingress_mac.update_header(&header);
            if expected[..] != src[HEADER_LEN..HEADER_LEN + MAC_LEN] {
                return Err(EciesError::HeaderMacMismatch);
            }
            self.ingress_aes.apply_keystream(&mut header);
            let size = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
            if size > self.max_ingress {
                return Err(EciesError::FrameTooLarge { size, limit: self.max_ingress });
            }
            src.advance(HEADER_LEN + MAC_LEN);
            self.state = ReadState::Body { size };
        }
        let ReadState::Body { size } = self.state else { unreachable!("set above") };
        let need = padded(size) + MAC_LEN;
        if src.len() < need {
            src.reserve((need - src.len()).min(READ_RESERVE));
            return Ok(None);
        }
        let mut frame = src.split_to(need);
        let expected = self.ingress_mac.update_body(&frame[..padded(size)]);
        if expected[..] != frame[padded(size)..] {
            return Err(EciesError::BodyMacMismatch);
        }
        frame.truncate(padded(size));
        self.ingress_aes.apply_keystream(&mut frame);
        frame.truncate(size);
        self.state = ReadState::Header;
        self.max_ingress = MAX_FRAME_SIZE;
        Ok(Some(frame))
    }
}

impl Encoder<Bytes> for FrameCodec {
    type Error = EciesError;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), EciesError> {
        self.encode_frame(&item, dst)
    }
}

impl FrameCodec {
    /// Appends one sealed frame carrying `data` to `dst`.
    pub fn encode_frame(&mut self, data: &[u8], dst: &mut BytesMut) -> Result<(), EciesError> {
        let size = data.len();
        if size > MAX_FRAME_SIZE {
            return Err(EciesError::FrameTooLarge { size, limit: MAX_FRAME_SIZE });
        }
        dst.reserve(HEADER_LEN + MAC_LEN + padded(size) + MAC_LEN);
        self.encode_header(size, dst);
        let body_start = dst.len();
        dst.extend_from_slice(data);
        dst.resize(body_start + padded(size), 0);
        self.egress_aes.apply_keystream(&mut dst[body_start..]);
        let mac = self.egress_mac.update_body(&dst[body_start..]);
        dst.extend_from_slice(&mac);
        Ok(())
    }

    /// Appends only the sealed header of a frame announcing `size` body bytes, as a peer
    /// that never sends the body would: for tests and tools that probe a receiver's
    /// limits. The session cannot carry another frame afterwards.
    pub fn encode_frame_header(
        &mut self,
        size: usize,
        dst: &mut BytesMut,
    ) -> Result<(), EciesError> {
        if size > MAX_FRAME_SIZE {
            return Err(EciesError::FrameTooLarge { size, limit: MAX_FRAME_SIZE });
        }
        self.encode_header(size, dst);
        Ok(())
    }

    fn encode_header(&mut self, size: usize, dst: &mut BytesMut) {
        let mut header = [0u8; HEADER_LEN];
        header[..3].copy_from_slice(&(size as u32).to_be_bytes()[1..]);
        header[3..6].copy_from_slice(&HEADER_DATA);
        self.egress_aes.apply_keystream(&mut header);
        dst.extend_from_slice(&header);
        dst.extend_from_slice(&self.egress_mac.update_header(&header));
    }
}
