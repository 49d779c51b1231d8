//! Raised hands: a participant asks to speak (`*9`, or a moderator's
//! client over the API) and waits in line until it lowers its hand, a
//! moderator lowers it (or all hands), or it leaves. The line is the
//! room's own state; every change goes to watchers as the whole line and
//! to subscribers in the conference-info document's confab extension.

use std::collections::VecDeque;
use std::time::Instant;

use control::{ControlError, HandAction};

use crate::call::DialogId;
use crate::core::Focus;
use crate::room::Room;
use crate::room_events::RoomEventKind;

/// A room's raised hands, first raised first (participant ids).
#[derive(Debug, Default)]
pub(crate) struct Hands(VecDeque<String>);

impl Hands {
    /// Applies an action; true when the line changed.
    fn apply(&mut self, action: &HandAction) -> bool {
        match action {
            HandAction::Raise { participant } if self.is_raised(participant) => false,
            HandAction::Raise { participant } => {
                self.0.push_back(participant.clone());
                true
            }
            HandAction::Lower { participant } => self.lower(participant),
            HandAction::LowerAll => {
                let had = !self.0.is_empty();
                self.0.clear();
                had
            }
        }
    }

    fn lower(&mut self, participant: &str) -> bool {
        let before = self.0.len();
        self.0.retain(|p| p != participant);
        self.0.len() != before
    }

    pub(crate) fn is_raised(&self, participant: &str) -> bool {
        self.0.iter().any(|p| p == participant)
    }

    /// The line, first raised first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl Room {
    /// Its raised hands, first raised first.
    pub(crate) fn raised_hands(&self) -> Vec<String> {
        self.hands.iter().map(str::to_owned).collect()
    }

    /// Raises or lowers hands; the calls whose hand moved, None when the
    /// line is as it was.
    fn hand_action(&mut self, action: HandAction) -> Result<Option<Vec<DialogId>>, ControlError> {
        let moved: Vec<DialogId> = match &action {
            HandAction::Raise { participant } | HandAction::Lower { participant } => {
                vec![self
                    .find_call(participant)
                    .ok_or(ControlError::NoParticipant)?]
            }
            HandAction::LowerAll => self
                .hands
                .iter()
                .filter_map(|p| self.find_call(p))
                .collect(),
        };
        Ok(self.hands.apply(&action).then_some(moved))
    }
}

impl Focus {
    /// The raised hands of a room, first raised first; None when there is
    /// no such room.
    pub fn raised_hands(&self, room: &str) -> Option<Vec<String>> {
        let r = self.rooms.get(room).filter(|r| r.is_known())?;
        Some(r.raised_hands())
    }

    /// Raises or lowers hands in a room; the line after it.
    pub fn hand_action(
        &mut self,
        now: Instant,
        room: &str,
        action: HandAction,
    ) -> Result<Vec<String>, ControlError> {
        let r = self
            .rooms
            .get_mut(room)
            .filter(|r| r.is_known())
            .ok_or(ControlError::NoRoom)?;
        if let Some(moved) = r.hand_action(action)? {
            self.hands_changed(now, room, &moved);
        }
        Ok(self.raised_hands(room).unwrap_or_default())
    }

    /// A room's line, whether or not it is still known.
    fn line_of(&self, room: &str) -> Vec<String> {
        self.rooms
            .get(room)
            .map(Room::raised_hands)
            .unwrap_or_default()
    }

    /// `*9`: raises the caller's hand, or lowers it when raised.
    pub(crate) fn toggle_hand(&mut self, now: Instant, id: &DialogId) {
        let Some(room) = self.call(id).map(|c| c.room.clone()) else {
            return;
        };
        let participant = id.local_tag.clone();
        let raised = self
            .rooms
            .get(&room)
            .is_some_and(|r| r.hands.is_raised(&participant));
        let action = if raised {
            HandAction::Lower { participant }
        } else {
            HandAction::Raise { participant }
        };
        tracing::info!(call_id = %id.call_id, raised = !raised, "hand by DTMF");
        if let Err(e) = self.hand_action(now, &room, action) {
            tracing::debug!(call_id = %id.call_id, error = %e, "hand key ignored");
        }
    }

    /// A participant left: its hand goes down with it. Its user is
    /// announced to subscribers by the leave itself.
    pub(crate) fn hand_left(&mut self, room: &str, participant: &str) {
        let lowered = self
            .rooms
            .get_mut(room)
            .is_some_and(|r| r.hands.lower(participant));
        if lowered {
            let line = self.line_of(room);
            self.emit(room, RoomEventKind::Hands(line));
        }
    }

    /// Tells watchers the new line, and subscribers the users whose hand
    /// moved (the document carries the whole line with any change).
    fn hands_changed(&mut self, now: Instant, room: &str, changed: &[DialogId]) {
        for id in changed {
            if let Some(c) = self.call(id) {
                let who = c.aor();
                self.room_changed(now, room, &who);
            }
        }
        let line = self.line_of(room);
        self.emit(room, RoomEventKind::Hands(line));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raise(p: &str) -> HandAction {
        HandAction::Raise {
            participant: p.into(),
        }
    }

    #[test]
    fn hands_keep_their_place_in_line() {
        let mut h = Hands::default();
        assert!(h.apply(&raise("a")));
        assert!(h.apply(&raise("b")));
        assert!(!h.apply(&raise("a")), "raising twice keeps the first place");
        assert!(h.apply(&raise("c")));
        assert!(h.apply(&HandAction::Lower {
            participant: "b".into()
        }));
        assert!(!h.apply(&HandAction::Lower {
            participant: "b".into()
        }));
        assert_eq!(h.iter().collect::<Vec<_>>(), ["a", "c"]);
        assert!(h.apply(&HandAction::LowerAll));
        assert!(!h.apply(&HandAction::LowerAll));
        assert_eq!(h.iter().count(), 0);
    }
}
