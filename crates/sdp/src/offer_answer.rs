//! RFC 3264 offer/answer for one audio stream: pick the first codec of
//! ours that the offer has (in our preference order), keep telephone-event,
//! rtcp-mux and the audio-level header extensions when offered, answer every
//! other m-line with port 0, and print the SDP.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use thiserror::Error;

use crate::model::{Direction, Format, MediaLine, OpusParams, Session};

/// RFC 6464 client-to-mixer audio level.
pub const SSRC_AUDIO_LEVEL: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
/// RFC 6465 mixer-to-client audio levels.
pub const CSRC_AUDIO_LEVEL: &str = "urn:ietf:params:rtp-hdrext:csrc-audio-level";

/// A codec we can offer or accept: encoding name (case-insensitive), clock rate, channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecPref {
    /// Encoding name.
    pub name: &'static str,
    /// RTP clock rate.
    pub clock: u32,
    /// Channels in the rtpmap.
    pub channels: u32,
    /// Payload type we use when we offer it.
    pub pt: u8,
}

/// Our side of the negotiation.
#[derive(Debug, Clone)]
pub struct Preferences {
    /// Codecs in preference order.
    pub codecs: Vec<CodecPref>,
    /// The packet time we send, in ms.
    pub ptime: u32,
    /// Payload type for telephone-event in our offers.
    pub dtmf_pt: u8,
    /// SRTP suites we take from an `RTP/SAVP` offer (RFC 4568 names).
    pub srtp_suites: Vec<&'static str>,
}

impl Default for Preferences {
    fn default() -> Self {
        Self {
            codecs: vec![
                CodecPref {
                    name: "opus",
                    clock: 48000,
                    channels: 2,
                    pt: 111,
                },
                CodecPref {
                    name: "G722",
                    clock: 8000,
                    channels: 1,
                    pt: 9,
                },
                CodecPref {
                    name: "PCMU",
                    clock: 8000,
                    channels: 1,
                    pt: 0,
                },
                CodecPref {
                    name: "PCMA",
                    clock: 8000,
                    channels: 1,
                    pt: 8,
                },
            ],
            ptime: 20,
            dtmf_pt: 101,
            srtp_suites: vec![
                "AEAD_AES_128_GCM",
                "AES_CM_128_HMAC_SHA1_80",
                "AES_CM_128_HMAC_SHA1_32",
            ],
        }
    }
}

/// The outcome: what the media server must be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Index of the audio m-line used.
    pub m_index: usize,
    /// The chosen codec's name as we know it (`opus`, `G722`, `PCMU`, `PCMA`).
    pub codec: &'static str,
    /// Its payload type in this session.
    pub pt: u8,
    /// telephone-event payload type, if both sides have it.
    pub dtmf_pt: Option<u8>,
    /// telephone-event's RTP clock: the codec's when offered at that rate,
    /// else the one offered (Opus phones often keep events at 8 kHz).
    pub dtmf_clock: u32,
    /// The remote's Opus parameters (RFC 7587), when the codec is Opus.
    pub opus: Option<OpusParams>,
    /// The longest packet time the remote takes, if given.
    pub remote_maxptime: Option<u32>,
    /// Where to send RTP.
    pub remote: SocketAddr,
    /// Where to send RTCP when not muxed.
    pub remote_rtcp: Option<SocketAddr>,
    /// RTP and RTCP share a port.
    pub rtcp_mux: bool,
    /// The direction in the remote's SDP (its own point of view).
    pub remote_direction: Direction,
    /// RFC 6464 extension id the remote sends.
    pub audio_level_ext: Option<u8>,
    /// RFC 6465 extension id for what we send.
    pub csrc_level_ext: Option<u8>,
    /// The remote's packet time, if given.
    pub remote_ptime: Option<u32>,
    /// The offer was `RTP/SAVP`: SRTP with the remote's key in `crypto`.
    pub secure: bool,
    /// The remote's SDES key we take (the first of its lines whose suite
    /// we have, without an MKI).
    pub crypto: Option<crate::sdes::Crypto>,
    /// Our own key for the answer, same tag and suite: set by the caller
    /// (it has the random source), printed by [`answer`].
    pub local_crypto: Option<crate::sdes::Crypto>,
}

