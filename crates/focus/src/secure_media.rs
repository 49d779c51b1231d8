//! SRTP with SDES keys (RFC 4568) for dial-in calls: whether an offer's
//! media may (or must) be secure, and our own key for the answer. The
//! keys travel in the SDP, so by default they are taken only over TLS: on
//! a transport in clear anyone on the path could read them.

use sip::transaction::TransportKind;
use sip::HeaderName;

use crate::core::Focus;

/// Whether calls use SRTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SrtpMode {
    /// Plain RTP only: `RTP/SAVP` offers get 488.
    Off,
    /// Either: an `RTP/SAVP` offer is answered with SRTP, `RTP/AVP` with RTP.
    #[default]
    Optional,
    /// SRTP only: `RTP/AVP` offers get 488.
    Required,
}

/// SRTP settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct SrtpPolicy {
    /// Off, optional or required.
    pub mode: SrtpMode,
    /// Take SDES keys over UDP and TCP too (they are readable on the path).
    pub sdes_in_clear: bool,
}

/// A refusal: status, reason, headers.
type Refusal = (u16, String, Vec<(HeaderName, String)>);

impl Focus {
    /// Decides on an offer's security and, for SRTP, makes our key.
    pub(crate) fn secure_answer(
        &mut self,
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
        match (n.secure, policy.mode) {
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
                let mut key = vec![0u8; suite.key_len() + suite.salt_len()];
                // Keys from the OS's generator, never from the seeded one.
                rand::Rng::fill(&mut rand::rng(), &mut key[..]);
                n.local_crypto = Some(sdp::Crypto {
                    tag: remote.tag,
                    suite: remote.suite.clone(),
                    key_salt: key,
                    mki: false,
                });
                Ok(())
            }
        }
    }
}
