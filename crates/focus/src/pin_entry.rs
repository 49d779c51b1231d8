//! PIN entry by DTMF (RFC 4733 digits from the media server). When a room
//! has a PIN or a moderator PIN, an answered caller is held out of the mix
//! and hears only a prompt until it keys the PIN and `#`: the moderator PIN
//! makes it a moderator, the PIN (or just `#` when the room has only a
//! moderator PIN) a participant. `*` starts over. Three wrong entries or
//! no entry in time end the call with BYE and a Reason.

use std::time::{Duration, Instant};

use media_server::mixer::TonePattern;

use crate::call::{DialogId, PinEntry, Role};
use crate::core::Focus;
use crate::media::MediaCommand;

/// How long a caller has to key the PIN.
const PIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Wrong entries before the call is ended.
const MAX_FAILURES: u8 = 3;
/// Longest PIN (the policy server allows 16 digits).
const MAX_DIGITS: usize = 16;

impl Focus {
    /// True when callers of `room` must key a PIN.
    pub(crate) fn room_wants_pin(&self, room: &str) -> bool {
        self.policy(room)
            .is_some_and(|p| p.pin.is_some() || p.moderator_pin.is_some())
    }

    /// Holds an answered call at the PIN prompt.
    pub(crate) fn start_pin_entry(&mut self, now: Instant, id: &DialogId) {
        let Some(c) = self.call_mut(id) else {
            return;
        };
        let deadline = now + PIN_TIMEOUT;
        c.control.pin = Some(PinEntry {
            digits: String::new(),
            failures: 0,
            deadline,
        });
        let leg = c.leg;
        self.timers
            .set(deadline, crate::timers::Timer::Pin(id.clone()));
        self.apply_media(id);
        if let Some(leg) = leg {
            self.media.send(MediaCommand::Tone {
                leg,
                pattern: TonePattern::pin_prompt(),
            });
        }
    }

    /// A digit from a caller at the PIN prompt.
    pub(crate) fn pin_digit(&mut self, now: Instant, id: &DialogId, digit: char) {
        let Some(c) = self.call_mut(id) else {
            return;
        };
        let Some(entry) = c.control.pin.as_mut() else {
            return;
        };
        match digit {
            '*' => entry.digits.clear(),
            '#' => {
                let keyed = std::mem::take(&mut entry.digits);
                let room = c.room.clone();
                match self.pin_role(&room, &keyed) {
                    Some(role) => self.admit_with_pin(now, id, role),
                    None => self.wrong_pin(now, id),
                }
            }
            d if d.is_ascii_digit() && entry.digits.len() < MAX_DIGITS => entry.digits.push(d),
            _ => {}
        }
    }

    /// The role a keyed PIN earns in `room`, None when it is wrong.
    fn pin_role(&self, room: &str, keyed: &str) -> Option<Role> {
        let p = self.policy(room)?;
        if p.moderator_pin.as_deref() == Some(keyed) {
            return Some(Role::Moderator);
        }
        match &p.pin {
            Some(pin) if pin == keyed => Some(Role::Participant),
            None if keyed.is_empty() => Some(Role::Participant),
            _ => None,
        }
    }

    fn admit_with_pin(&mut self, now: Instant, id: &DialogId, role: Role) {
        let Some(c) = self.call_mut(id) else {
            return;
        };
        c.control.pin = None;
        c.control.role = role;
        let room = c.room.clone();
        tracing::info!(call_id = %id.call_id, role = role.as_str(), "PIN accepted");
        if role == Role::Moderator {
            self.open_lobby(now, &room);
        } else if self.hold_in_lobby(id) {
            self.call_changed(now, id);
            return;
        }
        self.apply_media(id);
        self.chime(id, TonePattern::entry());
        self.call_changed(now, id);
    }

    fn wrong_pin(&mut self, now: Instant, id: &DialogId) {
        let Some(c) = self.call_mut(id) else {
            return;
        };
        let Some(entry) = c.control.pin.as_mut() else {
            return;
        };
        entry.failures += 1;
        tracing::info!(call_id = %id.call_id, failures = entry.failures, "wrong PIN");
        if entry.failures >= MAX_FAILURES {
            self.end_call(now, id, Some(("SIP;cause=403", "wrong PIN")));
            return;
        }
        if let Some(leg) = c.leg {
            self.media.send(MediaCommand::Tone {
                leg,
                pattern: TonePattern::wrong_pin(),
            });
        }
    }

    /// The PIN prompt's time is up for a call, if it is still at it.
    pub(crate) fn pin_timeout(&mut self, now: Instant, id: &DialogId) {
        let late = self
            .call(id)
            .and_then(|c| c.control.pin.as_ref())
            .is_some_and(|p| p.deadline <= now);
        if late {
            tracing::info!(call_id = %id.call_id, "no PIN in time");
            self.end_call(now, id, Some(("SIP;cause=408", "no PIN entered")));
        }
    }
}
