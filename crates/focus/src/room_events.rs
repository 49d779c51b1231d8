//! What happens in rooms, as a stream for the control API's watchers: the
//! same changes the conference-info NOTIFYs carry (join, leave, hold,
//! mute, role), plus talking and floor changes that NOTIFYs leave out.
//! The core queues them; they leave as [`crate::Output::Event`].

use std::time::Instant;

use crate::call::DialogId;
use crate::core::Focus;
use crate::floor::FloorInfo;
use crate::live::ParticipantInfo;

/// Most events kept when nobody drains them (oldest dropped first).
const MAX_QUEUED: usize = 65_536;

/// One change in one room.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomEvent {
    /// The room's name.
    pub room: String,
    /// What changed.
    pub kind: RoomEventKind,
}

/// What changed in a room.
#[derive(Debug, Clone, PartialEq)]
pub enum RoomEventKind {
    /// A participant is in the room (answered, or dialed out and connected).
    Joined(ParticipantInfo),
    /// A participant's state changed (hold, mute, role, deaf, gain, PIN accepted).
    Updated(ParticipantInfo),
    /// A participant left; its last state.
    Left(ParticipantInfo),
    /// A participant started (true) or stopped talking.
    Talking {
        /// The participant's id.
        id: String,
        /// Talking now.
        talking: bool,
    },
    /// The floor changed hands or its queue changed.
    Floor(FloorInfo),
    /// A hand went up or down: the raised hands now, first raised first.
    Hands(Vec<String>),
    /// Recording started (true) or stopped.
    Recording(bool),
    /// The room's policy records it from its first call, and its mixer
    /// room just opened: whoever keeps the files should start a recording.
    RecordingWanted,
    /// The room's policy changed (lock, subject, floor policy...).
    Policy(crate::policy::RoomPolicy),
    /// The room was deleted.
    Deleted,
}

impl Focus {
    /// The next room event, oldest first.
    pub(crate) fn poll_room_event(&mut self) -> Option<RoomEvent> {
        self.room_events.pop_front()
    }

    pub(crate) fn emit(&mut self, room: &str, kind: RoomEventKind) {
        if self.room_events.len() >= MAX_QUEUED {
            self.room_events.pop_front();
        }
        self.room_events.push_back(RoomEvent {
            room: room.to_owned(),
            kind,
        });
    }

    /// A call's participant changed: watchers hear Joined the first time,
    /// Updated after; NOTIFY subscribers are told too.
    pub(crate) fn call_changed(&mut self, now: Instant, id: &DialogId) {
        let Some(c) = self.call(id) else { return };
        let (room, who) = (c.room.clone(), c.aor());
        let first = c.control.announced.is_none();
        self.room_changed(now, &room, &who);
        if let Some(info) = self.participant_info(id) {
            if let Some(c) = self.call_mut(id) {
                c.control.announced = Some(info.status.clone());
            }
            let kind = if first {
                RoomEventKind::Joined(info)
            } else {
                RoomEventKind::Updated(info)
            };
            self.emit(&room, kind);
        }
    }
}
