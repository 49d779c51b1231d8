//! One direction of one media stream: its session keys, and per SSRC the
//! rollover counter, the highest sequence number and the replay windows.

use aes::cipher::{InnerIvInit, KeyInit as _, StreamCipher, StreamCipherCoreWrapper};
use aes::Aes128;
use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, Nonce, Tag};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use crate::kdf::{self, derive};
use crate::replay::Replay;
use crate::{Error, Suite};

/// SSRCs one session keeps state for; beyond, the least recently seen
/// is forgotten.
const MAX_SSRCS: usize = 8;
/// SRTCP tags are 80 bits with both AES-CM suites (RFC 4568 §6.2).
const SRTCP_CM_TAG: usize = 10;
const GCM_TAG: usize = 16;

/// The keys of RTP or of RTCP.
#[derive(Clone)]
enum Keys {
    Cm {
        cipher: Aes128,
        salt: [u8; 14],
        auth: Hmac<Sha1>,
    },
    Gcm {
        cipher: Aes128Gcm,
        salt: [u8; 12],
    },
}

impl Keys {
    fn derive(suite: Suite, key: &[u8; 16], salt: &[u8], labels: [u8; 3]) -> Self {
        let [enc_label, auth_label, salt_label] = labels;
        let mut enc = [0u8; 16];
        derive(key, salt, enc_label, &mut enc);
        match suite {
            Suite::AeadAes128Gcm => {
                let mut s = [0u8; 12];
                derive(key, salt, salt_label, &mut s);
                Keys::Gcm {
                    cipher: Aes128Gcm::new(&enc.into()),
                    salt: s,
                }
            }
            _ => {
                let mut s = [0u8; 14];
                derive(key, salt, salt_label, &mut s);
                let mut a = [0u8; 20];
                derive(key, salt, auth_label, &mut a);
                Keys::Cm {
                    cipher: Aes128::new(&enc.into()),
                    salt: s,
                    auth: <Hmac<Sha1> as KeyInit>::new_from_slice(&a)
                        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length")),
                }
            }
        }
    }
}

/// What is kept per SSRC.
#[derive(Debug, Clone, Copy)]
struct Stream {
    ssrc: u32,
    roc: u32,
    /// Highest sequence number seen (s_l).
    seq: u16,
    rtp_replay: Replay,
    rtcp_replay: Replay,
    /// For SRTCP we send: the next index.
    rtcp_index: u32,
    last_used: u64,
}

impl Stream {
    fn new(ssrc: u32, seq: u16) -> Self {
        Self {
            ssrc,
            roc: 0,
            seq,
            rtp_replay: Replay::default(),
            rtcp_replay: Replay::default(),
            rtcp_index: 0,
            last_used: 0,
        }
    }

    /// The rollover counter `seq` most likely belongs to (RFC 3711
    /// Appendix A); None for a packet from before the first rollover count.
    fn estimate(&self, seq: u16) -> Option<u32> {
        let (s_l, seq) = (self.seq as i32, seq as i32);
        if s_l < 32768 {
            if seq - s_l > 32768 {
                self.roc.checked_sub(1)
            } else {
                Some(self.roc)
            }
        } else if s_l - 32768 > seq {
            Some(self.roc.wrapping_add(1))
        } else {
            Some(self.roc)
        }
    }

    /// Advances s_l and the ROC past an accepted packet.
    fn update(&mut self, roc: u32, seq: u16) {
        if roc == self.roc.wrapping_add(1) || (roc == self.roc && seq > self.seq) {
            self.roc = roc;
            self.seq = seq;
        }
    }
}

/// SRTP and SRTCP for one direction of one media stream.
#[derive(Clone)]
pub struct Session {
    suite: Suite,
    rtp: Keys,
    rtcp: Keys,
    streams: [Option<Stream>; MAX_SSRCS],
    clock: u64,
}

impl Session {
    /// A session from the master key and salt (as an `a=crypto` line
    /// carries them).
    pub fn new(suite: Suite, master_key: &[u8], master_salt: &[u8]) -> Result<Self, Error> {
        let key: &[u8; 16] = master_key.try_into().map_err(|_| Error::KeyLength)?;
        if master_salt.len() != suite.salt_len() {
            return Err(Error::KeyLength);
        }
        Ok(Self {
            suite,
            rtp: Keys::derive(
                suite,
                key,
                master_salt,
                [kdf::RTP_ENCRYPTION, kdf::RTP_AUTH, kdf::RTP_SALT],
            ),
            rtcp: Keys::derive(
                suite,
                key,
                master_salt,
                [kdf::RTCP_ENCRYPTION, kdf::RTCP_AUTH, kdf::RTCP_SALT],
            ),
            streams: [None; MAX_SSRCS],
            clock: 0,
        })
    }

