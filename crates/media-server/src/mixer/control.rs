//! What crosses between the control side and the mixer thread: settings,
//! commands (in), events and returned allocations (out). Everything a
//! command carries was allocated on the control side.

use std::net::SocketAddr;
use std::time::Instant;

use crate::codec::{CodecKind, OpusConfig};
use crate::jitter::MAX_PAYLOAD;

use super::participant::Participant;
use super::room::{CodecGroup, Room};

/// A room, unique within a media server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(pub u32);

/// A participant, unique within a media server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId(pub u32);

/// Media direction from the participant's point of view (RFC 3264 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Sends and receives.
    SendRecv,
    /// Sends only (it holds us; it is still heard).
    SendOnly,
    /// Receives only (it put itself on hold towards us).
    RecvOnly,
    /// Neither.
    Inactive,
}

impl Direction {
    /// True when the participant's audio reaches the mix.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }
    /// True when the participant is sent the mix.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

/// Per-room settings.
#[derive(Debug, Clone)]
pub struct RoomSettings {
    /// How many of the loudest talkers are mixed.
    pub max_talkers: usize,
    /// Participants the room reserves room for (no allocation when they join).
    pub capacity: usize,
    /// Level above which a participant counts as talking, in dBov.
    pub talk_threshold_dbov: f32,
    /// Opus settings for the room's shared encoders.
    pub opus: OpusConfig,
}

impl Default for RoomSettings {
    fn default() -> Self {
        Self {
            max_talkers: 3,
            capacity: 64,
            talk_threshold_dbov: -45.0,
            opus: OpusConfig::default(),
        }
    }
}

/// Most talkers a room can mix at once.
pub const MAX_TALKERS: usize = 8;

/// Per-participant media settings, from the negotiated session.
#[derive(Debug, Clone)]
pub struct ParticipantSettings {
    /// The codec.
    pub codec: CodecKind,
    /// Its negotiated payload type.
    pub payload_type: u8,
    /// The telephone-event payload type, if negotiated.
    pub dtmf_payload_type: Option<u8>,
    /// telephone-event's RTP clock (may differ from the codec's: an Opus
    /// phone often sends events at 8 kHz).
    pub dtmf_clock: u32,
    /// The RFC 6464 header extension id the participant sends, if negotiated.
    pub audio_level_ext: Option<u8>,
    /// The RFC 6465 header extension id for CSRC levels we send, if negotiated.
    pub csrc_level_ext: Option<u8>,
    /// Where to send until the first packet arrives (then symmetric RTP latches).
    pub remote: Option<SocketAddr>,
    /// Direction.
    pub direction: Direction,
    /// Opus settings for this participant's own encoder.
    pub opus: OpusConfig,
    /// Largest jitter buffer delay, in milliseconds.
    pub max_jitter_ms: u32,
    /// SRTP keys (None: plain RTP).
    pub srtp: Option<crate::io::SrtpKeys>,
}

impl ParticipantSettings {
    /// Settings for a codec on its static (or a common dynamic) payload type.
    pub fn new(codec: CodecKind) -> Self {
        Self {
            codec,
            payload_type: codec.static_payload_type().unwrap_or(111),
            dtmf_payload_type: Some(101),
            dtmf_clock: codec.rtp_clock(),
            audio_level_ext: None,
            csrc_level_ext: None,
            remote: None,
            direction: Direction::SendRecv,
            opus: OpusConfig::default(),
            max_jitter_ms: 200,
            srtp: None,
        }
    }
}

/// One received RTP packet, as the network task hands it to the mixer.
#[derive(Clone, Copy)]
pub struct InPacket {
    /// Sequence number.
    pub seq: u16,
    /// Timestamp.
    pub timestamp: u32,
    /// Payload type.
    pub payload_type: u8,
    /// SSRC.
    pub ssrc: u32,
    /// RFC 6464 level (0 = loudest, 127 = silence) if the extension was present.
    pub audio_level: Option<u8>,
    /// Where it came from (symmetric RTP latches to it).
    pub source: SocketAddr,
    /// When it came off the socket.
    pub arrival: Instant,
    /// Payload length.
    pub len: u16,
    /// Payload bytes.
    pub payload: [u8; MAX_PAYLOAD],
}

/// A command for the mixer thread, read at the top of each tick.
pub enum Command {
    /// Opens a room.
    AddRoom(Box<Room>),
    /// Ends a room: its participants are returned.
    EndRoom(RoomId),
    /// Adds a codec's shared encoders to a room (before its first
    /// participant of that codec).
    AddCodec(RoomId, Box<CodecGroup>),
    /// Adds a participant to a room.
    AddParticipant(RoomId, Box<Participant>),
    /// Removes a participant.
    Remove(ParticipantId),
    /// Mutes or unmutes (a muted participant is not mixed).
    Mute(ParticipantId, bool),
    /// Deafens or undeafens (a deaf participant hears silence).
    Deaf(ParticipantId, bool),
    /// Input and output gain in dB.
    Gain(ParticipantId, f32, f32),
    /// Changes the media direction (hold, resume).
    Direction(ParticipantId, Direction),
    /// Sets where to send (from a new SDP); latching may override it later.
    Remote(ParticipantId, SocketAddr),
    /// Plays a tone pattern to the whole room (entry and exit chimes).
    RoomTone(RoomId, super::TonePattern),
    /// Plays a tone pattern to one participant only.
    Tone(ParticipantId, super::TonePattern),
    /// How many of the loudest talkers a room mixes, from the next tick.
    MaxTalkers(RoomId, usize),
    /// Starts recording a room's full mix (its Opus encoders are there).
    Record(RoomId, Box<crate::recording::RecordTap>),
    /// Stops recording a room: its tap is returned.
    StopRecording(RoomId),
}

/// Something the mixer reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MixerEvent {
    /// A participant started talking.
    TalkingStarted(RoomId, ParticipantId),
    /// A participant stopped talking.
    TalkingStopped(RoomId, ParticipantId),
    /// A DTMF key press (RFC 4733).
    Dtmf(RoomId, ParticipantId, char, u32),
    /// The room could not take the participant (full, or unknown room).
    Rejected(RoomId, ParticipantId),
    /// A tick took longer than its period.
    Overrun {
        /// How long the tick took, in microseconds.
        micros: u32,
    },
}

/// Allocations handed back to the control side to be freed off the mixer thread.
pub enum Garbage {
    /// A removed participant.
    Participant(Box<Participant>),
    /// An ended room.
    Room(Box<Room>),
    /// Shared encoders a room did not need.
    Codec(Box<CodecGroup>),
    /// A recording's tap: once it is dropped the writer ends the file.
    Recorder(Box<crate::recording::RecordTap>),
}
