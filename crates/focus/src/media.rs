//! The focus's view of the media server: a small synchronous port, so the
//! focus core can be driven in tests with a fake one.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use media_server::codec::{CodecKind, OpusConfig};
use media_server::mixer::{
    Direction, ParticipantId, ParticipantSettings, RoomId, RoomSettings, TonePattern,
};
use media_server::MediaServer;

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
        })
    }
}

/// Why the media server did not take a control change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MediaControlError {
    /// Its command queue is full for now: try again shortly.
    #[error("the mixer's command queue is full")]
    Busy,
    /// The leg or room is gone: nothing to retry.
    #[error("no such leg or room")]
    Gone,
}

impl From<media_server::MediaError> for MediaControlError {
    fn from(e: media_server::MediaError) -> Self {
        match e {
            media_server::MediaError::Busy => MediaControlError::Busy,
            _ => MediaControlError::Gone,
        }
    }
}

/// Calls whose leg state the mixer could not take yet (its queue was
/// full), retried shortly; and how often that happened.
#[derive(Debug, Default)]
pub(crate) struct MediaRetry {
    pub(crate) pending: std::collections::HashSet<crate::call::DialogId>,
    pub(crate) at: Option<std::time::Instant>,
    /// Control changes the mixer refused as busy (each is retried), for
    /// the log.
    pub(crate) refusals: sip::limits::OncePerSecond,
}

/// How soon a refused change is tried again: about a mixer tick.
pub(crate) const MEDIA_RETRY: std::time::Duration = std::time::Duration::from_millis(5);

/// The operations the focus needs from a media server.
pub trait MediaPort: Send {
    /// Opens a mixing room for `max_size` participants, mixing the
    /// `talkers` loudest (None: the media server's default).
    fn open_room(&mut self, max_size: usize, talkers: Option<usize>) -> Result<RoomId, String>;
    /// Ends a room.
    fn close_room(&mut self, room: RoomId);
    /// Changes how many of the loudest talkers an open room mixes.
    fn set_max_talkers(&mut self, room: RoomId, talkers: usize);
    /// Opens a leg in a room; returns its id and local RTP address.
    fn join(
        &mut self,
        room: RoomId,
        spec: &MediaSpec,
    ) -> Result<(ParticipantId, SocketAddr), String>;
    /// Binds a port for an offer whose codec the answer will settle; returns a token and the address.
    fn reserve(&mut self) -> Result<(u64, SocketAddr), String>;
    /// Opens a leg on a reserved port.
    fn join_reserved(
        &mut self,
        room: RoomId,
        token: u64,
        spec: &MediaSpec,
    ) -> Result<(ParticipantId, SocketAddr), String>;
    /// Gives a reservation back.
    fn release(&mut self, token: u64);
    /// Closes a leg.
    fn leave(&mut self, leg: ParticipantId);
    /// Changes direction (hold, resume).
    fn set_direction(&mut self, leg: ParticipantId, d: Direction);
    /// Sets where to send.
    fn set_remote(&mut self, leg: ParticipantId, remote: SocketAddr);
    /// Mutes or unmutes.
    fn set_mute(&mut self, leg: ParticipantId, on: bool) -> Result<(), MediaControlError>;
    /// Deafens (the participant hears silence) or undeafens.
    fn set_deaf(&mut self, leg: ParticipantId, on: bool) -> Result<(), MediaControlError>;
    /// Input gain (what the room hears of it) and output gain (what it hears), in dB.
    fn set_gain(
        &mut self,
        leg: ParticipantId,
        input_db: f32,
        output_db: f32,
    ) -> Result<(), MediaControlError>;
    /// RTP packets received on the leg so far.
    fn packets_in(&self, leg: ParticipantId) -> u64;
    /// Plays a tone pattern to a whole room.
    fn room_tone(&mut self, room: RoomId, pattern: TonePattern);
    /// Plays a tone pattern to one leg.
    fn tone(&mut self, leg: ParticipantId, pattern: TonePattern);
}

/// The real media server behind the port.
pub struct MediaServerPort {
    server: Arc<MediaServer>,
    reservations: std::collections::HashMap<u64, media_server::Reservation>,
    next: u64,
}

impl MediaServerPort {
    /// A port onto `server`.
    pub fn new(server: Arc<MediaServer>) -> Self {
        Self {
            server,
            reservations: Default::default(),
            next: 1,
        }
    }
}

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