    /// The suite.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The state of `ssrc`, if it has any (read only: nothing moves
    /// until a packet authenticates).
    fn known(&self, ssrc: u32) -> Option<Stream> {
        self.streams
            .iter()
            .flatten()
            .find(|s| s.ssrc == ssrc)
            .copied()
    }

    /// The state of `ssrc`, made (from `seq`) if new.
    fn stream(&mut self, ssrc: u32, seq: u16) -> &mut Stream {
        self.clock += 1;
        let clock = self.clock;
        let slot = match self
            .streams
            .iter()
            .position(|s| s.is_some_and(|s| s.ssrc == ssrc))
        {
            Some(i) => i,
            None => {
                let i = self
                    .streams
                    .iter()
                    .position(Option::is_none)
                    .unwrap_or_else(|| {
                        // Forget the least recently seen.
                        (0..MAX_SSRCS)
                            .min_by_key(|&i| self.streams[i].map_or(0, |s| s.last_used))
                            .unwrap_or(0)
                    });
                self.streams[i] = Some(Stream::new(ssrc, seq));
                i
            }
        };
        let s = self.streams[slot].get_or_insert_with(|| Stream::new(ssrc, seq));
        s.last_used = clock;
        s
    }

    /// Protects the RTP packet in `buf[..len]` in place: encrypts its
    /// payload and appends the tag. Returns the new length; `buf` must
    /// have [`Suite::rtp_overhead`] bytes to spare.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, Error> {
        let h = rtp_header_len(buf.get(..len).ok_or(Error::Malformed)?)?;
        let tag_len = self.suite.rtp_overhead();
        if buf.len() < len + tag_len {
            return Err(Error::NoRoom);
        }
        let (seq, ssrc) = seq_ssrc(buf);
        let st = self.stream(ssrc, seq);
        let roc = st.estimate(seq).unwrap_or(0);
        st.update(roc, seq);
        match &self.rtp {
            Keys::Cm { cipher, salt, auth } => {
                let iv = cm_iv(salt, ssrc, roc, seq);
                keystream(cipher, &iv, &mut buf[h..len]);
                let tag = cm_tag(auth, &buf[..len], Some(roc));
                buf[len..len + tag_len].copy_from_slice(&tag[..tag_len]);
            }
            Keys::Gcm { cipher, salt } => {
                let iv = gcm_rtp_iv(salt, ssrc, roc, seq);
                let (head, rest) = buf.split_at_mut(h);
                let tag = cipher
                    .encrypt_in_place_detached(&Nonce::from(iv), head, &mut rest[..len - h])
                    .map_err(|_| Error::NoRoom)?;
                buf[len..len + GCM_TAG].copy_from_slice(&tag);
            }
        }
        Ok(len + tag_len)
    }

    /// Checks and decrypts the SRTP packet in `buf` in place. Returns the
    /// length of the RTP packet (without the tag).
    pub fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let tag_len = self.suite.rtp_overhead();
        let len = buf.len().checked_sub(tag_len).ok_or(Error::Malformed)?;
        let h = rtp_header_len(&buf[..len])?;
        let (seq, ssrc) = seq_ssrc(buf);
        let st = self.known(ssrc).unwrap_or_else(|| Stream::new(ssrc, seq));
        let roc = st.estimate(seq).ok_or(Error::Replay)?;
        let index = ((roc as u64) << 16) | seq as u64;
        if !st.rtp_replay.check(index) {
            return Err(Error::Replay);
        }
        match &self.rtp {
            Keys::Cm { cipher, salt, auth } => {
                let tag = cm_tag(auth, &buf[..len], Some(roc));
                if !bool::from(tag[..tag_len].ct_eq(&buf[len..len + tag_len])) {
                    return Err(Error::Auth);
                }
                let iv = cm_iv(salt, ssrc, roc, seq);
                keystream(cipher, &iv, &mut buf[h..len]);
            }
            Keys::Gcm { cipher, salt } => {
                let iv = gcm_rtp_iv(salt, ssrc, roc, seq);
                let mut tag = Tag::default();
                tag.copy_from_slice(&buf[len..len + GCM_TAG]);
                let (head, rest) = buf.split_at_mut(h);
                cipher
                    .decrypt_in_place_detached(&Nonce::from(iv), head, &mut rest[..len - h], &tag)
                    .map_err(|_| Error::Auth)?;
            }
        }
        // Authenticated: now the state may move.
        let st = self.stream(ssrc, seq);
        st.rtp_replay.accept(index);
        st.update(roc, seq);
        Ok(len)
    }

    /// Protects the RTCP compound packet in `buf[..len]` in place
    /// (encrypted, with its SRTCP index and tag appended). Returns the new
    /// length; `buf` must have [`Suite::rtcp_overhead`] bytes to spare.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, Error> {
        let over = self.suite.rtcp_overhead();
        check_rtcp(buf.get(..len).ok_or(Error::Malformed)?)?;
        if buf.len() < len + over {
            return Err(Error::NoRoom);
        }
        let ssrc = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let st = self.stream(ssrc, 0);
        let index = st.rtcp_index;
        st.rtcp_index = (index + 1) & 0x7FFF_FFFF;
        let e_index = (0x8000_0000 | index).to_be_bytes();
        match &self.rtcp {
            Keys::Cm { cipher, salt, auth } => {
                keystream(cipher, &cm_rtcp_iv(salt, ssrc, index), &mut buf[8..len]);
                buf[len..len + 4].copy_from_slice(&e_index);
                let tag = cm_tag(auth, &buf[..len + 4], None);
                buf[len + 4..len + 4 + SRTCP_CM_TAG].copy_from_slice(&tag[..SRTCP_CM_TAG]);
            }
            Keys::Gcm { cipher, salt } => {
                let iv = gcm_rtcp_iv(salt, ssrc, index);
                let mut aad = [0u8; 12];
                aad[..8].copy_from_slice(&buf[..8]);
                aad[8..].copy_from_slice(&e_index);
                let tag = cipher
                    .encrypt_in_place_detached(&Nonce::from(iv), &aad, &mut buf[8..len])
                    .map_err(|_| Error::NoRoom)?;
                buf[len..len + GCM_TAG].copy_from_slice(&tag);
                buf[len + GCM_TAG..len + GCM_TAG + 4].copy_from_slice(&e_index);
            }
        }
        Ok(len + over)
    }

    /// Checks and decrypts the SRTCP packet in `buf` in place. Returns the
    /// length of the RTCP compound packet.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let over = self.suite.rtcp_overhead();
        let len = buf.len().checked_sub(over).ok_or(Error::Malformed)?;
        check_rtcp(&buf[..len])?;
        let ssrc = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let e_at = match self.rtcp {
            Keys::Cm { .. } => len,
            Keys::Gcm { .. } => len + GCM_TAG,
        };
        let e_index = u32::from_be_bytes([buf[e_at], buf[e_at + 1], buf[e_at + 2], buf[e_at + 3]]);
        let (encrypted, index) = (e_index & 0x8000_0000 != 0, e_index & 0x7FFF_FFFF);
        if self
            .known(ssrc)
            .is_some_and(|s| !s.rtcp_replay.check(index as u64))
        {
            return Err(Error::Replay);
        }
        match &self.rtcp {
            Keys::Cm { cipher, salt, auth } => {
                let tag = cm_tag(auth, &buf[..len + 4], None);
                if !bool::from(tag[..SRTCP_CM_TAG].ct_eq(&buf[len + 4..len + 4 + SRTCP_CM_TAG])) {
                    return Err(Error::Auth);
                }
                if encrypted {
                    keystream(cipher, &cm_rtcp_iv(salt, ssrc, index), &mut buf[8..len]);
                }
            }
            Keys::Gcm { cipher, salt } => {
                if !encrypted {
                    // RFC 7714 §9.2's unencrypted SRTCP: nobody sends it to a bridge.
                    return Err(Error::Malformed);
                }
                let iv = gcm_rtcp_iv(salt, ssrc, index);
                let mut aad = [0u8; 12];
                aad[..8].copy_from_slice(&buf[..8]);
                aad[8..].copy_from_slice(&e_index.to_be_bytes());
                let mut tag = Tag::default();
                tag.copy_from_slice(&buf[len..len + GCM_TAG]);
                cipher
                    .decrypt_in_place_detached(&Nonce::from(iv), &aad, &mut buf[8..len], &tag)
                    .map_err(|_| Error::Auth)?;
            }
        }
        let st = self.stream(ssrc, 0);
        st.rtcp_replay.accept(index as u64);
        Ok(len)
    }
}

