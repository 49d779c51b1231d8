//! SRTP on a participant's sockets (SDES keys, RFC 4568): the mixer's
//! packets are protected on their way out, and what arrives is checked
//! and decrypted before anything else looks at it. Both work in buffers
//! made once per participant, so the mixer thread allocates nothing.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::send_queue::Sender;
use crate::mixer::{PacketOut, ParticipantStats};

/// The largest packet protected or unprotected (bigger ones are dropped).
const MAX_PACKET: usize = 1500;

/// A participant's SRTP keys: the suite, the remote's master key and salt
/// (what it sends with) and ours (what we send with), each key then salt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SrtpKeys {
    /// The suite both sides agreed on.
    pub suite: srtp::Suite,
    /// The remote's master key and salt.
    pub remote: [u8; 30],
    /// Ours.
    pub local: [u8; 30],
}

impl SrtpKeys {
    /// Keys from the SDP's decoded key-salt strings; None when their
    /// lengths do not fit the suite.
    pub fn new(suite: srtp::Suite, remote: &[u8], local: &[u8]) -> Option<Self> {
        let len = suite.key_len() + suite.salt_len();
        if remote.len() != len || local.len() != len {
            return None;
        }
        let mut k = Self {
            suite,
            remote: [0; 30],
            local: [0; 30],
        };
        k.remote[..len].copy_from_slice(remote);
        k.local[..len].copy_from_slice(local);
        Some(k)
    }

    fn session(&self, key_salt: &[u8; 30]) -> Result<srtp::Session, srtp::Error> {
        let (k, s) = (self.suite.key_len(), self.suite.salt_len());
        srtp::Session::new(self.suite, &key_salt[..k], &key_salt[k..k + s])
    }

    /// The session that checks what the remote sends.
    pub(crate) fn inbound(&self) -> Result<srtp::Session, srtp::Error> {
        self.session(&self.remote)
    }

    /// A session that protects what we send.
    pub fn outbound(&self) -> Result<srtp::Session, srtp::Error> {
        self.session(&self.local)
    }
}

/// The mixer's side of an SRTP participant's socket: each packet is
/// copied into a buffer made once, protected in place and sent.
pub struct SrtpOut {
    wire: Sender,
    session: srtp::Session,
    buf: Box<[u8; MAX_PACKET]>,
    stats: Arc<ParticipantStats>,
}

impl SrtpOut {
    /// Sends on `sock` (non-blocking), protected by `session`; failures
    /// count in `stats`.
    pub fn new(sock: UdpSocket, session: srtp::Session, stats: Arc<ParticipantStats>) -> Self {
        Self::through(Sender::direct(sock), session, stats)
    }

    /// Sends through `wire`: at once, or queued for the receive thread.
    pub(crate) fn through(
        wire: Sender,
        session: srtp::Session,
        stats: Arc<ParticipantStats>,
    ) -> Self {
        Self {
            wire,
            session,
            buf: Box::new([0; MAX_PACKET]),
            stats,
        }
    }
}

impl PacketOut for SrtpOut {
    fn send(&mut self, to: SocketAddr, packet: &[u8]) -> bool {
        let n = packet.len();
        if n + self.session.suite().rtp_overhead() > MAX_PACKET {
            return false;
        }
        self.buf[..n].copy_from_slice(packet);
        match self.session.protect_rtp(&mut self.buf[..], n) {
            Ok(len) => self.wire.send(to, &self.buf[..len]),
            Err(_) => {
                self.stats.srtp_failed.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }
}

/// The receiver's side: what arrives is unprotected in `buf`, and the
/// RTCP it sends is protected there.
pub(crate) struct SrtpIn {
    pub(crate) inbound: srtp::Session,
    pub(crate) rtcp_out: srtp::Session,
    pub(crate) buf: Box<[u8; MAX_PACKET]>,
}

impl SrtpIn {
    pub(crate) fn new(keys: &SrtpKeys) -> Result<Self, srtp::Error> {
        Ok(Self {
            inbound: keys.inbound()?,
            rtcp_out: keys.outbound()?,
            buf: Box::new([0; MAX_PACKET]),
        })
    }

    /// Checks and decrypts `data` (RTP or RTCP) into the buffer; the
    /// plain packet's length, or None to drop it.
    pub(crate) fn unprotect(&mut self, data: &[u8], rtcp: bool) -> Option<usize> {
        let n = data.len();
        if n > MAX_PACKET {
            return None;
        }
        self.buf[..n].copy_from_slice(data);
        let r = if rtcp {
            self.inbound.unprotect_rtcp(&mut self.buf[..n])
        } else {
            self.inbound.unprotect_rtp(&mut self.buf[..n])
        };
        r.ok()
    }

    /// Protects an RTCP packet we send; the wire bytes' length in `buf`.
    pub(crate) fn protect_rtcp(&mut self, pkt: &[u8]) -> Option<usize> {
        let n = pkt.len();
        if n + self.rtcp_out.suite().rtcp_overhead() > MAX_PACKET {
            return None;
        }
        self.buf[..n].copy_from_slice(pkt);
        self.rtcp_out.protect_rtcp(&mut self.buf[..], n).ok()
    }
}