fn participant_settings(spec: &MediaSpec) -> ParticipantSettings {
    let mut s = ParticipantSettings::new(spec.codec);
    s.payload_type = spec.pt;
    s.dtmf_payload_type = spec.dtmf_pt;
    s.dtmf_clock = spec.dtmf_clock;
    s.opus = spec.opus;
    s.remote = spec.remote;
    s.audio_level_ext = spec.audio_level_ext;
    s.csrc_level_ext = spec.csrc_level_ext;
    s.direction = spec.direction;
    s
}

impl MediaPort for MediaServerPort {
    fn open_room(&mut self, max_size: usize, talkers: Option<usize>) -> Result<RoomId, String> {
        let defaults = RoomSettings::default();
        self.server
            .create_room(RoomSettings {
                capacity: max_size,
                max_talkers: talkers.unwrap_or(defaults.max_talkers),
                ..defaults
            })
            .map_err(|e| e.to_string())
    }
    fn close_room(&mut self, room: RoomId) {
        logged("end room", self.server.end_room(room));
    }
    fn set_max_talkers(&mut self, room: RoomId, talkers: usize) {
        logged("set talkers", self.server.set_max_talkers(room, talkers));
    }
    fn join(
        &mut self,
        room: RoomId,
        spec: &MediaSpec,
    ) -> Result<(ParticipantId, SocketAddr), String> {
        let ep = self
            .server
            .add_participant(room, participant_settings(spec), spec.rtcp_mux)
            .map_err(|e| e.to_string())?;
        Ok((ep.id, ep.rtp))
    }
    fn reserve(&mut self) -> Result<(u64, SocketAddr), String> {
        // Offers we make are not muxed: a separate RTCP port always works.
        let r = self.server.reserve(false).map_err(|e| e.to_string())?;
        let addr = r.local_addr().ok_or("reserved socket has no address")?;
        let token = self.next;
        self.next += 1;
        self.reservations.insert(token, r);
        Ok((token, addr))
    }
    fn join_reserved(
        &mut self,
        room: RoomId,
        token: u64,
        spec: &MediaSpec,
    ) -> Result<(ParticipantId, SocketAddr), String> {
        let r = self
            .reservations
            .remove(&token)
            .ok_or("no such reservation")?;
        let ep = self
            .server
            .attach(room, participant_settings(spec), r)
            .map_err(|e| e.to_string())?;
        Ok((ep.id, ep.rtp))
    }
    fn release(&mut self, token: u64) {
        if let Some(r) = self.reservations.remove(&token) {
            self.server.release(r);
        }
    }
    fn leave(&mut self, leg: ParticipantId) {
        logged("remove leg", self.server.remove_participant(leg));
    }
    fn set_direction(&mut self, leg: ParticipantId, d: Direction) {
        logged("set direction", self.server.set_direction(leg, d));
    }
    fn set_remote(&mut self, leg: ParticipantId, remote: SocketAddr) {
        logged("set remote", self.server.set_remote(leg, remote));
    }
    fn set_mute(&mut self, leg: ParticipantId, on: bool) -> Result<(), MediaControlError> {
        Ok(self.server.set_mute(leg, on)?)
    }
    fn set_deaf(&mut self, leg: ParticipantId, on: bool) -> Result<(), MediaControlError> {
        Ok(self.server.set_deaf(leg, on)?)
    }
    fn set_gain(
        &mut self,
        leg: ParticipantId,
        input_db: f32,
        output_db: f32,
    ) -> Result<(), MediaControlError> {
        Ok(self.server.set_gain(leg, input_db, output_db)?)
    }
    fn room_tone(&mut self, room: RoomId, pattern: TonePattern) {
        logged("room tone", self.server.room_tone(room, pattern));
    }
    fn tone(&mut self, leg: ParticipantId, pattern: TonePattern) {
        logged("tone", self.server.tone(leg, pattern));
    }
    fn packets_in(&self, leg: ParticipantId) -> u64 {
        self.server
            .stats(leg)
            .map(|(s, _)| s.packets_in.load(Ordering::Relaxed))
            .unwrap_or(0)
    }
}

/// A control change the focus does not retry (a tone, a leg's removal):
/// its failure is logged, never silent.
fn logged(what: &str, r: Result<(), media_server::MediaError>) {
    if let Err(e) = r {
        tracing::warn!(what, error = %e, "media control change not applied");
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
