//! The focus's side of media control, sans-IO: what the core asks of the
//! media server ([`MediaCommand`], an output), what comes back
//! ([`MediaInput`]: failures, bound ports, DTMF, talking, RTP activity),
//! and the names the core gives rooms, legs and ports. The driver
//! ([`crate::media_driver`]) applies the commands to a real media server.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use media_server::codec::{CodecKind, OpusConfig};
use media_server::mixer::{Direction, TonePattern};

use crate::call::DialogId;

/// A mixer room, as the focus names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MediaRoomId(pub u64);

/// A call's media leg, as the focus names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegId(pub u64);

/// An RTP/RTCP port pair the driver has bound and holds for the focus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortToken(pub u64);

/// What a call's media leg needs.
#[derive(Debug, Clone)]
pub struct MediaSpec {
    /// Codec.
    pub codec: CodecKind,
    /// Its payload type.
    pub pt: u8,
    /// telephone-event payload type.
    pub dtmf_pt: Option<u8>,
    /// telephone-event's clock rate.
    pub dtmf_clock: u32,
    /// What an Opus receiver asked for (RFC 7587), mapped to encoder settings.
    pub opus: OpusConfig,
    /// Where to send until symmetric RTP latches.
    pub remote: Option<SocketAddr>,
    /// RTP and RTCP on one port.
    pub rtcp_mux: bool,
    /// RFC 6464 extension id.
    pub audio_level_ext: Option<u8>,
    /// RFC 6465 extension id.
    pub csrc_level_ext: Option<u8>,
    /// What the mixer does with the leg.
    pub direction: Direction,
    /// SRTP keys, when the call is secure.
    pub srtp: Option<media_server::io::SrtpKeys>,
}

impl MediaSpec {
    /// The leg an offer/answer outcome asks for; None for a codec the media
    /// server does not have (negotiation only picks ones it has).
    pub(crate) fn from_negotiated(n: &sdp::Negotiated, rtcp_mux: bool) -> Option<Self> {
        Some(Self {
            codec: codec_kind(n.codec)?,
            pt: n.pt,
            dtmf_pt: n.dtmf_pt,
            dtmf_clock: n.dtmf_clock,
            opus: n.opus.map(opus_config).unwrap_or_default(),
            remote: Some(n.remote),
            rtcp_mux,
            audio_level_ext: n.audio_level_ext,
            csrc_level_ext: n.csrc_level_ext,
            direction: mixer_direction(n.remote_direction),
            srtp: match (&n.crypto, &n.local_crypto) {
                (Some(remote), Some(local)) => Some(media_server::io::SrtpKeys::new(
                    srtp::Suite::from_name(&remote.suite)?,
                    &remote.key_salt,
                    &local.key_salt,
                )?),
                _ => None,
            },
        })
    }
}

/// Why the media server did not do what the focus asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MediaControlError {
    /// Its command queue is full for now: try again shortly.
    #[error("the mixer's command queue is full")]
    Busy,
    /// The leg or room is gone: nothing to retry.
    #[error("no such leg or room")]
    Gone,
    /// Every RTP port in the configured range is taken.
    #[error("no free RTP port")]
    NoPorts,
    /// A socket, thread or codec could not be set up.
    #[error("the media server failed")]
    Failed,
}

impl From<&media_server::MediaError> for MediaControlError {
    fn from(e: &media_server::MediaError) -> Self {
        use media_server::MediaError as E;
        match e {
            E::Busy => MediaControlError::Busy,
            E::NoSuchRoom | E::NoSuchParticipant => MediaControlError::Gone,
            E::NoPorts => MediaControlError::NoPorts,
            E::Io(_) | E::Codec(_) => MediaControlError::Failed,
        }
    }
}

/// A change to what the mixer does with one leg; only changed values are sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LegControl {
    /// The room does not hear it.
    Mute(bool),
    /// It hears silence.
    Deaf(bool),
    /// What the room hears of it and what it hears, in dB.
    Gain {
        /// Input gain.
        input_db: f32,
        /// Output gain.
        output_db: f32,
    },
}

