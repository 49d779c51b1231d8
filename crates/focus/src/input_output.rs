//! The focus's one way in and one way out, as str0m's `Rtc` has: the
//! driver feeds every [`Input`] to [`Focus::handle_input`] and takes every
//! [`Output`] from [`Focus::poll_output`] until there is none, then sleeps
//! until [`Focus::poll_timeout`].

use std::net::SocketAddr;
use std::time::Instant;

use sip::transaction::{Peer, Transmit};
use sip::{Message, ParseFailure};

use crate::media::{MediaCommand, MediaInput};
use crate::policy::FocusCommand;
use crate::registration::BindingsChanged;
use crate::resolve::ResolveRequest;
use crate::room_events::RoomEvent;
use crate::Focus;

/// What reaches the focus.
#[derive(Debug)]
pub enum Input {
    /// A message received (or the parser's failure to read one).
    Message {
        /// Who sent it, over what.
        peer: Peer,
        /// What it was.
        message: Result<Message, ParseFailure>,
    },
    /// A request from the policy server.
    Command(FocusCommand),
    /// The answer to a [`ResolveRequest`].
    Resolved {
        /// The request's id.
        id: u64,
        /// The address, or why there is none.
        result: Result<SocketAddr, String>,
    },
    /// What the media side reports.
    Media(MediaInput),
    /// The time [`Focus::poll_timeout`] named has come (or any later time).
    Timeout,
}

/// What the focus wants done.
#[derive(Debug)]
pub enum Output {
    /// Media control for the driver to apply; a failure comes back as an
    /// [`Input::Media`].
    Media(MediaCommand),
    /// A message to send.
    Transmit(Transmit),
    /// A room changed, for watchers.
    Event(RoomEvent),
    /// A name to look up, answered with [`Input::Resolved`].
    Resolve(ResolveRequest),
    /// An address of record's bindings changed: for the store, so that
    /// a restart keeps them.
    Bindings(BindingsChanged),
}

impl Focus {
    /// Feeds one input at time `now`.
    pub fn handle_input(&mut self, now: Instant, input: Input) {
        match input {
            Input::Message { peer, message } => self.handle_message(now, peer, message),
            Input::Command(c) => self.handle_command(now, c),
            Input::Resolved { id, result } => self.handle_resolved(now, id, result),
            Input::Media(m) => self.handle_media(now, m),
            Input::Timeout => self.handle_timeout(now),
        }
    }

    /// What to do next. Media first, so that a leg exists before the answer
    /// naming its port leaves; then messages, room events and lookups.
    pub fn poll_output(&mut self) -> Option<Output> {
        if let Some(m) = self.media.poll() {
            return Some(Output::Media(m));
        }
        if let Some(t) = self.layer.poll_transmit() {
            return Some(Output::Transmit(t));
        }
        if let Some(b) = self.poll_registration() {
            return Some(Output::Bindings(b));
        }
        if let Some(e) = self.poll_room_event() {
            return Some(Output::Event(e));
        }
        self.poll_resolve().map(Output::Resolve)
    }
}
