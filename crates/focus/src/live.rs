//! What moderators see and do to live calls: the participants of a room,
//! mute (muted-via-focus), deaf, role and gain, mute-all and removal.
//! Asked by the policy server's gRPC API through the io loop.

use std::time::Instant;

use crate::call::{Call, CallState, DialogId, Role};
use crate::core::Focus;
use crate::media::{LegControl, LegId, MediaCommand, MediaControlError, MEDIA_RETRY};
use crate::room::Room;

pub(crate) use control::{ParticipantInfo, ParticipantUpdate};

const GAIN_RANGE: std::ops::RangeInclusive<f32> = -60.0..=24.0;

impl Room {
    /// True when the room hears this call: not muted by anyone, not a
    /// listener, past the PIN, and not kept out by floor control.
    pub(crate) fn is_heard(&self, id: &DialogId, c: &Call) -> bool {
        !(c.self_muted
            || c.muted_by_focus
            || c.control.role == Role::Listener
            || c.control.in_lobby()
            || self.floor_blocks(&id.local_tag, c.control.role))
    }

    /// RFC 4575 status of a call's endpoint.
    pub(crate) fn endpoint_status(
        &self,
        id: &DialogId,
        c: &Call,
    ) -> conference_info::EndpointStatus {
        use conference_info::EndpointStatus as S;
        match c.state {
            CallState::Ringing => S::DialingIn,
            _ if c.control.in_lobby() => S::Pending,
            _ if c.on_hold => S::OnHold,
            _ if !self.is_heard(id, c) => S::MutedViaFocus,
            _ => S::Connected,
        }
    }

    /// The participant behind one of its calls, as moderators see it.
    pub(crate) fn participant_info(&self, id: &DialogId) -> Option<ParticipantInfo> {
        let c = self.calls.get(id)?;
        Some(ParticipantInfo {
            id: id.local_tag.clone(),
            uri: c.aor(),
            display_name: sip::header::NameAddr::parse(&c.dialog.remote_party)
                .ok()
                .and_then(|n| n.display)
                .unwrap_or_default(),
            status: self.endpoint_status(id, c).as_str().to_owned(),
            muted: c.muted_by_focus,
            deaf: c.control.deaf,
            role: c.control.role,
            input_gain_db: c.control.input_gain_db,
            output_gain_db: c.volume_db,
        })
    }

    /// Its participants, by URI then id.
    pub(crate) fn participants(&self) -> Vec<ParticipantInfo> {
        let mut out: Vec<ParticipantInfo> = self
            .calls
            .keys()
            .filter_map(|id| self.participant_info(id))
            .collect();
        out.sort_by(|a, b| a.uri.cmp(&b.uri).then(a.id.cmp(&b.id)));
        out
    }

    /// True when the room exists for moderators: it has calls open, or a policy.
    pub(crate) fn is_known(&self) -> bool {
        self.media.is_some() || self.policy.is_some()
    }

    /// The call of participant `tag`.
    pub(crate) fn find_call(&self, tag: &str) -> Option<DialogId> {
        self.calls.keys().find(|k| k.local_tag == tag).cloned()
    }

    /// Changes participant `tag`; its call, and whether it was made a
    /// moderator. None when there is no such participant.
    fn update_participant(
        &mut self,
        tag: &str,
        update: &ParticipantUpdate,
    ) -> Option<(DialogId, bool)> {
        let key = self.find_call(tag)?;
        let call = self.calls.get_mut(&key)?;
        if let Some(m) = update.muted {
            call.muted_by_focus = m;
        }
        if let Some(d) = update.deaf {
            call.control.deaf = d;
        }
        if let Some(r) = update.role {
            call.control.role = r;
        }
        if let Some(g) = update.input_gain_db {
            call.control.input_gain_db = g.clamp(*GAIN_RANGE.start(), *GAIN_RANGE.end());
        }
        if let Some(g) = update.output_gain_db {
            call.volume_db = g.clamp(*GAIN_RANGE.start(), *GAIN_RANGE.end());
        }
        Some((key, update.role == Some(Role::Moderator)))
    }

    /// Mutes (or unmutes) everyone but the moderators; the calls it changed.
    fn mute_all(&mut self, on: bool) -> Vec<DialogId> {
        let mut changed = Vec::new();
        for (id, c) in self.calls.iter_mut() {
            if c.control.role != Role::Moderator && c.muted_by_focus != on {
                c.muted_by_focus = on;
                changed.push(id.clone());
            }
        }
        changed
    }
}

impl Focus {
    /// Tells the mixer what this call's state means for its leg: only what
    /// changed since it was last told. A change the mixer refuses as busy
    /// (its command queue full, as in "mute all" in a big room) comes back
    /// as [`crate::media::MediaInput::Refused`] and is retried about a tick
    /// later, so the mixer ends up with what the NOTIFYs and the API say.
    pub(crate) fn apply_media(&mut self, id: &DialogId) {
        let Some(room) = self.call_rooms.get(id).and_then(|r| self.rooms.get(r)) else {
            return;
        };
        let Some(c) = room.calls.get(id) else { return };
        let Some(leg) = c.leg else { return };
        let mute = !room.is_heard(id, c);
        let deaf = c.control.deaf || c.control.in_lobby();
        let gain = (c.control.input_gain_db, c.volume_db);
        let mut applied = c.control.applied;
        let mute_changed = applied.mute.replace(mute) != Some(mute);
        let deaf_changed = applied.deaf.replace(deaf) != Some(deaf);
        let gain_changed = applied.gain.replace(gain) != Some(gain);
        if let Some(c) = self.call_mut(id) {
            c.control.applied = applied;
        }
        let mut send = |change| self.media.send(MediaCommand::Control { leg, change });
        if mute_changed {
            send(LegControl::Mute(mute));
        }
        if deaf_changed {
            send(LegControl::Deaf(deaf));
        }
        if gain_changed {
            send(LegControl::Gain {
                input_db: gain.0,
                output_db: gain.1,
            });
        }
    }