/// What the focus asks of the media server (an output of the core).
#[derive(Debug)]
pub enum MediaCommand {
    /// Bind `count` more port pairs and report each as [`MediaInput::Reserved`].
    Reserve {
        /// How many.
        count: usize,
    },
    /// Open a mixing room for `capacity` participants, mixing the
    /// `talkers` loudest (None: the media server's default).
    OpenRoom {
        /// Its name.
        room: MediaRoomId,
        /// Most participants.
        capacity: usize,
        /// Loudest talkers mixed.
        talkers: Option<usize>,
    },
    /// End a room.
    CloseRoom {
        /// Which.
        room: MediaRoomId,
    },
    /// Change how many of the loudest talkers an open room mixes.
    SetMaxTalkers {
        /// Which.
        room: MediaRoomId,
        /// How many.
        talkers: usize,
    },
    /// Open a leg in a room on a reserved port.
    Join {
        /// The leg's name.
        leg: LegId,
        /// Its room.
        room: MediaRoomId,
        /// The port the SDP named.
        port: PortToken,
        /// Codec and the rest.
        spec: MediaSpec,
    },
    /// Give a reserved port back unused.
    Release {
        /// Which.
        port: PortToken,
    },
    /// A call ended: the media edge adds the leg's counters to its record
    /// and passes it on (sent before the leg's `Leave`).
    CallEnded {
        /// The call's leg, if it had one.
        leg: Option<LegId>,
        /// The record.
        record: Box<crate::CallRecord>,
    },
    /// Close a leg.
    Leave {
        /// Which.
        leg: LegId,
    },
    /// Change a leg's direction (hold, resume).
    SetDirection {
        /// Which.
        leg: LegId,
        /// What the mixer does with it.
        direction: Direction,
    },
    /// Change where a leg sends.
    SetRemote {
        /// Which.
        leg: LegId,
        /// Where.
        remote: SocketAddr,
    },
    /// Mute, deafen or change gains; a refusal comes back as
    /// [`MediaInput::Refused`].
    Control {
        /// Which.
        leg: LegId,
        /// What.
        change: LegControl,
    },
    /// Play a tone pattern to a whole room.
    RoomTone {
        /// Which.
        room: MediaRoomId,
        /// What.
        pattern: TonePattern,
    },
    /// Play a tone pattern to one leg.
    Tone {
        /// Which.
        leg: LegId,
        /// What.
        pattern: TonePattern,
    },
    /// Record a room's mix into `tap` (its writer was started by whoever
    /// asked for the recording).
    Record {
        /// Which.
        room: MediaRoomId,
        /// Where the mix goes.
        tap: Box<media_server::recording::RecordTap>,
    },
    /// Stop recording a room (its writer then ends the file).
    StopRecording {
        /// Which.
        room: MediaRoomId,
    },
}

/// What the media side tells the focus (an input of the core).
#[derive(Debug, Clone)]
pub enum MediaInput {
    /// A port pair bound for the focus, for a call to come.
    Reserved {
        /// Its token.
        port: PortToken,
        /// Its local RTP address.
        addr: SocketAddr,
    },
    /// Binding ports failed.
    ReserveFailed {
        /// How many of those asked for.
        count: usize,
        /// Why.
        error: MediaControlError,
    },
    /// A mixer room could not be opened.
    RoomFailed {
        /// Which.
        room: MediaRoomId,
        /// Why.
        error: MediaControlError,
    },
    /// A leg could not be opened: its call ends.
    JoinFailed {
        /// Which.
        leg: LegId,
        /// Why.
        error: MediaControlError,
    },
    /// A control change was not applied.
    Refused {
        /// Which leg.
        leg: LegId,
        /// What was asked.
        change: LegControl,
        /// Why.
        error: MediaControlError,
    },
    /// A DTMF key press on a leg.
    Dtmf {
        /// Which leg.
        leg: LegId,
        /// The key.
        digit: char,
    },
    /// A leg started or stopped talking.
    Talking {
        /// Which leg.
        leg: LegId,
        /// Started (true) or stopped.
        talking: bool,
    },
    /// RTP packets received so far on each leg, for RTP timeouts.
    RtpActivity(Vec<(LegId, u64)>),
}

/// The core's media bookkeeping: commands not yet taken by the driver,
/// names to hand out, the pool of bound ports, and changes to retry.
#[derive(Debug, Default)]
pub(crate) struct MediaControl {
    out: VecDeque<MediaCommand>,
    next: u64,
    ports: VecDeque<(PortToken, SocketAddr)>,
    /// Ports asked for and not reported yet.
    asked: usize,
    /// After a failed reservation, no new ask before this.
    ask_after: Option<Instant>,
    pub(crate) retry: MediaRetry,
}

/// Ports kept bound ahead of calls: a burst of INVITEs in one turn of the
/// driver takes at most this many before the pool is topped up.
const PORT_POOL: usize = 8;
/// After the media server could not bind ports, how long before asking again.
const RESERVE_BACKOFF: Duration = Duration::from_secs(1);

