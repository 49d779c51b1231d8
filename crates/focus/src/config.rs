//! The focus's settings.

use std::net::IpAddr;
use std::time::Duration;

use sip::transaction::TimerConfig;

/// What the focus says about itself and how it admits calls.
#[derive(Debug, Clone)]
pub struct FocusConfig {
    /// Methods listed in Allow.
    pub allow: Vec<String>,
    /// Bodies listed in Accept.
    pub accept: Vec<String>,
    /// Option tags listed in Supported; a Require outside it gets 420.
    pub supported: Vec<String>,
    /// Server and User-Agent header value (empty: none is sent, so that a
    /// scanner cannot tell what answers).
    pub server: String,
    /// Transaction timers.
    pub timers: TimerConfig,
    /// Rooms are created on first join (else only `rooms` exist).
    pub auto_create: bool,
    /// Rooms that always exist.
    pub rooms: Vec<String>,
    /// Most participants in a room.
    pub max_room_size: usize,
    /// Most simultaneous calls from one source IP (beyond: 503).
    pub max_calls_per_source: usize,
    /// Delay before a call is answered (180 Ringing is sent meanwhile).
    pub answer_delay: Duration,
    /// Session interval we ask for (RFC 4028), seconds.
    pub session_expires: u32,
    /// Smallest session interval we accept, seconds (422 below it).
    pub min_se: u32,
    /// A call whose RTP stops this long is ended with BYE.
    pub rtp_timeout: Duration,
    /// Codec preference for SDP answers.
    pub codecs: sdp::Preferences,
    /// Address to put in SDP and Contact when the bind address is unspecified.
    pub advertise_ip: Option<IpAddr>,
    /// DTMF controls: `*6` self-mute, `*4`/`*7` volume down/up, `*1` room size in beeps.
    pub dtmf_controls: bool,
    /// Chimes to the room when someone joins or leaves.
    pub entry_exit_tones: bool,
    /// AORs allowed to subscribe to any room besides its participants (`*`: anyone).
    pub watchers: Vec<String>,
    /// Smallest subscription accepted, seconds (423 below).
    pub subscription_min: u32,
    /// Longest subscription granted, seconds.
    pub subscription_max: u32,
    /// Subscription length when SUBSCRIBE has no Expires, seconds.
    pub subscription_default: u32,
    /// Changes closer together than this are coalesced into one NOTIFY.
    pub notify_min_interval: Duration,
    /// Our SIP host:port as peers reach it, for calls the control API places.
    pub sip_host: Option<String>,
    /// The port we listen on for SIP: Contact and Via name it, never the
    /// Request-URI's (behind a proxy that is the proxy's).
    pub sip_port: Option<u16>,
    /// The port we listen on for SIP over TLS (Contact and Via over TLS name it).
    pub sip_tls_port: Option<u16>,
    /// User part of the conference factory URI (RFC 4579): an INVITE to it makes a new room.
    pub factory: Option<String>,
    /// Digest authentication and lockouts.
    pub auth: crate::auth::AuthConfig,
    /// Registration intervals and bounds.
    pub registrar: registrar::Limits,
    /// Where dial-outs (API and REFER) may go besides registered users.
    pub dial_out: DialOutPolicy,
    /// SRTP with SDES keys for calls in.
    pub srtp: crate::secure_media::SrtpPolicy,
}

/// Which dial-out targets are allowed, and how often.
#[derive(Debug, Clone)]
pub struct DialOutPolicy {
    /// Patterns a target URI must match (besides a registered address of
    /// record, always allowed): `*` matches any run of characters, e.g.
    /// `sip:*@10.0.0.*` or `sip:+4420*@gw.example.com`. Empty: only
    /// registered users, so that a REFER cannot make confab a free gateway.
    pub allow: Vec<String>,
    /// Dial-outs one room may place per minute.
    pub per_room_per_minute: u32,
}

impl Default for DialOutPolicy {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            per_room_per_minute: 30,
        }
    }
}

impl FocusConfig {
    /// Adds the Server (responses) or User-Agent (requests) header, unless
    /// the operator chose to send none.
    pub(crate) fn identify(&self, headers: &mut sip::Headers, name: sip::HeaderName) {
        if !self.server.is_empty() {
            headers.push(name, self.server.clone());
        }
    }
}

impl Default for FocusConfig {
    fn default() -> Self {
        Self {
            allow: [
                "INVITE",
                "ACK",
                "BYE",
                "CANCEL",
                "OPTIONS",
                "UPDATE",
                "SUBSCRIBE",
                "REFER",
                "MESSAGE",
            ]
            .map(String::from)
            .to_vec(),
            accept: vec!["application/sdp".into(), "text/plain".into()],
            supported: vec!["timer".into()],
            server: format!("confab/{}", env!("CARGO_PKG_VERSION")),
            timers: TimerConfig::default(),
            auto_create: true,
            rooms: Vec::new(),
            max_room_size: 64,
            max_calls_per_source: 200,
            answer_delay: Duration::ZERO,
            session_expires: 1800,
            min_se: 90,
            rtp_timeout: Duration::from_secs(30),
            codecs: sdp::Preferences::default(),
            advertise_ip: None,
            dtmf_controls: true,
            entry_exit_tones: true,
            watchers: Vec::new(),
            subscription_min: 60,
            subscription_max: 3600,
            subscription_default: 3600,
            notify_min_interval: Duration::from_millis(200),
            factory: Some("conference".into()),
            sip_host: None,
            sip_port: None,
            sip_tls_port: None,
            auth: crate::auth::AuthConfig::default(),
            registrar: registrar::Limits::default(),
            dial_out: DialOutPolicy::default(),
            srtp: Default::default(),
        }
    }
}
