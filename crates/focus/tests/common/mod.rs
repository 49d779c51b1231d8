//! Shared helpers for the focus's in-memory tests: a fake media server that
//! records what the focus asks of each leg, and SIP message builders.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use focus::Focus;
use focus::{MediaControlError, MediaPort, MediaSpec};
use media_server::mixer::{Direction, ParticipantId, RoomId, TonePattern};
use sip::transaction::{Peer, TransportKind};
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

/// A media server in memory; `legs` is shared so tests can look inside.
#[derive(Default)]
pub struct FakeMedia {
    next: u32,
    pub legs: Arc<Mutex<HashMap<ParticipantId, Leg>>>,
    /// Talkers asked for per opened room.
    pub rooms: Arc<Mutex<Vec<Option<usize>>>>,
    /// Legs in the order they joined.
    pub joined: Arc<Mutex<Vec<ParticipantId>>>,
    /// The mixer's command ring, when a test models one: leg changes
    /// queued since the last [`Ring::tick`], and how many fit.
    pub ring: Arc<Mutex<Ring>>,
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
    fn take(&mut self) -> Result<(), MediaControlError> {
        if self.capacity.is_some_and(|c| self.queued >= c) {
            self.refused += 1;
            return Err(MediaControlError::Busy);
        }
        self.queued += 1;
        self.taken += 1;
        Ok(())
    }
}

impl FakeMedia {
    fn leg(&self, id: ParticipantId, f: impl FnOnce(&mut Leg)) {
        f(self.legs.lock().unwrap().entry(id).or_default());
    }
    fn control(
        &self,
        id: ParticipantId,
        f: impl FnOnce(&mut Leg),
    ) -> Result<(), MediaControlError> {
        self.ring.lock().unwrap().take()?;
        self.leg(id, f);
        Ok(())
    }
}

impl MediaPort for FakeMedia {
    fn open_room(&mut self, _: usize, talkers: Option<usize>) -> Result<RoomId, String> {
        self.next += 1;
        self.rooms.lock().unwrap().push(talkers);
        Ok(RoomId(self.next))
    }
    fn close_room(&mut self, _: RoomId) {}
    fn set_max_talkers(&mut self, _: RoomId, talkers: usize) {
        self.rooms.lock().unwrap().push(Some(talkers));
    }
    fn join(&mut self, _: RoomId, _: &MediaSpec) -> Result<(ParticipantId, SocketAddr), String> {
        self.next += 1;
        let id = ParticipantId(self.next);
        self.leg(id, |l| l.open = true);
        self.joined.lock().unwrap().push(id);
        Ok((
            id,
            SocketAddr::from(([127, 0, 0, 1], 20000 + (self.next % 10000) as u16)),
        ))
    }
    fn reserve(&mut self) -> Result<(u64, SocketAddr), String> {
        self.next += 1;
        let port = 20000 + (self.next % 10000) as u16;
        Ok((self.next as u64, SocketAddr::from(([127, 0, 0, 1], port))))
    }
    fn join_reserved(
        &mut self,
        room: RoomId,
        _: u64,
        spec: &MediaSpec,
    ) -> Result<(ParticipantId, SocketAddr), String> {
        self.join(room, spec)
    }
    fn release(&mut self, _: u64) {}
    fn leave(&mut self, leg: ParticipantId) {
        self.leg(leg, |l| l.open = false);
    }
    fn set_direction(&mut self, _: ParticipantId, _: Direction) {}
    fn set_remote(&mut self, _: ParticipantId, _: SocketAddr) {}
    fn set_mute(&mut self, leg: ParticipantId, on: bool) -> Result<(), MediaControlError> {
        self.control(leg, |l| l.muted = on)
    }
    fn set_deaf(&mut self, leg: ParticipantId, on: bool) -> Result<(), MediaControlError> {
        self.control(leg, |l| l.deaf = on)
    }
    fn set_gain(
        &mut self,
        leg: ParticipantId,
        input: f32,
        output: f32,
    ) -> Result<(), MediaControlError> {
        self.control(leg, |l| l.gain = (input, output))
    }
    fn packets_in(&self, _: ParticipantId) -> u64 {
        1
    }
    fn room_tone(&mut self, _: RoomId, _: TonePattern) {}
    fn tone(&mut self, leg: ParticipantId, pattern: TonePattern) {
        self.leg(leg, |l| l.tones.push(pattern));
    }
}

/// Everything the focus sent, parsed, with where it went.
pub fn sent(f: &mut Focus) -> Vec<(u16, Message)> {
    let mut out = Vec::new();
    while let Some(t) = f.poll_transmit() {
        let m = parse_message(&t.data, &ParseLimits::default()).unwrap();
        out.push((t.peer.addr.port(), m));
    }
    out
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