impl MediaControl {
    pub(crate) fn send(&mut self, cmd: MediaCommand) {
        self.out.push_back(cmd);
    }

    pub(crate) fn poll(&mut self) -> Option<MediaCommand> {
        self.out.pop_front()
    }

    pub(crate) fn new_leg(&mut self) -> LegId {
        self.next += 1;
        LegId(self.next)
    }

    pub(crate) fn new_room(&mut self) -> MediaRoomId {
        self.next += 1;
        MediaRoomId(self.next)
    }

    /// A bound port for a call's SDP, if the pool has one; asks for more
    /// when it runs low.
    pub(crate) fn take_port(&mut self, now: Instant) -> Option<(PortToken, SocketAddr)> {
        let port = self.ports.pop_front();
        self.top_up(now);
        port
    }

    /// Asks the driver to fill the pool.
    pub(crate) fn top_up(&mut self, now: Instant) {
        if self.ask_after.is_some_and(|t| t > now) {
            return;
        }
        let have = self.ports.len() + self.asked;
        if have <= PORT_POOL / 2 {
            let count = PORT_POOL - have;
            self.asked += count;
            self.send(MediaCommand::Reserve { count });
        }
    }

    pub(crate) fn reserved(&mut self, port: PortToken, addr: SocketAddr) {
        self.asked = self.asked.saturating_sub(1);
        self.ports.push_back((port, addr));
    }

    pub(crate) fn reserve_failed(&mut self, now: Instant, count: usize) {
        self.asked = self.asked.saturating_sub(count);
        self.ask_after = Some(now + RESERVE_BACKOFF);
    }

    pub(crate) fn shrink(&mut self) {
        if sip::transaction::sparse(self.out.len(), self.out.capacity()) {
            self.out.shrink_to(self.out.len() * 2);
        }
        let p = &mut self.retry.pending;
        if sip::transaction::sparse(p.len(), p.capacity()) {
            p.shrink_to(p.len() * 2);
        }
    }
}

/// Calls whose leg state the mixer could not take yet (its queue was
/// full), retried shortly; and how often that happened.
#[derive(Debug, Default)]
pub(crate) struct MediaRetry {
    pub(crate) pending: HashSet<DialogId>,
    pub(crate) at: Option<Instant>,
    /// Control changes the mixer refused as busy (each is retried), for
    /// the log.
    pub(crate) refusals: sip::limits::OncePerSecond,
}

/// How soon a refused change is tried again: about a mixer tick.
pub(crate) const MEDIA_RETRY: Duration = Duration::from_millis(5);

/// Encoder settings within what an Opus receiver asked for: no more than
/// its `maxaveragebitrate`, no band above its `maxplaybackrate`, CBR when
/// it prefers it. FEC stays on whatever `useinbandfec` says: a decoder that
/// does not use it skips it, and one shared stream serves both kinds. We
/// never send DTX or stereo
/// (`usedtx` and `stereo` are preferences, RFC 7587 §6.1): a listener on the
/// shared stream must not hear gaps a talker's phone chose.
fn opus_config(p: sdp::OpusParams) -> OpusConfig {
    let d = OpusConfig::default();
    let bitrate = p.max_average_bitrate.map_or(d.bitrate, |max| {
        d.bitrate.min(max.clamp(6_000, 510_000) as i32)
    });
    OpusConfig {
        bitrate,
        max_playback_rate: p.max_playback_rate.clamp(8_000, 48_000),
        cbr: p.cbr,
        ..d
    }
}

/// The codec kind for an SDP encoding name chosen by negotiation.
pub(crate) fn codec_kind(name: &str) -> Option<CodecKind> {
    match name {
        "opus" => Some(CodecKind::Opus),
        "G722" => Some(CodecKind::G722),
        "PCMU" => Some(CodecKind::Pcmu),
        "PCMA" => Some(CodecKind::Pcma),
        _ => None,
    }
}

/// What the mixer does with a leg, from the direction in the phone's SDP. A
/// phone that holds (sendonly or inactive) is neither mixed nor sent to:
/// its music on hold must not reach the room.
pub(crate) fn mixer_direction(remote: sdp::Direction) -> Direction {
    match remote {
        sdp::Direction::SendRecv => Direction::SendRecv,
        sdp::Direction::RecvOnly => Direction::RecvOnly,
        sdp::Direction::SendOnly | sdp::Direction::Inactive => Direction::Inactive,
    }
}
