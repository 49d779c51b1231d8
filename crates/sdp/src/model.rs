//! The part of a session description a conference focus acts on, read out
//! of webrtc-sdp's parse.

use std::net::IpAddr;

use thiserror::Error;
use webrtc_sdp::address::ExplicitlyTypedAddress;
use webrtc_sdp::attribute_type::{SdpAttribute, SdpAttributeType};
use webrtc_sdp::media_type::{SdpFormatList, SdpMediaValue, SdpProtocolValue};

/// Media direction as an SDP attribute (RFC 3264 §5.1), from the writer's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `a=sendrecv` (the default).
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    /// The direction an answer takes to this offered one (RFC 3264 §6.1).
    pub fn reversed(self) -> Self {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

/// One payload format of an m-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    /// Payload type.
    pub pt: u8,
    /// Encoding name as written (`PCMU`, `opus`, `telephone-event`…).
    pub name: String,
    /// Clock rate.
    pub clock: u32,
    /// Channels (1 unless given).
    pub channels: u32,
    /// RFC 7587 parameters, when this is Opus with an fmtp line.
    pub opus: Option<OpusParams>,
}

/// What an Opus receiver says of itself in its fmtp (RFC 7587 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusParams {
    /// Highest sample rate it renders (`maxplaybackrate`; 48000 if absent).
    pub max_playback_rate: u32,
    /// Highest rate it captures at (`sprop-maxcapturerate`).
    pub sprop_max_capture_rate: Option<u32>,
    /// Most bit/s it wants to receive on average (`maxaveragebitrate`).
    pub max_average_bitrate: Option<u32>,
    /// It can use in-band FEC (`useinbandfec=1`).
    pub use_inband_fec: bool,
    /// It prefers DTX (`usedtx=1`).
    pub use_dtx: bool,
    /// It prefers to receive stereo (`stereo=1`).
    pub stereo: bool,
    /// It will likely send stereo (`sprop-stereo=1`).
    pub sprop_stereo: bool,
    /// It prefers constant bitrate (`cbr=1`).
    pub cbr: bool,
}

impl Default for OpusParams {
    fn default() -> Self {
        Self {
            max_playback_rate: 48_000,
            sprop_max_capture_rate: None,
            max_average_bitrate: None,
            use_inband_fec: false,
            use_dtx: false,
            stereo: false,
            sprop_stereo: false,
            cbr: false,
        }
    }
}

impl OpusParams {
    fn from_fmtp(p: &webrtc_sdp::attribute_type::SdpAttributeFmtpParameters) -> Self {
        let mut o = Self {
            max_playback_rate: if p.maxplaybackrate == 0 {
                48_000
            } else {
                p.maxplaybackrate
            },
            max_average_bitrate: (p.maxaveragebitrate > 0).then_some(p.maxaveragebitrate),
            use_inband_fec: p.useinbandfec,
            use_dtx: p.usedtx,
            stereo: p.stereo,
            cbr: p.cbr,
            ..Self::default()
        };
        for token in &p.unknown_tokens {
            let Some((k, v)) = token.split_once('=') else {
                continue;
            };
            match k.trim().to_ascii_lowercase().as_str() {
                "sprop-maxcapturerate" => o.sprop_max_capture_rate = v.trim().parse().ok(),
                "sprop-stereo" => o.sprop_stereo = v.trim() == "1",
                _ => {}
            }
        }
        o
    }
}

/// An m-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaLine {
    /// `audio`, `video`, `application`, …
    pub kind: String,
    /// Port (0 = rejected or disabled).
    pub port: u16,
    /// Transport protocol as written.
    pub proto: String,
    /// True for plain `RTP/AVP` (and AVPF) audio we can take.
    pub plain_rtp: bool,
    /// True for `RTP/SAVP` (and SAVPF): SRTP with keys in `crypto`.
    pub secure: bool,
    /// The SDES keys offered (RFC 4568), in the offerer's order.
    pub crypto: Vec<crate::sdes::Crypto>,
    /// Formats as written on the m-line.
    pub format_ids: Vec<String>,
    /// Formats with their rtpmap (static ones filled in).
    pub formats: Vec<Format>,
    /// Connection address of the m-line, or of the session.
    pub connection: Option<IpAddr>,
    /// Direction.
    pub direction: Direction,
    /// `a=ptime`.
    pub ptime: Option<u32>,
    /// `a=maxptime`: the longest packet time the receiver takes.
    pub maxptime: Option<u32>,
    /// `a=rtcp-mux`.
    pub rtcp_mux: bool,
    /// `a=rtcp` port.
    pub rtcp_port: Option<u16>,
    /// `a=extmap` ids and URIs.
    pub extmaps: Vec<(u16, String)>,
}

/// A parsed session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// o= session id.
    pub session_id: u64,
    /// o= version.
    pub version: u64,
    /// The m-lines in order.
    pub media: Vec<MediaLine>,
}

/// Why an SDP body was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SdpError {
    /// It did not parse; the text says where.
    #[error("malformed SDP: {0}")]
    Malformed(String),
}

fn static_format(pt: u8) -> Option<Format> {
    let (name, clock) = match pt {
        0 => ("PCMU", 8000),
        3 => ("GSM", 8000),
        8 => ("PCMA", 8000),
        9 => ("G722", 8000),
        18 => ("G729", 8000),
        _ => return None,
    };
    Some(Format {
        pt,
        name: name.into(),
        clock,
        channels: 1,
        opus: None,
    })
}