/// Why no answer can be made (each maps to a SIP status).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum NegotiationError {
    /// No audio m-line over plain RTP.
    #[error("no RTP/AVP audio stream offered")]
    NoAudio,
    /// No codec in common.
    #[error("no common codec (we take {0})")]
    NoCommonCodec(String),
    /// The audio stream has no usable address.
    #[error("audio stream has no IP connection address")]
    NoAddress,
    /// `RTP/SAVP` without an SDES key in a suite we have.
    #[error("no SRTP crypto suite in common (we take {0})")]
    NoCommonCrypto(String),
}

fn find_pref<'a>(prefs: &'a Preferences, f: &Format) -> Option<&'a CodecPref> {
    prefs
        .codecs
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(&f.name) && c.clock == f.clock)
}

fn ext_id(m: &MediaLine, uri: &str) -> Option<u8> {
    m.extmaps
        .iter()
        .find(|(_, u)| u == uri)
        .and_then(|(id, _)| u8::try_from(*id).ok())
        .filter(|id| (1..=14).contains(id))
}

fn remote_of(m: &MediaLine) -> Result<(SocketAddr, Option<SocketAddr>), NegotiationError> {
    let ip = m.connection.ok_or(NegotiationError::NoAddress)?;
    let rtp = SocketAddr::new(ip, m.port);
    let rtcp =
        (!m.rtcp_mux).then(|| SocketAddr::new(ip, m.rtcp_port.unwrap_or(m.port.wrapping_add(1))));
    Ok((rtp, rtcp))
}