/// The RTP header's length: fixed part, CSRCs, extension.
fn rtp_header_len(p: &[u8]) -> Result<usize, Error> {
    if p.len() < 12 || p[0] >> 6 != 2 {
        return Err(Error::Malformed);
    }
    let mut h = 12 + 4 * (p[0] & 0x0F) as usize;
    if p[0] & 0x10 != 0 {
        let ext = p.get(h + 2..h + 4).ok_or(Error::Malformed)?;
        h += 4 + 4 * u16::from_be_bytes([ext[0], ext[1]]) as usize;
    }
    if h > p.len() {
        return Err(Error::Malformed);
    }
    Ok(h)
}

fn check_rtcp(p: &[u8]) -> Result<(), Error> {
    if p.len() < 8 || p[0] >> 6 != 2 {
        return Err(Error::Malformed);
    }
    Ok(())
}

fn seq_ssrc(p: &[u8]) -> (u16, u32) {
    (
        u16::from_be_bytes([p[2], p[3]]),
        u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
    )
}

/// AES-CM's IV (RFC 3711 §4.1.1): salt·2^16 ⊕ SSRC·2^64 ⊕ index·2^16.
fn cm_iv(salt: &[u8; 14], ssrc: u32, roc: u32, seq: u16) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(salt);
    for (d, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
        *d ^= s;
    }
    for (d, s) in iv[8..12].iter_mut().zip(roc.to_be_bytes()) {
        *d ^= s;
    }
    for (d, s) in iv[12..14].iter_mut().zip(seq.to_be_bytes()) {
        *d ^= s;
    }
    iv
}

