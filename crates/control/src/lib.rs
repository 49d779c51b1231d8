//! # control: the words the focus and the policy server share
//!
//! Roles, floor policy and state, what a moderator sees of a participant
//! and may change, a live room, and why a control request failed, as one
//! typed error. A leaf: no tokio, no protobuf. The focus speaks it; the
//! policy server converts it to and from its protobuf messages in one
//! place; the binary's bridge only wires the two together.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// A participant's role in its room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// Exempt from mute-all and floor control; may hold the floor at will.
    Moderator,
    /// Talks and listens.
    #[default]
    Participant,
    /// Listens only: never mixed.
    Listener,
}

impl Role {
    /// The RFC 4575 `roles` entry.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Moderator => "moderator",
            Role::Participant => "participant",
            Role::Listener => "listener",
        }
    }
}

/// How a room's floor is given (BFCP-style floor control).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FloorPolicy {
    /// No floor control: everyone may talk.
    #[default]
    None,
    /// Requests wait until a moderator grants them.
    ModeratorGranted,
    /// A free floor goes to the first request in line.
    FirstCome,
}

impl FloorPolicy {
    /// Its name where it is stored.
    pub fn as_str(self) -> &'static str {
        match self {
            FloorPolicy::None => "none",
            FloorPolicy::ModeratorGranted => "moderator-granted",
            FloorPolicy::FirstCome => "first-come",
        }
    }

    /// From its stored name; anything else is no floor control.
    pub fn parse(s: &str) -> Self {
        match s {
            "moderator-granted" => FloorPolicy::ModeratorGranted,
            "first-come" => FloorPolicy::FirstCome,
            _ => FloorPolicy::None,
        }
    }
}

/// Whether calls use SRTP (SDES keys, RFC 4568).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SrtpMode {
    /// Plain RTP only: `RTP/SAVP` offers get 488.
    Off,
    /// Either: an `RTP/SAVP` offer is answered with SRTP, `RTP/AVP` with RTP.
    #[default]
    Optional,
    /// SRTP only: `RTP/AVP` offers get 488, and dial-outs offer `RTP/SAVP`.
    Required,
}

impl SrtpMode {
    /// Its name where it is stored and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            SrtpMode::Off => "off",
            SrtpMode::Optional => "optional",
            SrtpMode::Required => "required",
        }
    }

    /// From its name; None for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "off" => Some(SrtpMode::Off),
            "optional" => Some(SrtpMode::Optional),
            "required" => Some(SrtpMode::Required),
            _ => None,
        }
    }
}

/// A room's floor as watchers see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FloorInfo {
    /// The room's floor policy.
    pub policy: FloorPolicy,
    /// Who holds the floor (participant id).
    pub holder: Option<String>,
    /// Who waits for it, first in line first.
    pub queue: Vec<String>,
}

/// What is asked of the floor, for one participant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloorAction {
    /// The participant asks for the floor.
    Request,
    /// The participant gives it back, or withdraws its request.
    Release,
    /// A moderator gives it the floor (taking it from the holder).
    Grant,
    /// A moderator refuses its request, or takes the floor back.
    Deny,
}

/// What is asked of a room's raised hands. A raised hand keeps its place
/// in line until it is lowered or its participant leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandAction {
    /// The participant raises its hand (last in line; no change if raised).
    Raise {
        /// The participant's id.
        participant: String,
    },
    /// The participant's hand goes down (no change if it was not raised).
    Lower {
        /// The participant's id.
        participant: String,
    },
    /// Every hand in the room goes down.
    LowerAll,
}

/// A participant as moderators see it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParticipantInfo {
    /// The focus's id for the call (our dialog tag).
    pub id: String,
    /// Address of record.
    pub uri: String,
    /// Display name from From.
    pub display_name: String,
    /// RFC 4575 endpoint status.
    pub status: String,
    /// Muted by a moderator.
    pub muted: bool,
    /// Hears silence.
    pub deaf: bool,
    /// Role in the room.
    pub role: Role,
    /// Gain on what the room hears of it, dB.
    pub input_gain_db: f32,
    /// Gain on what it hears, dB.
    pub output_gain_db: f32,
}

/// A moderator's change to a participant; None leaves a field alone.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ParticipantUpdate {
    /// Muted-via-focus.
    pub muted: Option<bool>,
    /// Hears silence.
    pub deaf: Option<bool>,
    /// Role.
    pub role: Option<Role>,
    /// Input gain, dB (clamped to -60..=24).
    pub input_gain_db: Option<f32>,
    /// Output gain, dB (clamped to -60..=24).
    pub output_gain_db: Option<f32>,
}

/// A room with calls open, as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveRoom {
    /// Room name.
    pub name: String,
    /// Its calls, in any state.
    pub participants: usize,
    /// It has a policy from the policy server; false for a room a caller
    /// made by dialling in, which ends with its last call.
    pub has_policy: bool,
}

/// A recording of a room's mix, as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordingInfo {
    /// Its id: the room and when it started (`standup-1765069200000`).
    pub id: String,
    /// The room recorded.
    pub room: String,
    /// When it started, milliseconds since the Unix epoch.
    pub started_at_ms: i64,
    /// When it ended; None while it goes on.
    pub ended_at_ms: Option<i64>,
    /// The audio's length so far, in milliseconds.
    pub duration_ms: u64,
    /// The Ogg Opus file's size so far.
    pub bytes: u64,
    /// 20 ms frames the writer could not keep up with (concealed gaps).
    pub dropped_frames: u64,
}

/// A room as a watcher first sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomSnapshot {
    /// Its participants.
    pub participants: Vec<ParticipantInfo>,
    /// Its floor.
    pub floor: FloorInfo,
    /// Participant ids with a hand raised, first raised first.
    pub hands: Vec<String>,
}

/// Why a control request was not carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// No such room.
    #[error("no such conference")]
    NoRoom,
    /// No such participant in the room.
    #[error("no such participant")]
    NoParticipant,
    /// A URI that cannot be dialled (not SIP, malformed).
    #[error("uri: {0}")]
    BadUri(String),
    /// A host name that does not resolve.
    #[error("cannot resolve {0}")]
    Unresolvable(String),
    /// The room has no floor control.
    #[error("the conference has no floor control")]
    NoFloorControl,
    /// Release or deny of a participant that neither holds nor waits for the floor.
    #[error("the participant neither holds nor waits for the floor")]
    NotInvolved,
    /// The request is valid but cannot be carried out now (why, for people).
    #[error("{0}")]
    Refused(String),
    /// The focus is not running.
    #[error("the focus is not running")]
    Unavailable,
    /// A dial-out target that the server's dial-out policy does not allow.
    #[error("dial-out to {0} is not allowed")]
    NotAllowed(String),
    /// Too many dial-outs from the room lately.
    #[error("too many dial-outs from this conference; try again in a minute")]
    RateLimited,
    /// No such recording.
    #[error("no such recording")]
    NoRecording,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_policy_names_round_trip_and_unknown_is_none() {
        for p in [
            FloorPolicy::None,
            FloorPolicy::ModeratorGranted,
            FloorPolicy::FirstCome,
        ] {
            assert_eq!(FloorPolicy::parse(p.as_str()), p);
        }
        assert_eq!(FloorPolicy::parse("chairman"), FloorPolicy::None);
    }
}
