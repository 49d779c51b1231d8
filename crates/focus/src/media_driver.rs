//! The media edge: applies the core's [`MediaCommand`]s to the real media
//! server, and turns what comes back (failures, bound ports, mixer events,
//! packet counters) into [`MediaInput`]s. It keeps the only map between the
//! focus's names for rooms, legs and ports and the media server's.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use media_server::mixer::{MixerEvent, ParticipantId, ParticipantSettings, RoomId, RoomSettings};
use media_server::{MediaError, MediaServer, Reservation};

use crate::media::{
    LegControl, LegId, MediaCommand, MediaControlError, MediaInput, MediaRoomId, MediaSpec,
    PortToken,
};

/// The real media server behind the focus.
pub struct MediaDriver {
    server: Arc<MediaServer>,
    rooms: HashMap<MediaRoomId, RoomId>,
    legs: HashMap<LegId, ParticipantId>,
    by_participant: HashMap<ParticipantId, LegId>,
    ports: HashMap<PortToken, Reservation>,
    next_port: u64,
    /// Where ended calls' records go, with their media counters.
    records: Option<tokio::sync::mpsc::UnboundedSender<crate::CallRecord>>,
}

impl MediaDriver {
    /// A driver for `server`.
    pub fn new(server: Arc<MediaServer>) -> Self {
        Self {
            server,
            rooms: HashMap::new(),
            legs: HashMap::new(),
            by_participant: HashMap::new(),
            ports: HashMap::new(),
            next_port: 1,
            records: None,
        }
    }

    /// Sends each ended call's record, with its media counters, to `tx`.
    pub fn with_records(
        mut self,
        tx: Option<tokio::sync::mpsc::UnboundedSender<crate::CallRecord>>,
    ) -> Self {
        self.records = tx;
        self
    }

    /// A call's record gets the media server's counters for its leg.
    fn call_ended(&self, leg: Option<LegId>, mut record: crate::CallRecord) {
        let Some(tx) = &self.records else { return };
        let stats = leg
            .and_then(|l| self.legs.get(&l))
            .and_then(|id| self.server.stats(*id));
        record.media = stats.map(|(p, e)| crate::MediaCounts {
            packets_in: p.packets_in.load(Ordering::Relaxed),
            packets_out: p.packets_out.load(Ordering::Relaxed),
            lost: p.lost.load(Ordering::Relaxed),
            peer_loss_percent: e.peer_fraction_lost.load(Ordering::Relaxed) as f64 * 100.0 / 256.0,
            peer_jitter: e.peer_jitter.load(Ordering::Relaxed),
        });
        let _ = tx.send(record);
    }

    /// Applies one command; what the focus must hear of it goes into `back`.
    pub fn apply(&mut self, cmd: MediaCommand, back: &mut Vec<MediaInput>) {
        match cmd {
            MediaCommand::Reserve { count } => self.reserve(count, back),
            MediaCommand::OpenRoom {
                room,
                capacity,
                talkers,
            } => {
                let defaults = RoomSettings::default();
                let settings = RoomSettings {
                    capacity,
                    max_talkers: talkers.unwrap_or(defaults.max_talkers),
                    ..defaults
                };
                match self.server.create_room(settings) {
                    Ok(id) => {
                        self.rooms.insert(room, id);
                    }
                    Err(e) => back.push(MediaInput::RoomFailed {
                        room,
                        error: failure("open room", &e),
                    }),
                }
            }
            MediaCommand::CloseRoom { room } => {
                if let Some(id) = self.rooms.remove(&room) {
                    logged("end room", self.server.end_room(id));
                }
            }
            MediaCommand::SetMaxTalkers { room, talkers } => {
                if let Some(&id) = self.rooms.get(&room) {
                    logged("set talkers", self.server.set_max_talkers(id, talkers));
                }
            }
            MediaCommand::Join {
                leg,
                room,
                port,
                spec,
            } => {
                if let Err(error) = self.join(leg, room, port, &spec) {
                    back.push(MediaInput::JoinFailed { leg, error });
                }
            }
            MediaCommand::Release { port } => {
                if let Some(r) = self.ports.remove(&port) {
                    self.server.release(r);
                }
            }
            MediaCommand::CallEnded { leg, record } => self.call_ended(leg, *record),
            MediaCommand::Leave { leg } => {
                if let Some(id) = self.legs.remove(&leg) {
                    self.by_participant.remove(&id);
                    logged("remove leg", self.server.remove_participant(id));
                }
            }
            MediaCommand::SetDirection { leg, direction } => {
                if let Some(&id) = self.legs.get(&leg) {
                    logged("set direction", self.server.set_direction(id, direction));
                }
            }
            MediaCommand::SetRemote { leg, remote } => {
                if let Some(&id) = self.legs.get(&leg) {
                    logged("set remote", self.server.set_remote(id, remote));
                }
            }
            MediaCommand::Control { leg, change } => {
                let Some(&id) = self.legs.get(&leg) else {
                    return;
                };
                let r = match change {
                    LegControl::Mute(on) => self.server.set_mute(id, on),
                    LegControl::Deaf(on) => self.server.set_deaf(id, on),
                    LegControl::Gain {
                        input_db,
                        output_db,
                    } => self.server.set_gain(id, input_db, output_db),
                };
                if let Err(e) = r {
                    back.push(MediaInput::Refused {
                        leg,
                        change,
                        error: MediaControlError::from(&e),
                    });
                }
            }
            MediaCommand::RoomTone { room, pattern } => {
                if let Some(&id) = self.rooms.get(&room) {
                    logged("room tone", self.server.room_tone(id, pattern));
                }
            }
            MediaCommand::Record { room, tap } => match self.rooms.get(&room) {
                Some(&id) => logged("record", self.server.record(id, *tap)),
                // The room closed meanwhile: dropping the tap ends the file.
                None => tracing::debug!(?room, "no media room to record"),
            },
            MediaCommand::StopRecording { room } => {
                if let Some(&id) = self.rooms.get(&room) {
                    logged("stop recording", self.server.stop_recording(id));
                }
            }
            MediaCommand::Tone { leg, pattern } => {
                if let Some(&id) = self.legs.get(&leg) {
                    logged("tone", self.server.tone(id, pattern));
                }
            }
        }
    }