/// AES-CM's IV for SRTCP (RFC 3711 §4.1.1): the SRTCP index in place of
/// the packet index.
fn cm_rtcp_iv(salt: &[u8; 14], ssrc: u32, index: u32) -> [u8; 16] {
    let mut iv = cm_iv(salt, ssrc, 0, 0);
    for (d, s) in iv[10..14].iter_mut().zip(index.to_be_bytes()) {
        *d ^= s;
    }
    iv
}

/// GCM's IV for SRTP (RFC 7714 §8.1): 00 00 ‖ SSRC ‖ ROC ‖ SEQ, ⊕ salt.
fn gcm_rtp_iv(salt: &[u8; 12], ssrc: u32, roc: u32, seq: u16) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
    iv[6..10].copy_from_slice(&roc.to_be_bytes());
    iv[10..12].copy_from_slice(&seq.to_be_bytes());
    for (d, s) in iv.iter_mut().zip(salt) {
        *d ^= s;
    }
    iv
}

/// GCM's IV for SRTCP (RFC 7714 §9.1): 00 00 ‖ SSRC ‖ 00 00 ‖ 0 ‖ index, ⊕ salt.
fn gcm_rtcp_iv(salt: &[u8; 12], ssrc: u32, index: u32) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
    iv[8..12].copy_from_slice(&(index & 0x7FFF_FFFF).to_be_bytes());
    for (d, s) in iv.iter_mut().zip(salt) {
        *d ^= s;
    }
    iv
}

/// XORs AES-CM's keystream for `iv` into `data`.
fn keystream(cipher: &Aes128, iv: &[u8; 16], data: &mut [u8]) {
    let core =
        ctr::CtrCore::<Aes128, ctr::flavors::Ctr128BE>::inner_iv_init(cipher.clone(), iv.into());
    StreamCipherCoreWrapper::from_core(core).apply_keystream(data);
}

/// HMAC-SHA1 over the packet (and, for SRTP, the ROC).
fn cm_tag(auth: &Hmac<Sha1>, data: &[u8], roc: Option<u32>) -> [u8; 20] {
    let mut m = auth.clone();
    m.update(data);
    if let Some(r) = roc {
        m.update(&r.to_be_bytes());
    }
    m.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests;
