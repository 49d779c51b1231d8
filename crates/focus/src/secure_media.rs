//! SRTP with SDES keys (RFC 4568) for dial-in calls: whether an offer's
//! media may (or must) be secure, and our own key for the answer. The
//! keys travel in the SDP, so by default they are taken only over TLS: on
//! a transport in clear anyone on the path could read them.

use sip::transaction::TransportKind;
use sip::HeaderName;

use crate::core::Focus;
use crate::dialin::Refusal;

pub use control::SrtpMode;

/// SRTP settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct SrtpPolicy {
    /// Off, optional or required.
    pub mode: SrtpMode,
    /// Take SDES keys over UDP and TCP too (they are readable on the path).
    pub sdes_in_clear: bool,
}

/// The suites we offer, most compatible first.
const OFFERED: [srtp::Suite; 2] = [srtp::Suite::AesCm128HmacSha1_80, srtp::Suite::AeadAes128Gcm];

impl Focus {
    /// The room's own SRTP mode, else the server's.
    pub(crate) fn srtp_mode(&self, room: &str) -> SrtpMode {
        self.policy(room)
            .and_then(|p| p.srtp)
            .unwrap_or(self.config.srtp.mode)
    }

    /// The SDES keys our own offer carries over `transport`: none unless
    /// SRTP is required; Err when it is required and the transport is in
    /// clear (keys are not sent where anyone can read them).
    pub(crate) fn offer_keys(
        &mut self,
        room: &str,
        transport: TransportKind,
    ) -> Result<Vec<sdp::Crypto>, &'static str> {
        let policy = self.config.srtp;
        if self.srtp_mode(room) != SrtpMode::Required {
            return Ok(Vec::new());
        }
        if transport != TransportKind::Tls && !policy.sdes_in_clear {
            return Err("SIP/2.0 488 Not Acceptable Here");
        }
        Ok(OFFERED
            .iter()
            .enumerate()
            .map(|(i, s)| sdp::Crypto {
                tag: i as u32 + 1,
                suite: s.name().to_owned(),
                key_salt: fresh_key(*s),
                mki: false,
            })
            .collect())
    }

    /// Decides on an offer's security and, for SRTP, makes our key.
    pub(crate) fn secure_answer(
        &mut self,
        room: &str,
        n: &mut sdp::Negotiated,
        transport: TransportKind,
        host: &str,
    ) -> Result<(), Refusal> {
        let refuse = |why: &str| {
            (
                488,
                "Not Acceptable Here".to_string(),
                vec![(HeaderName::WARNING, format!("305 {host} \"{why}\""))],
            )
        };
        let policy = self.config.srtp;
        match (n.secure, self.srtp_mode(room)) {
            (false, SrtpMode::Required) => Err(refuse("SRTP (RTP/SAVP with SDES) is required")),
            (false, _) => Ok(()),
            (true, SrtpMode::Off) => Err(refuse("SRTP is off here: offer RTP/AVP")),
            (true, _) if transport != TransportKind::Tls && !policy.sdes_in_clear => Err(refuse(
                "SDES keys are taken only over TLS (sips: or transport=tls)",
            )),
            (true, _) => {
                let remote = n.crypto.as_ref().ok_or_else(|| refuse("no SDES key"))?;
                let suite = srtp::Suite::from_name(&remote.suite)
                    .filter(|s| remote.key_salt.len() == s.key_len() + s.salt_len())
                    .ok_or_else(|| refuse("an SDES key of the wrong length"))?;
                n.local_crypto = Some(sdp::Crypto {
                    tag: remote.tag,
                    suite: remote.suite.clone(),
                    key_salt: fresh_key(suite),
                    mki: false,
                });
                Ok(())
            }
        }
    }
}

/// An answer to our offer: secure exactly when we offered keys, with one of
/// our tags and suites; our key for that tag goes with it.
pub(crate) fn take_answer_keys(n: &mut sdp::Negotiated, offered: &[sdp::Crypto]) -> bool {
    match (offered.is_empty(), n.secure) {
        (true, false) => true,
        (false, true) => {
            let ours = n.crypto.as_ref().and_then(|theirs| {
                offered
                    .iter()
                    .find(|o| o.tag == theirs.tag && o.suite == theirs.suite)
            });
            n.local_crypto = ours.cloned();
            n.local_crypto.is_some()
        }
        _ => false,
    }
}

/// A master key and salt for `suite` from the OS's generator, never from
/// the focus's seeded one.
fn fresh_key(suite: srtp::Suite) -> Vec<u8> {
    let mut key = vec![0u8; suite.key_len() + suite.salt_len()];
    rand::Rng::fill(&mut rand::rng(), &mut key[..]);
    key
}
