//! The media server's edge: sockets, threads and the control handle.
//! [`MediaServer`] opens RTP endpoints from a port range, spreads their
//! receiving over a few receive threads that poll once per tick, runs one
//! OS thread per mixer for ticking, and passes control to the mixers
//! through their command rings.

mod mixer_thread;
mod receiver;
mod rx_thread;
mod secure;
mod send_queue;
mod totals;

pub use mixer_thread::{MixerThreadStats, TICK_BUCKETS_US};
pub use receiver::EndpointStats;
pub use totals::MediaTotals;

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use thiserror::Error;
use tokio::sync::broadcast;

use crate::codec::{CodecKind, OpusConfig};
use crate::mixer::{
    CodecGroup, Command, Direction, Mixer, MixerEvent, Participant, ParticipantId,
    ParticipantSettings, ParticipantStats, Room, RoomId, RoomSettings,
};
use receiver::{ReceiverConfig, RtpReceiver, UdpOut};
use rx_thread::RxCommand;
pub use secure::{SrtpKeys, SrtpOut};

/// Media server settings.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// Address RTP sockets bind to.
    pub bind_ip: IpAddr,
    /// First port of the RTP range (even).
    pub port_min: u16,
    /// Last port of the RTP range.
    pub port_max: u16,
    /// Mixer threads; rooms are spread over them.
    pub mixer_threads: usize,
    /// Receive threads; participants are spread over them.
    pub rx_threads: usize,
    /// Rooms one mixer thread serves at most.
    pub rooms_per_mixer: usize,
    /// Tick period (20 ms).
    pub tick: Duration,
    /// RTCP report interval.
    pub rtcp_interval: Duration,
    /// Packets buffered between a receive thread and its mixer.
    pub input_ring: usize,
    /// Participants on a mixer thread from which it leaves its sends to
    /// the receive threads (0: always). Below, it sends itself: a big
    /// room's sends take more than a tick on one thread, a small one's
    /// are cheaper without the hand-off.
    pub offload_sends_from: usize,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            bind_ip: IpAddr::from([0, 0, 0, 0]),
            port_min: 20000,
            port_max: 29999,
            mixer_threads: 1,
            rx_threads: 1,
            rooms_per_mixer: 1024,
            tick: Duration::from_millis(20),
            rtcp_interval: Duration::from_secs(5),
            // A pass of the receive thread brings a tick's packets or a few.
            input_ring: 16,
            // Sends take about a quarter of the tick by then (5 µs each on
            // loopback); below, the hand-off costs more than it spreads.
            offload_sends_from: 1000,
        }
    }
}

/// Control-side failures.
#[derive(Debug, Error)]
pub enum MediaError {
    /// No such room.
    #[error("no such room")]
    NoSuchRoom,
    /// No such participant.
    #[error("no such participant")]
    NoSuchParticipant,
    /// Every port in the range is taken.
    #[error("no free RTP port in the configured range")]
    NoPorts,
    /// The mixer's command queue is full.
    #[error("mixer is busy, try again")]
    Busy,
    /// Socket or thread failure.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// A codec could not be set up.
    #[error("codec: {0}")]
    Codec(#[from] crate::codec::CodecError),
}

/// Where a participant's media endpoint listens.
#[derive(Debug, Clone, Copy)]
pub struct EndpointInfo {
    /// The participant.
    pub id: ParticipantId,
    /// The local RTP address (put it in the SDP answer).
    pub rtp: SocketAddr,
    /// The local RTCP address when not muxed.
    pub rtcp: Option<SocketAddr>,
}

/// RTP (and RTCP) sockets bound for a participant not attached yet.
pub struct Reservation {
    rtp: std::net::UdpSocket,
    rtcp: Option<std::net::UdpSocket>,
    port: u16,
}

impl Reservation {
    /// The local RTP address.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.rtp.local_addr().ok()
    }

    /// The same port with RTCP on it (RFC 5761): the RTCP socket is closed.
    pub fn muxed(mut self) -> Self {
        self.rtcp = None;
        self
    }
}

