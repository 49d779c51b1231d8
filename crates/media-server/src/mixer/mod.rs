//! The mixer: a sans-IO core that one dedicated thread ticks every 20 ms.
//!
//! A tick reads control commands from a bounded lock-free queue, then for
//! every room drains each participant's input ring into its jitter buffer,
//! decodes (or conceals) one frame, detects talkers, picks the N loudest,
//! mixes, encodes once per codec group plus once per talker (mix-minus),
//! and hands packets to each participant's [`PacketOut`]. Events leave by
//! another bounded queue; removed participants and rooms are handed back
//! through a third, so memory is freed off this thread. In steady state a
//! tick takes no lock, makes no allocation and no blocking call.

mod control;
mod participant;
mod room;
mod rtp_out;
mod talker_kit;
mod tone_player;

pub use control::{
    Command, Direction, Garbage, InPacket, MixerEvent, ParticipantId, ParticipantSettings, RoomId,
    RoomSettings, MAX_TALKERS,
};
pub use participant::{Participant, ParticipantStats};
pub use room::{CodecGroup, Room, RoomStats};
pub use talker_kit::{TalkerKit, KITS_PER_CODEC};
pub use tone_player::{TonePattern, MAX_SEGMENTS};

use std::net::SocketAddr;
use std::time::Instant;

/// The internal mix rate.
pub const MIX_RATE: u32 = 48_000;
/// Samples per 20 ms frame at the mix rate.
pub const FRAME: usize = 960;

/// Where a participant's packets go. The io layer implements it on a
/// non-blocking UDP socket; tests collect packets in memory.
pub trait PacketOut: Send {
    /// Sends one RTP packet without blocking; false if it could not be sent.
    fn send(&mut self, to: SocketAddr, packet: &[u8]) -> bool;
}

/// The mixer core.
pub struct Mixer {
    // Boxed on the control side; the tick moves only the pointer in and out.
    #[allow(clippy::vec_box)]
    rooms: Vec<Box<Room>>,
    commands: rtrb::Consumer<Command>,
    events: rtrb::Producer<MixerEvent>,
    garbage: rtrb::Producer<Garbage>,
    ticks: u64,
    dropped_events: u64,
}

impl Mixer {
    /// A mixer serving up to `max_rooms` rooms.
    pub fn new(
        max_rooms: usize,
        commands: rtrb::Consumer<Command>,
        events: rtrb::Producer<MixerEvent>,
        garbage: rtrb::Producer<Garbage>,
    ) -> Self {
        Self {
            rooms: Vec::with_capacity(max_rooms),
            commands,
            events,
            garbage,
            ticks: 0,
            dropped_events: 0,
        }
    }

    /// Ticks so far.
    pub fn ticks(&self) -> u64 {
        self.ticks
    }

    /// Rooms open.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// Participants in all rooms.
    pub fn participant_count(&self) -> usize {
        self.rooms.iter().map(|r| r.participants.len()).sum()
    }

    /// A room's counters.
    pub fn room_stats(&self, id: RoomId) -> Option<RoomStats> {
        self.rooms.iter().find(|r| r.id == id).map(|r| r.stats)
    }

    /// True when events or garbage wait for the pump.
    pub fn has_handoffs(&self) -> bool {
        self.events.slots() < self.events.buffer().capacity()
            || self.garbage.slots() < self.garbage.buffer().capacity()
    }

