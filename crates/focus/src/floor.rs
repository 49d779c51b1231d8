//! Floor control modelled on BFCP (RFC 8855's model, RFC 8855 §5 states):
//! in a room with a floor policy only the floor holder and moderators are
//! mixed. Participants request and release the floor (over the API, or
//! with `*5`); under `first-come` a free floor goes to the first in the
//! queue, under `moderator-granted` a moderator grants or denies it.

use std::collections::VecDeque;
use std::time::Instant;

use crate::call::{DialogId, Role};
use crate::core::Focus;
use crate::room_events::RoomEventKind;

pub(crate) use control::{ControlError, FloorAction, FloorInfo, FloorPolicy};

#[derive(Debug, Default)]
pub(crate) struct Floor {
    holder: Option<String>,
    queue: VecDeque<String>,
}

impl Focus {
    fn floor_policy(&self, room: &str) -> FloorPolicy {
        self.policy(room).map(|p| p.floor).unwrap_or_default()
    }

    /// The floor of a room now.
    pub fn floor_info(&self, room: &str) -> FloorInfo {
        let f = self.rooms.get(room).map(|r| &r.floor);
        FloorInfo {
            policy: self.floor_policy(room),
            holder: f.and_then(|f| f.holder.clone()),
            queue: f
                .map(|f| f.queue.iter().cloned().collect())
                .unwrap_or_default(),
        }
    }

    /// True when floor control keeps this participant out of the mix.
    pub(crate) fn floor_blocks(&self, room: &str, tag: &str, role: Role) -> bool {
        self.floor_policy(room) != FloorPolicy::None
            && role != Role::Moderator
            && self.rooms.get(room).and_then(|r| r.floor.holder.as_deref()) != Some(tag)
    }

    /// Applies a floor action for participant `id` of `room`.
    pub fn floor_action(
        &mut self,
        now: Instant,
        room: &str,
        id: &str,
        action: FloorAction,
    ) -> Result<FloorInfo, ControlError> {
        if !self.room_known(room) {
            return Err(ControlError::NoRoom);
        }
        if self.find_call(room, id).is_none() {
            return Err(ControlError::NoParticipant);
        }
        let policy = self.floor_policy(room);
        if policy == FloorPolicy::None {
            return Err(ControlError::NoFloorControl);
        }
        let f = &mut self.room_entry(room).floor;
        let queued = f.queue.iter().position(|q| q == id);
        let holds = f.holder.as_deref() == Some(id);
        match action {
            FloorAction::Request if holds || queued.is_some() => {}
            FloorAction::Request => {
                if policy == FloorPolicy::FirstCome && f.holder.is_none() {
                    f.holder = Some(id.to_owned());
                } else {
                    f.queue.push_back(id.to_owned());
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
                f.holder = Some(id.to_owned());
            }
        }
        if policy == FloorPolicy::FirstCome && f.holder.is_none() {
            f.holder = f.queue.pop_front();
        }
        self.floor_changed(now, room);
        Ok(self.floor_info(room))
    }

    /// `*5`: asks for the floor, or gives it back when held or asked for.
    pub(crate) fn toggle_floor(&mut self, now: Instant, id: &DialogId) {
        let Some(room) = self.calls.get(id).map(|c| c.room.clone()) else {
            return;
        };
        let f = self.rooms.get(&room).map(|r| &r.floor);
        let involved = f.is_some_and(|f| {
            f.holder.as_deref() == Some(id.local_tag.as_str())
                || f.queue.iter().any(|q| *q == id.local_tag)
        });
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
        let first_come = self.floor_policy(room) == FloorPolicy::FirstCome;
        let Some(f) = self.rooms.get_mut(room).map(|r| &mut r.floor) else {
            return;
        };
        let held = f.holder.as_deref() == Some(tag);
        let queued = f.queue.len();
        f.queue.retain(|q| q != tag);
        if !held && f.queue.len() == queued {
            return;
        }
        if held {
            f.holder = if first_come {
                f.queue.pop_front()
            } else {
                None
            };
        }
        self.floor_changed(now, room);
    }

    /// The room's floor policy may have changed: none clears the floor.
    pub(crate) fn floor_policy_changed(&mut self, now: Instant, room: &str) {
        if self.floor_policy(room) == FloorPolicy::None {
            if let Some(r) = self.rooms.get_mut(room) {
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