fn ip_of(a: &ExplicitlyTypedAddress) -> Option<IpAddr> {
    match a {
        ExplicitlyTypedAddress::Ip(ip) => Some(*ip),
        ExplicitlyTypedAddress::Fqdn { .. } => None,
    }
}

impl Session {
    /// Parses an SDP body.
    pub fn parse(text: &str) -> Result<Self, SdpError> {
        let s =
            webrtc_sdp::parse_sdp(text, false).map_err(|e| SdpError::Malformed(e.to_string()))?;
        // Lines webrtc-sdp does not model (a=tool, a=minptime…) are ordinary
        // in offers; it logs them at WARN, which the binary silences.
        for w in &s.warnings {
            tracing::debug!(line = %w, "SDP line ignored");
        }
        let session_conn = s.get_connection().as_ref().and_then(|c| ip_of(&c.address));
        let mut crypto = crate::sdes::crypto_by_media(text).into_iter();
        let mut media = Vec::new();
        for m in &s.media {
            let kind = match m.get_type() {
                SdpMediaValue::Audio => "audio".to_string(),
                SdpMediaValue::Video => "video".to_string(),
                SdpMediaValue::Application => "application".to_string(),
                SdpMediaValue::Unknown(k) => k.clone(),
            };
            let plain_rtp = matches!(
                m.get_proto(),
                SdpProtocolValue::RtpAvp | SdpProtocolValue::RtpAvpf
            );
            let secure = matches!(
                m.get_proto(),
                SdpProtocolValue::RtpSavp | SdpProtocolValue::RtpSavpf
            );
            let keys = crypto.next().unwrap_or_default();
            let format_ids: Vec<String> = match m.get_formats() {
                SdpFormatList::Integers(v) => v.iter().map(u32::to_string).collect(),
                SdpFormatList::Strings(v) => v.clone(),
                SdpFormatList::Unknown(s) => s.split_whitespace().map(str::to_owned).collect(),
            };
            let mut formats = Vec::new();
            let mut direction = Direction::SendRecv;
            let mut ptime = None;
            let mut rtcp_mux = false;
            let mut rtcp_port = None;
            let mut extmaps = Vec::new();
            let mut fmtps = Vec::new();
            let mut maxptime = None;
            for a in m.get_attributes() {
                match a {
                    SdpAttribute::Rtpmap(r) => formats.push(Format {
                        pt: r.payload_type,
                        name: r.codec_name.clone(),
                        clock: r.frequency,
                        channels: r.channels.unwrap_or(1),
                        opus: None,
                    }),
                    SdpAttribute::Fmtp(f) => fmtps.push(f),
                    SdpAttribute::MaxPtime(p) => maxptime = u32::try_from(*p).ok(),
                    SdpAttribute::Sendrecv => direction = Direction::SendRecv,
                    SdpAttribute::Sendonly => direction = Direction::SendOnly,
                    SdpAttribute::Recvonly => direction = Direction::RecvOnly,
                    SdpAttribute::Inactive => direction = Direction::Inactive,
                    SdpAttribute::Ptime(p) => ptime = u32::try_from(*p).ok(),
                    SdpAttribute::RtcpMux => rtcp_mux = true,
                    SdpAttribute::Rtcp(r) => rtcp_port = Some(r.port),
                    SdpAttribute::Extmap(e) => extmaps.push((e.id, e.url.clone())),
                    _ => {}
                }
            }
            if m.get_attribute(SdpAttributeType::Sendrecv).is_none()
                && m.get_attribute(SdpAttributeType::Sendonly).is_none()
                && m.get_attribute(SdpAttributeType::Recvonly).is_none()
                && m.get_attribute(SdpAttributeType::Inactive).is_none()
            {
                // Session-level direction applies when the m-line has none.
                for (t, d) in [
                    (SdpAttributeType::Sendonly, Direction::SendOnly),
                    (SdpAttributeType::Recvonly, Direction::RecvOnly),
                    (SdpAttributeType::Inactive, Direction::Inactive),
                ] {
                    if s.get_attribute(t).is_some() {
                        direction = d;
                    }
                }
            }
            for f in &fmtps {
                let opus = formats.iter_mut().find(|x| {
                    u32::from(x.pt) == u32::from(f.payload_type)
                        && x.name.eq_ignore_ascii_case("opus")
                });
                if let Some(x) = opus {
                    x.opus = Some(OpusParams::from_fmtp(&f.parameters));
                }
            }
            for id in &format_ids {
                if let Ok(pt) = id.parse::<u8>() {
                    if !formats.iter().any(|f| f.pt == pt) {
                        if let Some(f) = static_format(pt) {
                            formats.push(f);
                        }
                    }
                }
            }
            // Keep the m-line's order, which is the offerer's preference.
            formats.sort_by_key(|f| {
                format_ids
                    .iter()
                    .position(|id| id == &f.pt.to_string())
                    .unwrap_or(usize::MAX)
            });
            let connection = m
                .get_connection()
                .as_ref()
                .and_then(|c| ip_of(&c.address))
                .or(session_conn);
            let port = u16::try_from(m.get_port())
                .map_err(|_| SdpError::Malformed("port out of range".into()))?;
            media.push(MediaLine {
                kind,
                port,
                proto: m.get_proto().to_string(),
                plain_rtp,
                secure,
                crypto: if secure { keys } else { Vec::new() },
                format_ids,
                formats,
                connection,
                direction,
                ptime,
                maxptime,
                rtcp_mux,
                rtcp_port,
                extmaps,
            });
        }
        Ok(Self {
            session_id: s.get_origin().session_id,
            version: s.get_origin().session_version,
            media,
        })
    }
}
