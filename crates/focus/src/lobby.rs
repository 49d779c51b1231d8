//! Rooms that start with their moderator (the API's `auto_create: false`,
//! ConfBridge's "wait for the leader"): callers who arrive before any
//! moderator wait out of the mix, hearing a tone, and show as `pending`;
//! the first moderator in opens the room for all of them.

use std::time::Instant;

use media_server::mixer::TonePattern;

use crate::call::{DialogId, Role};
use crate::core::Focus;
use crate::media::MediaCommand;

impl Focus {
    fn moderator_present(&self, room: &str) -> bool {
        self.room_calls(room)
            .any(|(_, c)| c.control.role == Role::Moderator && !c.control.in_lobby())
    }

    /// Holds an admitted call in the lobby when its room waits for a
    /// moderator that is not there yet; true when it now waits.
    pub(crate) fn hold_in_lobby(&mut self, id: &DialogId) -> bool {
        let Some(c) = self.call(id) else {
            return false;
        };
        let room = c.room.clone();
        let waits = self.policy(&room).is_some_and(|p| p.wait_for_moderator)
            && c.control.role != Role::Moderator
            && !c.dialed_out
            && !self.moderator_present(&room);
        if !waits {
            return false;
        }
        let leg = self.call_mut(id).and_then(|c| {
            c.control.waiting = true;
            c.leg
        });
        self.apply_media(id);
        if let Some(leg) = leg {
            self.media.send(MediaCommand::Tone {
                leg,
                pattern: TonePattern::waiting(),
            });
        }
        true
    }

    /// A moderator is in (or the room no longer waits): everyone waiting joins.
    pub(crate) fn open_lobby(&mut self, now: Instant, room: &str) {
        let waiting: Vec<DialogId> = self
            .room_calls(room)
            .filter(|(_, c)| c.control.waiting)
            .map(|(k, _)| k.clone())
            .collect();
        for id in waiting {
            if let Some(c) = self.call_mut(&id) {
                c.control.waiting = false;
            }
            self.apply_media(&id);
            self.chime(&id, TonePattern::entry());
            self.call_changed(now, &id);
        }
    }
}