    /// The mixer did not take a change: a busy one is forgotten as applied
    /// and retried shortly; a gone leg needs nothing more.
    pub(crate) fn media_refused(
        &mut self,
        now: Instant,
        leg: LegId,
        change: LegControl,
        error: MediaControlError,
    ) {
        if error != MediaControlError::Busy {
            return;
        }
        let Some(id) = self.by_leg.get(&leg).cloned() else {
            return;
        };
        let Some(c) = self.call_mut(&id) else {
            return;
        };
        let applied = &mut c.control.applied;
        match change {
            LegControl::Mute(_) => applied.mute = None,
            LegControl::Deaf(_) => applied.deaf = None,
            LegControl::Gain { .. } => applied.gain = None,
        }
        let retry = &mut self.media.retry;
        retry.refusals.note();
        retry.pending.insert(id);
        retry.at.get_or_insert(now + MEDIA_RETRY);
    }

    /// Tries again what the mixer refused as busy; reports the refusals at
    /// most once a second, with how many since the last report.
    pub(crate) fn retry_media(&mut self, now: Instant) {
        let retry = &mut self.media.retry;
        if retry.at.is_none_or(|t| t > now) {
            return;
        }
        retry.at = None;
        if let Some(refused) = retry.refusals.poll(now) {
            tracing::warn!(
                refused,
                pending = retry.pending.len(),
                "the mixer's command queue was full; changes are being retried"
            );
        }
        let pending: Vec<DialogId> = retry.pending.drain().collect();
        for id in pending {
            self.apply_media(&id);
        }
    }

    /// Re-applies every call of a room; those whose status changed are
    /// announced to subscribers and watchers.
    pub(crate) fn apply_room_media(&mut self, now: Instant, room: &str) {
        for id in self.room_call_ids(room) {
            self.apply_media(&id);
            let now_status = self.participant_info(&id).map(|p| p.status);
            let told = self.call(&id).and_then(|c| c.control.announced.clone());
            if told.is_some() && now_status != told {
                self.call_changed(now, &id);
            }
        }
    }

    /// The participant behind a call, as moderators see it.
    pub(crate) fn participant_info(&self, id: &DialogId) -> Option<ParticipantInfo> {
        self.rooms
            .get(self.call_rooms.get(id)?)?
            .participant_info(id)
    }

    /// True when `room` exists: it has calls open, or a policy.
    pub(crate) fn room_known(&self, room: &str) -> bool {
        self.rooms.get(room).is_some_and(Room::is_known)
    }

    /// The call of participant `id` in `room`.
    pub(crate) fn find_call(&self, room: &str, id: &str) -> Option<DialogId> {
        self.rooms.get(room)?.find_call(id)
    }

    /// The participants of a room; None when the room has no calls and no policy.
    pub fn participants(&self, room: &str) -> Option<Vec<ParticipantInfo>> {
        let r = self.rooms.get(room)?;
        let out = r.participants();
        (!out.is_empty() || r.is_known()).then_some(out)
    }

    /// Every room with calls open, sorted by name.
    pub fn live_rooms(&self) -> Vec<crate::policy::LiveRoom> {
        let mut live: Vec<crate::policy::LiveRoom> = self
            .rooms
            .iter()
            .filter(|(_, r)| !r.calls.is_empty())
            .map(|(name, r)| crate::policy::LiveRoom {
                name: name.clone(),
                participants: r.calls.len(),
                has_policy: r.policy.is_some(),
            })
            .collect();
        live.sort_by(|a, b| a.name.cmp(&b.name));
        live
    }

    /// Changes a participant; the mixer applies it from its next tick and
    /// subscribers are told. None when there is no such participant.
    pub fn update_participant(
        &mut self,
        now: Instant,
        room: &str,
        id: &str,
        update: ParticipantUpdate,
    ) -> Option<ParticipantInfo> {
        let (key, made_moderator) = self.rooms.get_mut(room)?.update_participant(id, &update)?;
        self.apply_media(&key);
        self.call_changed(now, &key);
        if made_moderator {
            self.open_lobby(now, room);
        }
        self.process_events(now);
        self.participant_info(&key)
    }

    /// Mutes (or unmutes) everyone in the room but its moderators; returns
    /// how many participants it changed.
    pub fn mute_all(&mut self, now: Instant, room: &str, on: bool) -> Option<usize> {
        let r = self.rooms.get_mut(room).filter(|r| r.is_known())?;
        let changed = r.mute_all(on);
        for id in &changed {
            self.apply_media(id);
            self.call_changed(now, id);
        }
        self.process_events(now);
        Some(changed.len())
    }

    /// Removes a participant with BYE; false when there is no such call.
    pub fn remove(&mut self, now: Instant, room: &str, id: &str) -> bool {
        let Some(key) = self.find_call(room, id) else {
            return false;
        };
        self.end_call(now, &key, Some(("SIP;cause=200", "removed by a moderator")));
        self.process_events(now);
        true
    }
}