struct MixerHandle {
    commands: Mutex<rtrb::Producer<Command>>,
    /// Whether the mixer hands its participants' sends to the receive threads.
    offloading: Arc<AtomicBool>,
    stats: Arc<MixerThreadStats>,
    ticker: std::thread::JoinHandle<()>,
    pump: std::thread::JoinHandle<()>,
}

/// A room as the control side knows it.
struct RoomEntry {
    mixer: usize,
    /// The room's Opus settings, for its shared Opus encoders.
    opus: OpusConfig,
    /// The codecs whose shared encoders the room has (by `CodecKind::index`).
    codecs: [bool; 4],
    /// Talker kits sent to the room, by codec.
    kits: [usize; 4],
}

struct Entry {
    mixer: usize,
    /// The receive thread that polls its ports.
    rx: usize,
    room: RoomId,
    port: u16,
    stats: Arc<ParticipantStats>,
    endpoint: Arc<EndpointStats>,
}

struct RxHandle {
    commands: std::sync::mpsc::Sender<RxCommand>,
    thread: std::thread::JoinHandle<()>,
}

/// The running media server.
pub struct MediaServer {
    config: MediaConfig,
    mixers: Vec<MixerHandle>,
    receivers: Vec<RxHandle>,
    stop: Arc<AtomicBool>,
    ports: Mutex<BTreeSet<u16>>,
    next_id: AtomicU32,
    rooms: Mutex<HashMap<RoomId, RoomEntry>>,
    participants: Mutex<HashMap<ParticipantId, Entry>>,
    events: broadcast::Sender<MixerEvent>,
    /// What participants that left had counted.
    retired: Mutex<MediaTotals>,
}

impl MediaServer {
    /// Starts the mixer threads.
    pub fn start(config: MediaConfig) -> Result<Self, MediaError> {
        let stop = Arc::new(AtomicBool::new(false));
        let (events, _) = broadcast::channel(4096);
        // Mixers tick and receive threads poll on one schedule.
        let epoch = std::time::Instant::now() + config.tick;
        let mut receivers = Vec::new();
        let mut senders = Vec::new();
        for i in 0..config.rx_threads.max(1) {
            let (tx, rx) = std::sync::mpsc::channel();
            let waiting = Arc::new(AtomicBool::new(false));
            let thread =
                rx_thread::spawn_rx(i, rx, epoch, config.tick, stop.clone(), waiting.clone())?;
            senders.push(send_queue::SendWake::new(thread.thread().clone(), waiting));
            receivers.push(RxHandle {
                commands: tx,
                thread,
            });
        }
        let mut mixers = Vec::new();
        for i in 0..config.mixer_threads.max(1) {
            let (cmd_tx, cmd_rx) = rtrb::RingBuffer::new(1024);
            let (ev_tx, ev_rx) = rtrb::RingBuffer::new(8192);
            let (g_tx, g_rx) = rtrb::RingBuffer::new(1024);
            let mixer = Mixer::new(config.rooms_per_mixer, cmd_rx, ev_tx, g_tx);
            let stats = Arc::new(MixerThreadStats::default());
            let pump = mixer_thread::spawn_pump(i, ev_rx, g_rx, events.clone(), stop.clone())?;
            let offload = send_queue::Offload::new(config.offload_sends_from);
            let offloading = offload.flag();
            let ticker = mixer_thread::spawn_mixer(
                i,
                mixer,
                epoch,
                config.tick,
                stop.clone(),
                stats.clone(),
                mixer_thread::Wakes {
                    pump: pump.thread().clone(),
                    offload,
                    senders: senders.clone(),
                },
            )?;
            mixers.push(MixerHandle {
                commands: Mutex::new(cmd_tx),
                offloading,
                stats,
                ticker,
                pump,
            });
        }
        Ok(Self {
            config,
            mixers,
            receivers,
            stop,
            ports: Mutex::new(BTreeSet::new()),
            next_id: AtomicU32::new(1),
            rooms: Mutex::new(HashMap::new()),
            participants: Mutex::new(HashMap::new()),
            events,
            retired: Mutex::new(MediaTotals::default()),
        })
    }

