//! Shared helpers for the focus's in-memory tests: the test's side of the
//! core's outputs (a model of the media server that takes the core's media
//! commands as the real driver does, and reports back), and SIP message
//! builders.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use focus::{
    Focus, FocusConfig, Input, LegControl, LegId, MediaCommand, MediaControlError, MediaInput,
    Output, ResolveRequest, RoomEvent,
};
use media_server::mixer::TonePattern;
use sip::transaction::{Peer, Transmit, TransportKind};
use sip::{parse_message, Message, ParseLimits};

/// What the focus last asked of one leg.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Leg {
    pub muted: bool,
    pub deaf: bool,
    pub gain: (f32, f32),
    pub tones: Vec<TonePattern>,
    pub open: bool,
}

/// The media server as the core's commands leave it.
#[derive(Debug, Default)]
pub struct MediaModel {
    next_port: u64,
    pub legs: HashMap<LegId, Leg>,
    /// Talkers asked for, per room opened or changed.
    pub talkers: Vec<Option<usize>>,
    /// Legs in the order they joined.
    pub joined: Vec<LegId>,
    /// The mixer's command ring, when a test models one.
    pub ring: Ring,
    /// Binding ports fails (every port taken).
    pub no_ports: bool,
    /// Opening legs fails.
    pub joins_fail: bool,
    /// Ports given back unused.
    pub released: usize,
    /// Ended calls' records, in order.
    pub records: Vec<focus::CallRecord>,
    /// Taps handed over for recording (dropped at once: their files end).
    pub recorded: usize,
    /// Recordings stopped.
    pub recording_stopped: usize,
    /// Tones played to whole rooms, in order.
    pub room_tones: Vec<media_server::mixer::TonePattern>,
}

/// A model of the media server's bounded command ring.
#[derive(Debug, Default)]
pub struct Ring {
    /// Commands that fit between two ticks (None: unbounded).
    pub capacity: Option<usize>,
    /// Commands queued since the last tick.
    pub queued: usize,
    /// Commands taken in all.
    pub taken: usize,
    /// Commands refused as busy.
    pub refused: usize,
}

impl Ring {
    /// The mixer's tick takes everything queued.
    pub fn tick(&mut self) {
        self.queued = 0;
    }
    fn take(&mut self) -> bool {
        if self.capacity.is_some_and(|c| self.queued >= c) {
            self.refused += 1;
            return false;
        }
        self.queued += 1;
        self.taken += 1;
        true
    }
}

impl MediaModel {
    /// Applies one command; returns what the media side reports.
    pub fn apply(&mut self, cmd: MediaCommand) -> Vec<MediaInput> {
        let mut back = Vec::new();
        match cmd {
            MediaCommand::Reserve { count } if self.no_ports => {
                back.push(MediaInput::ReserveFailed {
                    count,
                    error: MediaControlError::NoPorts,
                });
            }
            MediaCommand::Reserve { count } => {
                for _ in 0..count {
                    self.next_port += 1;
                    back.push(MediaInput::Reserved {
                        port: focus::PortToken(self.next_port),
                        addr: SocketAddr::from((
                            [127, 0, 0, 1],
                            20000 + (self.next_port % 10000) as u16 * 2,
                        )),
                    });
                }
            }
            MediaCommand::OpenRoom { talkers, .. } => self.talkers.push(talkers),
            MediaCommand::SetMaxTalkers { talkers, .. } => self.talkers.push(Some(talkers)),
            MediaCommand::Join { leg, .. } if self.joins_fail => {
                back.push(MediaInput::JoinFailed {
                    leg,
                    error: MediaControlError::Failed,
                });
            }
            MediaCommand::Join { leg, .. } => {
                self.legs.entry(leg).or_default().open = true;
                self.joined.push(leg);
            }
            MediaCommand::Leave { leg } => self.legs.entry(leg).or_default().open = false,
            MediaCommand::CallEnded { leg, record } => {
                assert!(
                    leg.is_none_or(|l| self.legs.get(&l).is_some_and(|l| l.open)),
                    "a record comes before its leg closes"
                );
                self.records.push(*record);
            }
            MediaCommand::Control { leg, change } => {
                if !self.ring.take() {
                    back.push(MediaInput::Refused {
                        leg,
                        change,
                        error: MediaControlError::Busy,
                    });
                } else {
                    let l = self.legs.entry(leg).or_default();
                    match change {
                        LegControl::Mute(on) => l.muted = on,
                        LegControl::Deaf(on) => l.deaf = on,
                        LegControl::Gain {
                            input_db,
                            output_db,
                        } => l.gain = (input_db, output_db),
                    }
                }
            }
            MediaCommand::Tone { leg, pattern } => {
                self.legs.entry(leg).or_default().tones.push(pattern)
            }
            MediaCommand::Release { .. } => self.released += 1,
            MediaCommand::Record { .. } => self.recorded += 1,
            MediaCommand::StopRecording { .. } => self.recording_stopped += 1,
            MediaCommand::RoomTone { pattern, .. } => self.room_tones.push(pattern),
            MediaCommand::CloseRoom { .. }
            | MediaCommand::SetDirection { .. }
            | MediaCommand::SetRemote { .. } => {}
        }
        back
    }
}

