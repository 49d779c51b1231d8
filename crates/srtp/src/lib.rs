//! # srtp: SRTP and SRTCP, sans-IO and in place
//!
//! RFC 3711 (AES-CM with HMAC-SHA1, 80- or 32-bit tags) and RFC 7714
//! (AEAD AES-128-GCM), for keys exchanged with SDES (RFC 4568). A
//! [`Session`] is one direction of one media stream: it protects what we
//! send, or unprotects what we receive, RTP and RTCP alike. It derives the
//! session keys (RFC 3711 §4.3), keeps the rollover counter of each SSRC
//! across sequence wrap (§3.3.1), and refuses replayed packets (§3.3.2, a
//! 64-packet window). Everything works in the caller's buffer: no
//! allocation per packet, so the mixer thread can protect every listener's
//! packet each tick.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub)]

mod kdf;
mod replay;
mod session;

pub use session::Session;

use thiserror::Error;

/// An SRTP crypto suite (the names are RFC 4568's and RFC 7714's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suite {
    /// AES-128 in counter mode, HMAC-SHA1 tags of 80 bits.
    AesCm128HmacSha1_80,
    /// The same with 32-bit SRTP tags (SRTCP keeps 80).
    AesCm128HmacSha1_32,
    /// AEAD AES-128-GCM, 128-bit tags.
    AeadAes128Gcm,
}

impl Suite {
    /// Every suite, in our order of preference.
    pub const ALL: [Suite; 3] = [
        Suite::AeadAes128Gcm,
        Suite::AesCm128HmacSha1_80,
        Suite::AesCm128HmacSha1_32,
    ];

    /// The name in an SDP `a=crypto` line.
    pub fn name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Suite::AeadAes128Gcm => "AEAD_AES_128_GCM",
        }
    }

    /// The suite an `a=crypto` line names, if we implement it.
    pub fn from_name(name: &str) -> Option<Self> {
        Suite::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Master key length, bytes.
    pub fn key_len(self) -> usize {
        16
    }

    /// Master salt length, bytes (112 bits for AES-CM, 96 for GCM).
    pub fn salt_len(self) -> usize {
        match self {
            Suite::AeadAes128Gcm => 12,
            _ => 14,
        }
    }

    /// Bytes an SRTP packet grows by (the tag).
    pub fn rtp_overhead(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 => 10,
            Suite::AesCm128HmacSha1_32 => 4,
            Suite::AeadAes128Gcm => 16,
        }
    }

    /// Bytes an SRTCP packet grows by (the index and the tag).
    pub fn rtcp_overhead(self) -> usize {
        match self {
            Suite::AeadAes128Gcm => 4 + 16,
            _ => 4 + 10,
        }
    }
}

/// Why a packet could not be protected or unprotected. Unprotect errors
/// mean the packet is dropped (and counted by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Error {
    /// The master key or salt has the wrong length for the suite.
    #[error("master key or salt of the wrong length")]
    KeyLength,
    /// Too short, not version 2, or a header longer than the packet.
    #[error("not an RTP or RTCP packet")]
    Malformed,
    /// The buffer has no room for the tag.
    #[error("no room for the authentication tag")]
    NoRoom,
    /// The authentication tag does not match: forged, corrupted, or the
    /// wrong key.
    #[error("authentication failed")]
    Auth,
    /// An index already received, or too old for the replay window.
    #[error("replayed or too old")]
    Replay,
    /// More SSRCs than a session keeps state for.
    #[error("too many SSRCs in one session")]
    TooManySsrcs,
}