    /// Events that were dropped because their queue was full.
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events
    }

    /// One tick. `_now` is the tick's deadline (all timing inside comes from packet arrival times).
    pub fn tick(&mut self, _now: Instant) {
        while let Ok(cmd) = self.commands.pop() {
            self.apply(cmd);
        }
        let Self {
            rooms,
            events,
            dropped_events,
            ..
        } = self;
        let mut emit = |e: MixerEvent| {
            if events.push(e).is_err() {
                *dropped_events += 1;
            }
        };
        for room in rooms.iter_mut() {
            room.tick(&mut emit);
        }
        self.ticks += 1;
    }

    fn emit(&mut self, e: MixerEvent) {
        if self.events.push(e).is_err() {
            self.dropped_events += 1;
        }
    }

    fn give_back(&mut self, g: Garbage) {
        // If the return queue is full the value is dropped here: rare, and
        // only costs a deallocation on this thread.
        let _ = self.garbage.push(g);
    }

    fn find(&mut self, id: ParticipantId) -> Option<&mut Participant> {
        self.rooms
            .iter_mut()
            .flat_map(|r| r.participants.iter_mut())
            .find(|p| p.id == id)
            .map(|b| &mut **b)
    }

    fn apply(&mut self, cmd: Command) {
        match cmd {
            Command::AddRoom(room) => {
                if self.rooms.len() < self.rooms.capacity()
                    && !self.rooms.iter().any(|r| r.id == room.id)
                {
                    self.rooms.push(room);
                } else {
                    let id = room.id;
                    self.give_back(Garbage::Room(room));
                    self.emit(MixerEvent::Rejected(id, ParticipantId(0)));
                }
            }
            Command::EndRoom(id) => {
                if let Some(pos) = self.rooms.iter().position(|r| r.id == id) {
                    let room = self.rooms.swap_remove(pos);
                    self.give_back(Garbage::Room(room));
                }
            }
            Command::AddCodec(room_id, group) => {
                let spare = match self.rooms.iter_mut().find(|r| r.id == room_id) {
                    Some(room) => room.add_codec(group),
                    None => Some(group),
                };
                if let Some(g) = spare {
                    self.give_back(Garbage::Codec(g));
                }
            }
            Command::AddParticipant(room_id, p) => {
                let pid = p.id;
                match self.rooms.iter_mut().find(|r| r.id == room_id) {
                    Some(room) if room.participants.len() < room.participants.capacity() => {
                        room.admit(p)
                    }
                    _ => {
                        self.give_back(Garbage::Participant(p));
                        self.emit(MixerEvent::Rejected(room_id, pid));
                    }
                }
            }
            Command::Remove(id) => {
                let mut removed = None;
                for room in self.rooms.iter_mut() {
                    if let Some(pos) = room.participants.iter().position(|p| p.id == id) {
                        let p = room.dismiss(pos);
                        removed = Some((room.id, p));
                        break;
                    }
                }
                if let Some((room, p)) = removed {
                    if p.vad.talking {
                        self.emit(MixerEvent::TalkingStopped(room, id));
                    }
                    self.give_back(Garbage::Participant(p));
                }
            }
            Command::Mute(id, on) => {
                if let Some(p) = self.find(id) {
                    p.muted = on;
                }
            }
            Command::Deaf(id, on) => {
                if let Some(p) = self.find(id) {
                    p.deaf = on;
                }
            }
            Command::Gain(id, input_db, output_db) => {
                if let Some(p) = self.find(id) {
                    p.gain_in = db_to_linear(input_db);
                    p.gain_out = db_to_linear(output_db);
                }
            }
            Command::Direction(id, d) => {
                if let Some(p) = self.find(id) {
                    p.set_direction(d);
                }
            }
            Command::MaxTalkers(id, n) => {
                if let Some(room) = self.rooms.iter_mut().find(|r| r.id == id) {
                    room.settings.max_talkers = n.clamp(1, MAX_TALKERS);
                }
            }
            Command::RoomTone(id, pattern) => {
                if let Some(room) = self.rooms.iter_mut().find(|r| r.id == id) {
                    room.tone.play(pattern);
                }
            }
            Command::Tone(id, pattern) => {
                if let Some(p) = self.find(id) {
                    p.tone.play(pattern);
                }
            }
            Command::Record(id, tap) => match self.rooms.iter_mut().find(|r| r.id == id) {
                Some(room) => {
                    if let Some(old) = room.recorder.replace(tap) {
                        self.give_back(Garbage::Recorder(old));
                    }
                }
                None => self.give_back(Garbage::Recorder(tap)),
            },
            Command::StopRecording(id) => {
                if let Some(tap) = self
                    .rooms
                    .iter_mut()
                    .find(|r| r.id == id)
                    .and_then(|r| r.recorder.take())
                {
                    self.give_back(Garbage::Recorder(tap));
                }
            }
            Command::Remote(id, addr) => {
                if let Some(p) = self.find(id) {
                    p.remote = Some(addr);
                }
            }
        }
    }
}

fn db_to_linear(db: f32) -> f32 {
    if db == 0.0 {
        1.0
    } else {
        10f32.powf(db.clamp(-60.0, 24.0) / 20.0)
    }
}

#[cfg(test)]
mod tests;