/// The test's side of the core's outputs.
#[derive(Debug, Default)]
pub struct Edge {
    pub media: MediaModel,
    pub events: VecDeque<RoomEvent>,
    pub resolves: Vec<ResolveRequest>,
    pub bindings: Vec<focus::BindingsChanged>,
}

impl Edge {
    /// Takes every output, as the driver does: media commands applied (and
    /// their reports fed back), messages returned, events and lookups kept.
    pub fn drain(&mut self, f: &mut Focus, now: Instant) -> Vec<Transmit> {
        let mut out = Vec::new();
        while let Some(o) = f.poll_output() {
            match o {
                Output::Media(cmd) => {
                    for report in self.media.apply(cmd) {
                        f.handle_input(now, Input::Media(report));
                    }
                }
                Output::Transmit(t) => out.push(t),
                Output::Event(e) => self.events.push_back(e),
                Output::Resolve(q) => self.resolves.push(q),
                Output::Bindings(b) => self.bindings.push(b),
            }
        }
        out
    }
}

/// A focus with its first ports bound, and the edge that takes its outputs.
pub fn start(config: FocusConfig, seed: u64) -> (Focus, Edge) {
    let mut f = Focus::new(config, seed);
    let mut edge = Edge::default();
    let now = Instant::now();
    assert!(edge.drain(&mut f, now).is_empty());
    (f, edge)
}

/// A message from 127.0.0.1:`port`.
pub fn message(port: u16, m: Message) -> Input {
    Input::Message {
        peer: peer(port),
        message: Ok(m),
    }
}

/// Everything the focus sent, parsed, with where it went.
pub fn sent(f: &mut Focus, edge: &mut Edge, now: Instant) -> Vec<(u16, Message)> {
    edge.drain(f, now)
        .into_iter()
        .map(|t| {
            let m = parse_message(&t.data, &ParseLimits::default()).unwrap();
            (t.peer.addr.port(), m)
        })
        .collect()
}

pub fn header(m: &Message, name: &str) -> Vec<String> {
    m.headers()
        .get_all(&sip::HeaderName::new(name))
        .map(str::to_owned)
        .collect()
}

pub const SERVER: &str = "127.0.0.1:5060";

pub fn peer(port: u16) -> Peer {
    Peer {
        transport: TransportKind::Udp,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    }
}

pub fn parse(text: &str) -> Message {
    parse_message(text.as_bytes(), &ParseLimits::default()).unwrap()
}

pub fn sdp(port: u16, direction: &str) -> String {
    format!("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na={direction}\r\n")
}

/// A request to room `big` from `user` at 127.0.0.1:`port`.
#[allow(clippy::too_many_arguments)]
pub fn request(
    method: &str,
    user: &str,
    port: u16,
    call_id: &str,
    to_tag: Option<&str>,
    cseq: u32,
    extra: &str,
    body: &str,
) -> Message {
    let to = match to_tag {
        Some(t) => format!("<sip:big@{SERVER}>;tag={t}"),
        None => format!("<sip:big@{SERVER}>"),
    };
    let ctype = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    parse(&format!(
        "{method} sip:big@{SERVER} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{call_id}{cseq}{method}\r\nMax-Forwards: 70\r\n\
         From: <sip:{user}@example.com>;tag=f{call_id}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:{user}@127.0.0.1:{port}>\r\n\
         {extra}{ctype}Content-Length: {}\r\n\r\n{body}",
        body.len()
    ))
}