    /// Binds port pairs with a separate RTCP port each: a leg that muxes
    /// RTCP gives its RTCP port back when it joins.
    fn reserve(&mut self, count: usize, back: &mut Vec<MediaInput>) {
        for done in 0..count {
            let bound = self.server.reserve(false);
            let r = match bound {
                Ok(r) => r,
                Err(e) => {
                    back.push(MediaInput::ReserveFailed {
                        count: count - done,
                        error: failure("reserve ports", &e),
                    });
                    return;
                }
            };
            let Some(addr) = r.local_addr() else {
                self.server.release(r);
                back.push(MediaInput::ReserveFailed {
                    count: count - done,
                    error: MediaControlError::Failed,
                });
                return;
            };
            let port = PortToken(self.next_port);
            self.next_port += 1;
            self.ports.insert(port, r);
            back.push(MediaInput::Reserved { port, addr });
        }
    }

    fn join(
        &mut self,
        leg: LegId,
        room: MediaRoomId,
        port: PortToken,
        spec: &MediaSpec,
    ) -> Result<(), MediaControlError> {
        let r = self.ports.remove(&port).ok_or(MediaControlError::Gone)?;
        let Some(&room) = self.rooms.get(&room) else {
            self.server.release(r);
            return Err(MediaControlError::Gone);
        };
        let r = if spec.rtcp_mux { r.muxed() } else { r };
        let ep = self
            .server
            .attach(room, participant_settings(spec), r)
            .map_err(|e| failure("open leg", &e))?;
        self.legs.insert(leg, ep.id);
        self.by_participant.insert(ep.id, leg);
        Ok(())
    }

    /// A mixer event the focus acts on, in the focus's names.
    pub fn event(&self, ev: &MixerEvent) -> Option<MediaInput> {
        let leg = |id: &ParticipantId| self.by_participant.get(id).copied();
        match ev {
            MixerEvent::Dtmf(_, id, digit, _) => Some(MediaInput::Dtmf {
                leg: leg(id)?,
                digit: *digit,
            }),
            MixerEvent::TalkingStarted(_, id) => Some(MediaInput::Talking {
                leg: leg(id)?,
                talking: true,
            }),
            MixerEvent::TalkingStopped(_, id) => Some(MediaInput::Talking {
                leg: leg(id)?,
                talking: false,
            }),
            _ => None,
        }
    }

    /// Packets received so far on every leg, for the focus's RTP timeouts.
    pub fn activity(&self) -> MediaInput {
        let counts = self
            .legs
            .iter()
            .map(|(leg, id)| {
                let n = self
                    .server
                    .stats(*id)
                    .map(|(s, _)| s.packets_in.load(Ordering::Relaxed))
                    .unwrap_or(0);
                (*leg, n)
            })
            .collect();
        MediaInput::RtpActivity(counts)
    }
}

fn participant_settings(spec: &MediaSpec) -> ParticipantSettings {
    let mut s = ParticipantSettings::new(spec.codec);
    s.payload_type = spec.pt;
    s.dtmf_payload_type = spec.dtmf_pt;
    s.dtmf_clock = spec.dtmf_clock;
    s.opus = spec.opus;
    s.remote = spec.remote;
    s.audio_level_ext = spec.audio_level_ext;
    s.csrc_level_ext = spec.csrc_level_ext;
    s.direction = spec.direction;
    s.srtp = spec.srtp;
    s
}

/// A failure the focus hears of, logged here with its cause.
fn failure(what: &str, e: &MediaError) -> MediaControlError {
    tracing::warn!(what, error = %e, "media server refused");
    MediaControlError::from(e)
}

/// A change the focus does not retry (a tone, a leg's removal): its
/// failure is logged, never silent.
fn logged(what: &str, r: Result<(), MediaError>) {
    if let Err(e) = r {
        tracing::warn!(what, error = %e, "media control change not applied");
    }
}