/// Chooses what to use from an offer.
pub fn negotiate(offer: &Session, prefs: &Preferences) -> Result<Negotiated, NegotiationError> {
    let (m_index, m) = offer
        .media
        .iter()
        .enumerate()
        .find(|(_, m)| m.kind == "audio" && (m.plain_rtp || m.secure) && m.port != 0)
        .ok_or(NegotiationError::NoAudio)?;
    let crypto = if m.secure {
        let c = m
            .crypto
            .iter()
            .find(|c| !c.mki && prefs.srtp_suites.contains(&c.suite.as_str()))
            .ok_or_else(|| NegotiationError::NoCommonCrypto(prefs.srtp_suites.join(", ")))?;
        Some(c.clone())
    } else {
        None
    };
    // Our preference order decides (RFC 3264 §6.1 lets the answerer choose).
    let (pref, format) = prefs
        .codecs
        .iter()
        .find_map(|p| {
            m.formats
                .iter()
                .find(|f| find_pref(prefs, f) == Some(p))
                .map(|f| (p, f))
        })
        .ok_or_else(|| {
            NegotiationError::NoCommonCodec(
                prefs
                    .codecs
                    .iter()
                    .map(|c| c.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        })?;
    let events = || {
        m.formats
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case("telephone-event"))
    };
    let dtmf = events()
        .find(|f| f.clock == format.clock)
        .or_else(|| events().next());
    let (remote, remote_rtcp) = remote_of(m)?;
    Ok(Negotiated {
        m_index,
        codec: pref.name,
        pt: format.pt,
        dtmf_pt: dtmf.map(|f| f.pt),
        dtmf_clock: dtmf.map_or(format.clock, |f| f.clock),
        opus: (pref.name == "opus").then(|| format.opus.unwrap_or_default()),
        remote_maxptime: m.maxptime,
        remote,
        remote_rtcp,
        rtcp_mux: m.rtcp_mux,
        remote_direction: m.direction,
        audio_level_ext: ext_id(m, SSRC_AUDIO_LEVEL),
        csrc_level_ext: ext_id(m, CSRC_AUDIO_LEVEL),
        remote_ptime: m.ptime,
        secure: m.secure,
        crypto,
        local_crypto: None,
    })
}

fn origin(out: &mut String, session_id: u64, version: u64, ip: IpAddr) {
    let fam = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let _ = write!(out, "v=0\r\no=confab {session_id} {version} IN {fam} {ip}\r\ns=confab\r\nc=IN {fam} {ip}\r\nt=0 0\r\n");
}

fn rtpmap(out: &mut String, pt: u8, name: &str, clock: u32, channels: u32) {
    if channels > 1 {
        let _ = write!(out, "a=rtpmap:{pt} {name}/{clock}/{channels}\r\n");
    } else {
        let _ = write!(out, "a=rtpmap:{pt} {name}/{clock}\r\n");
    }
}

/// The answer to `offer` given what was negotiated. `direction` is ours
/// (usually the reverse of the offer's), `local` our RTP address.
pub fn answer(
    offer: &Session,
    neg: &Negotiated,
    local: SocketAddr,
    direction: Direction,
    session_id: u64,
    version: u64,
) -> String {
    let mut out = String::with_capacity(512);
    origin(&mut out, session_id, version, local.ip());
    for (i, m) in offer.media.iter().enumerate() {
        if i != neg.m_index {
            // Declined streams keep their formats and get port 0 (RFC 3264 §6).
            let _ = write!(
                out,
                "m={} 0 {} {}\r\n",
                m.kind,
                m.proto,
                m.format_ids.join(" ")
            );
            continue;
        }
        let format = m.formats.iter().find(|f| f.pt == neg.pt);
        let mut pts = vec![neg.pt.to_string()];
        if let Some(d) = neg.dtmf_pt {
            pts.push(d.to_string());
        }
        let proto = if neg.secure { "RTP/SAVP" } else { "RTP/AVP" };
        let _ = write!(
            out,
            "m=audio {} {proto} {}\r\n",
            local.port(),
            pts.join(" ")
        );
        if let Some(c) = &neg.local_crypto {
            out.push_str(&c.to_line());
        }
        if let Some(f) = format {
            rtpmap(&mut out, f.pt, &f.name, f.clock, f.channels);
            if f.name.eq_ignore_ascii_case("opus") {
                let _ = write!(out, "a=fmtp:{} useinbandfec=1;minptime=10\r\n", f.pt);
            }
        }
        if let Some(d) = neg.dtmf_pt {
            rtpmap(&mut out, d, "telephone-event", neg.dtmf_clock, 1);
            let _ = write!(out, "a=fmtp:{d} 0-15\r\n");
        }
        // We send 20 ms; we take up to 60 ms (RFC 7587 Opus frames too).
        let _ = write!(out, "a=ptime:20\r\na=maxptime:60\r\n");
        if neg.rtcp_mux {
            out.push_str("a=rtcp-mux\r\n");
        } else {
            let _ = write!(out, "a=rtcp:{}\r\n", local.port() + 1);
        }
        if let Some(id) = neg.audio_level_ext {
            let _ = write!(out, "a=extmap:{id} {SSRC_AUDIO_LEVEL}\r\n");
        }
        if let Some(id) = neg.csrc_level_ext {
            let _ = write!(out, "a=extmap:{id} {CSRC_AUDIO_LEVEL}\r\n");
        }
        let _ = write!(out, "a={}\r\n", direction.as_str());
    }
    out
}

/// Our offer (for an INVITE without SDP, and dial-outs): every preferred
/// codec and telephone-event; `RTP/SAVP` with these SDES keys when there
/// are any (RFC 4568).
pub fn offer(
    prefs: &Preferences,
    local: SocketAddr,
    direction: Direction,
    session_id: u64,
    version: u64,
    crypto: &[crate::sdes::Crypto],
) -> String {
    let mut out = String::with_capacity(512);
    origin(&mut out, session_id, version, local.ip());
    let mut pts: Vec<String> = prefs.codecs.iter().map(|c| c.pt.to_string()).collect();
    pts.push(prefs.dtmf_pt.to_string());
    let proto = if crypto.is_empty() {
        "RTP/AVP"
    } else {
        "RTP/SAVP"
    };
    let _ = write!(
        out,
        "m=audio {} {proto} {}\r\n",
        local.port(),
        pts.join(" ")
    );
    for c in crypto {
        out.push_str(&c.to_line());
    }
    for c in &prefs.codecs {
        rtpmap(&mut out, c.pt, c.name, c.clock, c.channels);
        if c.name == "opus" {
            let _ = write!(out, "a=fmtp:{} useinbandfec=1;minptime=10\r\n", c.pt);
        }
    }
    rtpmap(&mut out, prefs.dtmf_pt, "telephone-event", 8000, 1);
    let _ = write!(
        out,
        "a=fmtp:{} 0-15\r\na=ptime:{}\r\na=rtcp:{}\r\na={}\r\n",
        prefs.dtmf_pt,
        prefs.ptime,
        local.port() + 1,
        direction.as_str()
    );
    out
}

/// Takes the answer to our own offer: the codec must be one we offered.
pub fn accept_answer(
    prefs: &Preferences,
    answer: &Session,
) -> Result<Negotiated, NegotiationError> {
    let n = negotiate(answer, prefs)?;
    let offered = prefs
        .codecs
        .iter()
        .any(|c| c.name == n.codec && c.pt == n.pt);
    if !offered {
        // The answerer must use our payload type numbers (RFC 3264 §6.1).
        return Err(NegotiationError::NoCommonCodec(format!(
            "answer used payload type {} that we did not offer",
            n.pt
        )));
    }
    Ok(n)
}