    /// Live events from every mixer.
    pub fn subscribe(&self) -> broadcast::Receiver<MixerEvent> {
        self.events.subscribe()
    }

    fn send(&self, mixer: usize, cmd: Command) -> Result<(), MediaError> {
        let mut q = self.mixers[mixer]
            .commands
            .lock()
            .map_err(|_| MediaError::Busy)?;
        q.push(cmd).map_err(|_| MediaError::Busy)
    }

    /// Opens a room on the least loaded mixer.
    pub fn create_room(&self, settings: RoomSettings) -> Result<RoomId, MediaError> {
        let id = RoomId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let mut rooms = self.rooms.lock().map_err(|_| MediaError::Busy)?;
        let mixer = (0..self.mixers.len())
            .min_by_key(|m| rooms.values().filter(|v| v.mixer == *m).count())
            .unwrap_or(0);
        let opus = settings.opus;
        let room = Room::without_codecs(id, settings);
        self.send(mixer, Command::AddRoom(Box::new(room)))?;
        rooms.insert(
            id,
            RoomEntry {
                mixer,
                opus,
                codecs: [false; 4],
                kits: [0; 4],
            },
        );
        Ok(id)
    }

    /// Ends a room and every participant in it.
    pub fn end_room(&self, room: RoomId) -> Result<(), MediaError> {
        let mixer = self
            .rooms
            .lock()
            .map_err(|_| MediaError::Busy)?
            .remove(&room)
            .ok_or(MediaError::NoSuchRoom)?
            .mixer;
        let ids: Vec<ParticipantId> = self
            .participants
            .lock()
            .map_err(|_| MediaError::Busy)?
            .iter()
            .filter(|(_, e)| e.room == room)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.close_endpoint(id);
        }
        self.send(mixer, Command::EndRoom(room))
    }

    /// Binds an RTP (and RTCP) port now, for an SDP offer whose codec is
    /// settled later; attach it with [`MediaServer::attach`].
    pub fn reserve(&self, rtcp_mux: bool) -> Result<Reservation, MediaError> {
        let (rtp, rtcp, port) = self.bind_pair(rtcp_mux)?;
        Ok(Reservation { rtp, rtcp, port })
    }

    /// Opens an endpoint and adds a participant to a room.
    pub fn add_participant(
        &self,
        room: RoomId,
        settings: ParticipantSettings,
        rtcp_mux: bool,
    ) -> Result<EndpointInfo, MediaError> {
        let r = self.reserve(rtcp_mux)?;
        self.attach(room, settings, r)
    }

    /// Adds a participant on a reserved endpoint.
    pub fn attach(
        &self,
        room: RoomId,
        settings: ParticipantSettings,
        reservation: Reservation,
    ) -> Result<EndpointInfo, MediaError> {
        let Reservation { rtp, rtcp, port } = reservation;
        let result = self.attach_inner(room, settings, rtp, rtcp, port);
        if result.is_err() {
            self.release_port(port);
        }
        result
    }

    fn attach_inner(
        &self,
        room: RoomId,
        settings: ParticipantSettings,
        rtp_std: std::net::UdpSocket,
        rtcp_std: Option<std::net::UdpSocket>,
        port: u16,
    ) -> Result<EndpointInfo, MediaError> {
        let (mixer, bring_kit, room_opus) = self.room_ready_for(room, settings.codec)?;
        let (codec, settings_opus) = (settings.codec, settings.opus);
        let local = rtp_std.local_addr()?;
        let out = rtp_std.try_clone()?;
        rx_thread::stamp_arrivals(&rtp_std)?;
        let rtcp_local = rtcp_std.as_ref().and_then(|s| s.local_addr().ok());
        let id = ParticipantId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let rx = id.0 as usize % self.receivers.len();
        let (ring_tx, ring_rx) = rtrb::RingBuffer::new(self.config.input_ring.max(4));
        let (wire, queued) = send_queue::queue(out, self.mixers[mixer].offloading.clone());
        let stats = Arc::new(ParticipantStats::default());
        let endpoint_stats = Arc::new(EndpointStats::default());
        let (ssrc, seq) = {
            let mut rng = rand::rng();
            (rng.random::<u32>(), rng.random::<u16>())
        };
        let srtp_in = match &settings.srtp {
            Some(k) => Some(secure::SrtpIn::new(k).map_err(|_| MediaError::Busy)?),
            None => None,
        };
        let receiver = RtpReceiver::new(
            ReceiverConfig {
                srtp: srtp_in,
                id,
                rtp: rtp_std,
                rtcp: rtcp_std,
                ring: ring_tx,
                queued,
                payload_types: (settings.payload_type, settings.dtmf_payload_type),
                signalled: settings.remote,
                audio_level_ext: settings.audio_level_ext,
                clock_rate: settings.codec.rtp_clock(),
                stats: endpoint_stats.clone(),
                mixer_stats: stats.clone(),
                report_interval: self.config.rtcp_interval,
            },
            std::time::Instant::now(),
        );
        let out: Box<dyn crate::mixer::PacketOut> = match &settings.srtp {
            Some(k) => Box::new(secure::SrtpOut::through(
                wire,
                k.outbound().map_err(|_| MediaError::Busy)?,
                stats.clone(),
            )),
            None => Box::new(UdpOut(wire)),
        };
        let participant = Participant::new(id, settings, ring_rx, out, ssrc, seq, stats.clone())?;
        let participant = if bring_kit {
            participant.with_kit(&room_opus)?
        } else {
            participant
        };
        // Its own encoder only for Opus settings other than the room's.
        let participant = if settings_opus == room_opus || codec != CodecKind::Opus {
            participant.sharing_kit_encoder()
        } else {
            participant
        };
        stats.last_ssrc.store(ssrc as u64, Ordering::Relaxed);
        self.send(mixer, Command::AddParticipant(room, Box::new(participant)))?;
        self.receivers[rx]
            .commands
            .send(RxCommand::Add(Box::new(receiver)))
            .map_err(|_| MediaError::Busy)?;
        self.participants
            .lock()
            .map_err(|_| MediaError::Busy)?
            .insert(
                id,
                Entry {
                    mixer,
                    rx,
                    room,
                    port,
                    stats,
                    endpoint: endpoint_stats,
                },
            );
        Ok(EndpointInfo {
            id,
            rtp: local,
            rtcp: rtcp_local,
        })
    }

    /// Gives a reserved port back without using it.
    pub fn release(&self, reservation: Reservation) {
        self.release_port(reservation.port);
    }

    fn bind_pair(
        &self,
        rtcp_mux: bool,
    ) -> Result<(std::net::UdpSocket, Option<std::net::UdpSocket>, u16), MediaError> {
        let mut ports = self.ports.lock().map_err(|_| MediaError::Busy)?;
        let start = self.config.port_min + (self.config.port_min % 2);
        let mut port = start;
        while port < self.config.port_max {
            if !ports.contains(&port) {
                if let Ok(rtp) = std::net::UdpSocket::bind((self.config.bind_ip, port)) {
                    let rtcp = if rtcp_mux {
                        None
                    } else {
                        std::net::UdpSocket::bind((self.config.bind_ip, port + 1)).ok()
                    };
                    if rtcp_mux || rtcp.is_some() {
                        rtp.set_nonblocking(true)?;
                        if let Some(r) = &rtcp {
                            r.set_nonblocking(true)?;
                        }
                        ports.insert(port);
                        return Ok((rtp, rtcp, port));
                    }
                }
            }
            port += 2;
        }
        Err(MediaError::NoPorts)
    }

    fn release_port(&self, port: u16) {
        if let Ok(mut p) = self.ports.lock() {
            p.remove(&port);
        }
    }

    fn close_endpoint(&self, id: ParticipantId) -> Option<Entry> {
        let entry = self.participants.lock().ok()?.remove(&id)?;
        if let Ok(mut r) = self.retired.lock() {
            r.add(&entry.stats, &entry.endpoint);
        }
        let _ = self.receivers[entry.rx]
            .commands
            .send(RxCommand::Remove(id));
        self.release_port(entry.port);
        Some(entry)
    }

    /// Removes a participant: its endpoint sends RTCP BYE and closes.
    pub fn remove_participant(&self, id: ParticipantId) -> Result<(), MediaError> {
        let entry = self
            .close_endpoint(id)
            .ok_or(MediaError::NoSuchParticipant)?;
        self.send(entry.mixer, Command::Remove(id))
    }

    fn mixer_of_room(&self, room: RoomId) -> Result<usize, MediaError> {
        self.rooms
            .lock()
            .map_err(|_| MediaError::Busy)?
            .get(&room)
            .map(|r| r.mixer)
            .ok_or(MediaError::NoSuchRoom)
    }

    /// The mixer of a room that has shared encoders for `codec`: they are
    /// added with its first participant of that codec (under the lock, so
    /// that they reach the mixer before any such participant); and whether
    /// the participant brings a talker kit (until the room has enough); and
    /// the room's Opus settings.
    fn room_ready_for(
        &self,
        room: RoomId,
        codec: CodecKind,
    ) -> Result<(usize, bool, OpusConfig), MediaError> {
        let mut rooms = self.rooms.lock().map_err(|_| MediaError::Busy)?;
        let entry = rooms.get_mut(&room).ok_or(MediaError::NoSuchRoom)?;
        self.add_codec(room, entry, codec)?;
        let bring = entry.kits[codec.index()] < crate::mixer::KITS_PER_CODEC;
        if bring {
            entry.kits[codec.index()] += 1;
        }
        Ok((entry.mixer, bring, entry.opus))
    }

    /// Sends a room its shared encoders for `codec` unless it has them.
    fn add_codec(
        &self,
        room: RoomId,
        entry: &mut RoomEntry,
        codec: CodecKind,
    ) -> Result<(), MediaError> {
        if !entry.codecs[codec.index()] {
            let group = CodecGroup::new(codec, &entry.opus)?;
            self.send(entry.mixer, Command::AddCodec(room, Box::new(group)))?;
            entry.codecs[codec.index()] = true;
        }
        Ok(())
    }

    fn mixer_of(&self, id: ParticipantId) -> Result<usize, MediaError> {
        self.participants
            .lock()
            .map_err(|_| MediaError::Busy)?
            .get(&id)
            .map(|e| e.mixer)
            .ok_or(MediaError::NoSuchParticipant)
    }

    /// Mutes or unmutes: a muted participant is not mixed from the next tick.
    pub fn set_mute(&self, id: ParticipantId, on: bool) -> Result<(), MediaError> {
        self.send(self.mixer_of(id)?, Command::Mute(id, on))
    }

    /// Deafens or undeafens.
    pub fn set_deaf(&self, id: ParticipantId, on: bool) -> Result<(), MediaError> {
        self.send(self.mixer_of(id)?, Command::Deaf(id, on))
    }

    /// Input and output gain in dB.
    pub fn set_gain(
        &self,
        id: ParticipantId,
        input_db: f32,
        output_db: f32,
    ) -> Result<(), MediaError> {
        self.send(self.mixer_of(id)?, Command::Gain(id, input_db, output_db))
    }

    /// Media direction (hold and resume).
    pub fn set_direction(&self, id: ParticipantId, d: Direction) -> Result<(), MediaError> {
        self.send(self.mixer_of(id)?, Command::Direction(id, d))
    }

    /// How many of the loudest talkers a room mixes (1 to 8), from its next tick.
    pub fn set_max_talkers(&self, room: RoomId, n: usize) -> Result<(), MediaError> {
        self.send(self.mixer_of_room(room)?, Command::MaxTalkers(room, n))
    }

    /// Plays a tone pattern to a whole room.
    pub fn room_tone(
        &self,
        room: RoomId,
        pattern: crate::mixer::TonePattern,
    ) -> Result<(), MediaError> {
        self.send(self.mixer_of_room(room)?, Command::RoomTone(room, pattern))
    }

    /// Records a room's full mix through `tap` (see
    /// [`crate::recording::start`]): the room's shared Opus encoding when
    /// it has one, else Opus encoders are added for it (one encode per
    /// tick for the room, not per participant).
    pub fn record(&self, room: RoomId, tap: crate::recording::RecordTap) -> Result<(), MediaError> {
        let mut rooms = self.rooms.lock().map_err(|_| MediaError::Busy)?;
        let entry = rooms.get_mut(&room).ok_or(MediaError::NoSuchRoom)?;
        self.add_codec(room, entry, CodecKind::Opus)?;
        self.send(entry.mixer, Command::Record(room, Box::new(tap)))
    }

    /// Stops recording a room; its writer then ends the file.
    pub fn stop_recording(&self, room: RoomId) -> Result<(), MediaError> {
        self.send(self.mixer_of_room(room)?, Command::StopRecording(room))
    }

    /// Plays a tone pattern to one participant.
    pub fn tone(
        &self,
        id: ParticipantId,
        pattern: crate::mixer::TonePattern,
    ) -> Result<(), MediaError> {
        self.send(self.mixer_of(id)?, Command::Tone(id, pattern))
    }

    /// Where to send, from the SDP (symmetric RTP may override it later).
    pub fn set_remote(&self, id: ParticipantId, addr: SocketAddr) -> Result<(), MediaError> {
        if let Some(e) = self
            .participants
            .lock()
            .map_err(|_| MediaError::Busy)?
            .get(&id)
        {
            let _ = self.receivers[e.rx]
                .commands
                .send(RxCommand::Signalled(id, addr));
        }
        self.send(self.mixer_of(id)?, Command::Remote(id, addr))
    }

    /// Participants with an open endpoint.
    pub fn participant_count(&self) -> usize {
        self.participants.lock().map(|p| p.len()).unwrap_or(0)
    }

    /// Participants the mixers report holding (after their last tick).
    pub fn mixed_participants(&self) -> u64 {
        self.mixers
            .iter()
            .map(|m| m.stats.participants.load(Ordering::Relaxed))
            .sum()
    }

    /// Counters of a participant.
    pub fn stats(&self, id: ParticipantId) -> Option<(Arc<ParticipantStats>, Arc<EndpointStats>)> {
        self.participants
            .lock()
            .ok()?
            .get(&id)
            .map(|e| (e.stats.clone(), e.endpoint.clone()))
    }

    /// Media counters over every participant, past and present.
    pub fn totals(&self) -> MediaTotals {
        let mut t = self.retired.lock().map(|r| *r).unwrap_or_default();
        if let Ok(p) = self.participants.lock() {
            for e in p.values() {
                t.add(&e.stats, &e.endpoint);
            }
        }
        t
    }

    /// The jitter buffers' delay now, ms: (mean, max) over live participants.
    pub fn jitter_delay_ms(&self) -> (f64, u64) {
        let Ok(p) = self.participants.lock() else {
            return (0.0, 0);
        };
        let (sum, max) = p
            .values()
            .map(|e| e.stats.jitter_delay_ms.load(Ordering::Relaxed))
            .fold((0, 0), |(sum, max), d| (sum + d, max.max(d)));
        (sum as f64 / p.len().max(1) as f64, max)
    }

    /// Counters of each mixer thread.
    pub fn mixer_stats(&self) -> Vec<Arc<MixerThreadStats>> {
        self.mixers.iter().map(|m| m.stats.clone()).collect()
    }
}

impl Drop for MediaServer {
    fn drop(&mut self) {
        let ids: Vec<ParticipantId> = self
            .participants
            .lock()
            .map(|p| p.keys().copied().collect())
            .unwrap_or_default();
        for id in ids {
            self.close_endpoint(id);
        }
        self.stop.store(true, Ordering::Relaxed);
        for m in self.mixers.drain(..) {
            let _ = m.ticker.join();
            // Woken so it sees the stop now, not at its idle timeout.
            m.pump.thread().unpark();
            let _ = m.pump.join();
        }
        for r in self.receivers.drain(..) {
            let _ = r.thread.join();
        }
    }
}
