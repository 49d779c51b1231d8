//! # focus: confab's SIP side
//!
//! [`Focus`] is a sans-IO core over the [`sip::transaction`] layer. The
//! io edge ([`io::run`]) feeds it parsed messages, media events and the
//! clock, and sends what it emits:
//!
//! ```text
//! loop {
//!     inbound message ─► focus.handle_message(now, ..)   ┐   drain poll_transmit()
//!     DTMF, talking   ─► focus.handle_dtmf / _talking    │   drain poll_room_event()
//!     policy command  ─► focus.handle_command(now, ..)    ├─► drain poll_resolve()
//!     name looked up  ─► focus.handle_resolved(now, ..)   │   re-arm poll_timeout()
//!     timer expiry    ─► focus.handle_timeout(now)        ┘
//! }
//! ```
//!
//! Dial-in: an INVITE to `sip:ROOM@host` is admitted by the in-process
//! policy (auto-create, room size, per-source limit), its SDP offer answered
//! (RFC 3264) with a media leg in ROOM's mixer, and the 200 carries an
//! `isfocus` Contact (RFC 4579). Calls end with BYE either way, CANCEL
//! before the answer (487), session timer expiry (RFC 4028) or an RTP
//! timeout; re-INVITE and UPDATE hold, resume and refresh. What the focus
//! does not route is answered per RFC 3261 §8.2 (405/501/483/420/400…).
//!
//! Moderation: the policy server pushes each room's policy ([`RoomPolicy`])
//! and asks about live calls through [`FocusCommand`]s. One rule decides
//! whether the mixer hears a call (self-mute, moderator mute, listener
//! role, PIN entry, waiting for a moderator, floor control), and every
//! change is both a conference-info NOTIFY and a [`RoomEvent`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub)]

mod call;
mod conference_doc;
mod config;
mod core;
mod dialin;
mod dialog;
mod dialout;
mod floor;
mod hands;
pub mod io;
mod live;
mod lobby;
mod media;
mod message;
mod pin_entry;
mod policy;
mod resolve;
mod responder;
mod room;
mod room_events;
mod subscription;
mod timers;

pub use crate::conference_doc::{raised_hands_in, CONFAB_NS};
pub use crate::config::FocusConfig;
pub use crate::core::{Focus, FocusStats};
pub use crate::media::{MediaControlError, MediaPort, MediaServerPort, MediaSpec};
pub use crate::policy::{FocusCommand, Reply, RoomPolicy};
pub use crate::resolve::ResolveRequest;
pub use crate::room_events::{RoomEvent, RoomEventKind};
pub use crate::subscription::EventStats;
pub use control::{
    ControlError, FloorAction, FloorInfo, FloorPolicy, HandAction, LiveRoom, ParticipantInfo,
    ParticipantUpdate, Role, RoomSnapshot,
};
