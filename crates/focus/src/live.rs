//! What moderators see and do to live calls: the participants of a room,
//! mute (muted-via-focus) and removal. Asked by the policy server's gRPC
//! API through the io loop.

use std::time::Instant;

use crate::call::CallState;
use crate::conference_doc::aor;
use crate::core::Focus;

/// A participant as moderators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

impl Focus {
    /// The participants of a room; None when the room has no calls and no policy.
    pub fn participants(&self, room: &str) -> Option<Vec<ParticipantInfo>> {
        let mut out: Vec<ParticipantInfo> = self
            .calls
            .iter()
            .filter(|(_, c)| c.room == room)
            .map(|(id, c)| ParticipantInfo {
                id: id.local_tag.clone(),
                uri: aor(&c.remote_party),
                display_name: sip::header::NameAddr::parse(&c.remote_party)
                    .ok()
                    .and_then(|n| n.display)
                    .unwrap_or_default(),
                status: match c.state {
                    CallState::Ringing => "dialing-in",
                    _ if c.on_hold => "on-hold",
                    _ if c.self_muted || c.muted_by_focus => "muted-via-focus",
                    _ => "connected",
                }
                .to_owned(),
                muted: c.muted_by_focus,
            })
            .collect();
        if out.is_empty() && !self.rooms.contains_key(room) && !self.policies.contains_key(room) {
            return None;
        }
        out.sort_by(|a, b| a.uri.cmp(&b.uri).then(a.id.cmp(&b.id)));
        Some(out)
    }

    /// Mutes or unmutes a participant for everyone (muted-via-focus); the
    /// mixer drops it from the next tick and subscribers are told.
    pub fn set_muted(
        &mut self,
        now: Instant,
        room: &str,
        id: &str,
        on: bool,
    ) -> Option<ParticipantInfo> {
        let key = self
            .calls
            .iter()
            .find(|(k, c)| c.room == room && k.local_tag == id)
            .map(|(k, _)| k.clone())?;
        let call = self.calls.get_mut(&key)?;
        call.muted_by_focus = on;
        let effective = on || call.self_muted;
        if let Some(leg) = call.leg {
            self.media.set_mute(leg, effective);
        }
        self.call_changed(now, &key);
        self.process_events(now);
        self.participants(room)?.into_iter().find(|p| p.id == id)
    }

    /// Removes a participant with BYE; false when there is no such call.
    pub fn remove(&mut self, now: Instant, room: &str, id: &str) -> bool {
        let Some(key) = self
            .calls
            .iter()
            .find(|(k, c)| c.room == room && k.local_tag == id)
            .map(|(k, _)| k.clone())
        else {
            return false;
        };
        self.end_call(now, &key, Some(("SIP;cause=200", "removed by a moderator")));
        self.process_events(now);
        true
    }
}
