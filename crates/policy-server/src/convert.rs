//! The control vocabulary in protobuf, both ways, and control errors as
//! gRPC statuses: the one place where they meet.

use control::{ControlError, FloorInfo, FloorPolicy, ParticipantInfo, Role, SrtpMode};
use tonic::Status;

use crate::pb;

/// A participant's role in the API.
pub fn role(r: Role) -> pb::ParticipantRole {
    match r {
        Role::Moderator => pb::ParticipantRole::Moderator,
        Role::Participant => pb::ParticipantRole::Participant,
        Role::Listener => pb::ParticipantRole::Listener,
    }
}

/// A role from the API; None for an unspecified or unknown one.
pub fn role_from_pb(v: i32) -> Option<Role> {
    match pb::ParticipantRole::try_from(v) {
        Ok(pb::ParticipantRole::Moderator) => Some(Role::Moderator),
        Ok(pb::ParticipantRole::Participant) => Some(Role::Participant),
        Ok(pb::ParticipantRole::Listener) => Some(Role::Listener),
        Ok(pb::ParticipantRole::Unspecified) | Err(_) => None,
    }
}

/// A participant in the API.
pub fn participant(p: ParticipantInfo) -> pb::Participant {
    pb::Participant {
        id: p.id,
        uri: p.uri,
        display_name: p.display_name,
        status: p.status,
        muted: p.muted,
        role: role(p.role) as i32,
        deaf: p.deaf,
        input_gain_db: p.input_gain_db,
        output_gain_db: p.output_gain_db,
    }
}

/// A floor policy in the API.
pub fn floor_policy(f: FloorPolicy) -> pb::FloorPolicy {
    match f {
        FloorPolicy::None => pb::FloorPolicy::None,
        FloorPolicy::ModeratorGranted => pb::FloorPolicy::ModeratorGranted,
        FloorPolicy::FirstCome => pb::FloorPolicy::FirstCome,
    }
}

/// A floor policy from the API (unspecified is none).
pub fn floor_policy_from_pb(v: i32) -> Result<FloorPolicy, Status> {
    match pb::FloorPolicy::try_from(v) {
        Ok(pb::FloorPolicy::Unspecified | pb::FloorPolicy::None) => Ok(FloorPolicy::None),
        Ok(pb::FloorPolicy::ModeratorGranted) => Ok(FloorPolicy::ModeratorGranted),
        Ok(pb::FloorPolicy::FirstCome) => Ok(FloorPolicy::FirstCome),
        Err(_) => Err(Status::invalid_argument(
            "floor_policy: FLOOR_POLICY_NONE, FLOOR_POLICY_MODERATOR_GRANTED or FLOOR_POLICY_FIRST_COME",
        )),
    }
}

/// A room's SRTP mode in the API (None: the server's).
pub fn srtp_mode(m: Option<SrtpMode>) -> pb::SrtpMode {
    match m {
        None => pb::SrtpMode::Unspecified,
        Some(SrtpMode::Off) => pb::SrtpMode::Off,
        Some(SrtpMode::Optional) => pb::SrtpMode::Optional,
        Some(SrtpMode::Required) => pb::SrtpMode::Required,
    }
}

/// A room's SRTP mode from the API (unspecified: the server's).
pub fn srtp_mode_from_pb(v: i32) -> Result<Option<SrtpMode>, Status> {
    match pb::SrtpMode::try_from(v) {
        Ok(pb::SrtpMode::Unspecified) => Ok(None),
        Ok(pb::SrtpMode::Off) => Ok(Some(SrtpMode::Off)),
        Ok(pb::SrtpMode::Optional) => Ok(Some(SrtpMode::Optional)),
        Ok(pb::SrtpMode::Required) => Ok(Some(SrtpMode::Required)),
        Err(_) => Err(Status::invalid_argument(
            "srtp: SRTP_MODE_UNSPECIFIED, SRTP_MODE_OFF, SRTP_MODE_OPTIONAL or SRTP_MODE_REQUIRED",
        )),
    }
}

/// A room's floor in the API.
pub fn floor(f: FloorInfo) -> pb::Floor {
    pb::Floor {
        policy: floor_policy(f.policy) as i32,
        holder: f.holder.unwrap_or_default(),
        queue: f.queue,
    }
}

/// A room's raised hands in the API.
pub fn hands(participants: Vec<String>) -> pb::RaisedHands {
    pb::RaisedHands { participants }
}

/// A recording in the API.
pub fn recording(r: control::RecordingInfo) -> pb::Recording {
    pb::Recording {
        id: r.id,
        conference: r.room,
        started_at_ms: r.started_at_ms,
        ended_at_ms: r.ended_at_ms.unwrap_or(0),
        active: r.ended_at_ms.is_none(),
        duration_ms: r.duration_ms,
        bytes: r.bytes,
        dropped_frames: r.dropped_frames,
    }
}

/// Why a control request failed, as a gRPC status naming the room and
/// participant it was about.
pub fn status(e: ControlError, room: &str, participant: &str) -> Status {
    match e {
        ControlError::NoRoom => Status::not_found(format!("no conference {room}")),
        ControlError::NoParticipant => {
            Status::not_found(format!("no participant {participant} in {room}"))
        }
        ControlError::NoRecording => Status::not_found(e.to_string()),
        ControlError::BadUri(_) => Status::invalid_argument(e.to_string()),
        ControlError::Unavailable => Status::unavailable(e.to_string()),
        ControlError::NotAllowed(_) => Status::permission_denied(e.to_string()),
        ControlError::RateLimited => Status::resource_exhausted(e.to_string()),
        ControlError::Unresolvable(_)
        | ControlError::NoFloorControl
        | ControlError::NotInvolved
        | ControlError::Refused(_) => Status::failed_precondition(e.to_string()),
    }
}
