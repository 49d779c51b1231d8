//! Recording a room: the focus decides (a live room, not already being
//! recorded), tells the media side where the mix goes, plays everyone the
//! recording tone, and tells subscribers (the conference-info document's
//! `<confab:recording>`) and watchers. The file itself is the caller's: it
//! started the writer whose tap comes in with the command.

use std::time::Instant;

use control::ControlError;
use media_server::mixer::TonePattern;
use media_server::recording::RecordTap;

use crate::core::Focus;
use crate::media::MediaCommand;
use crate::room_events::RoomEventKind;

impl Focus {
    /// Starts recording `room`'s mix into `tap`. The room must have calls
    /// (a mixer room); dropping the tap on refusal ends its empty file.
    pub fn start_recording(
        &mut self,
        now: Instant,
        room: &str,
        tap: Box<RecordTap>,
    ) -> Result<(), ControlError> {
        let r = self
            .rooms
            .get_mut(room)
            .filter(|r| r.is_known())
            .ok_or(ControlError::NoRoom)?;
        let media = r.media.ok_or_else(|| {
            ControlError::Refused(format!("conference {room} has no calls to record"))
        })?;
        if r.recording {
            return Err(ControlError::Refused(format!(
                "conference {room} is already being recorded"
            )));
        }
        r.recording = true;
        self.media.send(MediaCommand::Record { room: media, tap });
        self.recording_changed(now, room, media, true);
        Ok(())
    }

    /// Stops recording `room`.
    pub fn stop_recording(&mut self, now: Instant, room: &str) -> Result<(), ControlError> {
        let r = self
            .rooms
            .get_mut(room)
            .filter(|r| r.is_known())
            .ok_or(ControlError::NoRoom)?;
        let media = r.media.filter(|_| r.recording).ok_or_else(|| {
            ControlError::Refused(format!("conference {room} is not being recorded"))
        })?;
        r.recording = false;
        self.media.send(MediaCommand::StopRecording { room: media });
        self.recording_changed(now, room, media, false);
        Ok(())
    }

    /// Everyone in the room hears the tone whatever the chime setting
    /// (they are told they are recorded); subscribers and watchers are told.
    fn recording_changed(
        &mut self,
        now: Instant,
        room: &str,
        media: crate::media::MediaRoomId,
        on: bool,
    ) {
        let pattern = if on {
            TonePattern::recording_started()
        } else {
            TonePattern::recording_stopped()
        };
        self.media.send(MediaCommand::RoomTone {
            room: media,
            pattern,
        });
        tracing::info!(room, recording = on, "recording");
        self.room_policy_changed(now, room);
        self.emit(room, RoomEventKind::Recording(on));
    }

    /// The room's mixer room closed (its last call ended): the recording
    /// ended with it (the media side dropped the tap).
    pub(crate) fn recording_closed(&mut self, room: &str) {
        if let Some(r) = self.rooms.get_mut(room).filter(|r| r.recording) {
            r.recording = false;
            self.emit(room, RoomEventKind::Recording(false));
        }
    }

    /// True while `room` is recorded.
    pub(crate) fn is_recording(&self, room: &str) -> bool {
        self.rooms.get(room).is_some_and(|r| r.recording)
    }
}
