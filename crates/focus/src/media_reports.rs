//! What the focus does with the media side's reports: bound ports join the
//! pool, a leg that could not open ends its call, refused changes are
//! retried, key presses and talking reach the call and the room, and RTP
//! counters feed the RTP timeout.

use std::time::Instant;

use crate::core::Focus;
use crate::media::MediaInput;
use crate::room_events::RoomEventKind;

impl Focus {
    pub(crate) fn handle_media(&mut self, now: Instant, report: MediaInput) {
        match report {
            MediaInput::Reserved { port, addr } => self.media.reserved(port, addr),
            MediaInput::ReserveFailed { count, error } => {
                tracing::warn!(count, %error, "no RTP ports for calls to come");
                self.media.reserve_failed(now, count);
            }
            MediaInput::RoomFailed { room, error } => {
                tracing::warn!(%error, "a mixer room did not open");
                // Its legs fail to join and their calls end; the next
                // caller opens the room again.
                for r in self.rooms.values_mut() {
                    if r.media == Some(room) {
                        r.media = None;
                    }
                }
            }
            MediaInput::JoinFailed { leg, error } => {
                if let Some(id) = self.by_leg.remove(&leg) {
                    tracing::warn!(call_id = %id.call_id, %error, "media leg did not open: ending the call");
                    if let Some(c) = self.call_mut(&id) {
                        c.leg = None;
                    }
                    self.end_call(now, &id, Some(("SIP;cause=503", "media unavailable")));
                }
            }
            MediaInput::Refused { leg, change, error } => {
                self.media_refused(now, leg, change, error)
            }
            MediaInput::Dtmf { leg, digit } => {
                if let Some(id) = self.by_leg.get(&leg).cloned() {
                    self.dtmf(now, &id, digit);
                }
            }
            MediaInput::Talking { leg, talking } => {
                let Some(id) = self.by_leg.get(&leg) else {
                    return;
                };
                let Some(c) = self.call(id) else { return };
                let (room, tag) = (c.room.clone(), id.local_tag.clone());
                self.emit(&room, RoomEventKind::Talking { id: tag, talking });
            }
            MediaInput::RtpActivity(counts) => {
                for (leg, seen) in counts {
                    let Some(id) = self.by_leg.get(&leg).cloned() else {
                        continue;
                    };
                    let Some(c) = self.call_mut(&id) else {
                        continue;
                    };
                    if seen != c.rtp_seen {
                        c.rtp_seen = seen;
                        c.rtp_changed = now;
                    }
                }
            }
        }
        self.process_events(now);
    }
}
