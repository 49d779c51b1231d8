//! Floor control modelled on BFCP (RFC 8855's model, RFC 8855 §5 states):
//! in a room with a floor policy only the floor holder and moderators are
//! mixed. Participants request and release the floor (over the API, or
//! with `*5`); under `first-come` a free floor goes to the first in the
//! queue, under `moderator-granted` a moderator grants or denies it.

use std::collections::VecDeque;
use std::time::Instant;

use crate::call::{DialogId, Role};
use crate::core::Focus;
use crate::room::Room;
use crate::room_events::RoomEventKind;

pub(crate) use control::{ControlError, FloorAction, FloorInfo, FloorPolicy};

#[derive(Debug, Default)]
pub(crate) struct Floor {
    holder: Option<String>,
    queue: VecDeque<String>,
}

impl Room {
    fn floor_policy(&self) -> FloorPolicy {
        self.policy.as_ref().map(|p| p.floor).unwrap_or_default()
    }

    /// Its floor now.
    pub(crate) fn floor_info(&self) -> FloorInfo {
        FloorInfo {
            policy: self.floor_policy(),
            holder: self.floor.holder.clone(),
            queue: self.floor.queue.iter().cloned().collect(),
        }
    }

    /// True when floor control keeps this participant out of the mix.
    pub(crate) fn floor_blocks(&self, tag: &str, role: Role) -> bool {
        self.floor_policy() != FloorPolicy::None
            && role != Role::Moderator
            && self.floor.holder.as_deref() != Some(tag)
    }

    /// True when participant `tag` holds the floor or waits for it.
    fn floor_involves(&self, tag: &str) -> bool {
        self.floor.holder.as_deref() == Some(tag) || self.floor.queue.iter().any(|q| q == tag)
    }

    /// Applies a floor action for participant `tag`.
    fn floor_action(&mut self, tag: &str, action: FloorAction) -> Result<(), ControlError> {
        if self.find_call(tag).is_none() {
            return Err(ControlError::NoParticipant);
        }
        let policy = self.floor_policy();
        if policy == FloorPolicy::None {
            return Err(ControlError::NoFloorControl);
        }
        let f = &mut self.floor;
        let queued = f.queue.iter().position(|q| q == tag);
        let holds = f.holder.as_deref() == Some(tag);
        match action {
            FloorAction::Request if holds || queued.is_some() => {}
            FloorAction::Request => {
                if policy == FloorPolicy::FirstCome && f.holder.is_none() {
                    f.holder = Some(tag.to_owned());
                } else {
                    f.queue.push_back(tag.to_owned());
                }
            }
            FloorAction::Release | FloorAction::Deny => {
                if holds {
                    f.holder = None;
                } else if let Some(i) = queued {
                    f.queue.remove(i);
                } else {
                    return Err(ControlError::NotInvolved);
                }
            }
            FloorAction::Grant => {
                if let Some(i) = queued {
                    f.queue.remove(i);
                }
                f.holder = Some(tag.to_owned());
            }
        }
        if policy == FloorPolicy::FirstCome && f.holder.is_none() {
            f.holder = f.queue.pop_front();
        }
        Ok(())
    }

    /// Participant `tag` left: it gives up the floor and its place in
    /// line. True when the floor changed.
    fn floor_left(&mut self, tag: &str) -> bool {
        let first_come = self.floor_policy() == FloorPolicy::FirstCome;
        let f = &mut self.floor;
        let held = f.holder.as_deref() == Some(tag);
        let queued = f.queue.len();
        f.queue.retain(|q| q != tag);
        if !held && f.queue.len() == queued {
            return false;
        }
        if held {
            f.holder = if first_come {
                f.queue.pop_front()
            } else {
                None
            };
        }
        true
    }
}

impl Focus {
    /// The floor of a room now.
    pub fn floor_info(&self, room: &str) -> FloorInfo {
        self.rooms
            .get(room)
            .map(Room::floor_info)
            .unwrap_or_default()
    }

    /// Applies a floor action for participant `id` of `room`.
    pub fn floor_action(
        &mut self,
        now: Instant,
        room: &str,
        id: &str,
        action: FloorAction,
    ) -> Result<FloorInfo, ControlError> {
        let r = self
            .rooms
            .get_mut(room)
            .filter(|r| r.is_known())
            .ok_or(ControlError::NoRoom)?;
        r.floor_action(id, action)?;
        self.floor_changed(now, room);
        Ok(self.floor_info(room))
    }

    /// `*5`: asks for the floor, or gives it back when held or asked for.
    pub(crate) fn toggle_floor(&mut self, now: Instant, id: &DialogId) {
        let Some(room) = self.call(id).map(|c| c.room.clone()) else {
            return;
        };
        let involved = self
            .rooms
            .get(&room)
            .is_some_and(|r| r.floor_involves(&id.local_tag));
        let action = if involved {
            FloorAction::Release
        } else {
            FloorAction::Request
        };
        if let Err(e) = self.floor_action(now, &room, &id.local_tag, action) {
            tracing::debug!(call_id = %id.call_id, error = %e, "floor key ignored");
        }
    }

    /// A participant left: it gives up the floor and its place in line.
    pub(crate) fn floor_left(&mut self, now: Instant, room: &str, tag: &str) {
        if self.rooms.get_mut(room).is_some_and(|r| r.floor_left(tag)) {
            self.floor_changed(now, room);
        }
    }

    /// The room's floor policy may have changed: none clears the floor.
    pub(crate) fn floor_policy_changed(&mut self, now: Instant, room: &str) {
        if let Some(r) = self.rooms.get_mut(room) {
            if r.floor_policy() == FloorPolicy::None {
                r.floor = Floor::default();
            }
        }
        self.floor_changed(now, room);
    }

    /// Re-applies who is mixed in the room and tells watchers.
    fn floor_changed(&mut self, now: Instant, room: &str) {
        self.apply_room_media(now, room);
        let info = self.floor_info(room);
        self.emit(room, RoomEventKind::Floor(info));
    }
}
