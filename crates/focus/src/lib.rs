//! # focus: confab's SIP side
//!
//! [`Focus`] is a sans-IO core over the [`sip::transaction`] layer. The
//! io edge ([`io::run`]) feeds it one [`Input`] at a time and carries out
//! every [`Output`]; the media server is reached only through the
//! [`MediaDriver`], which applies the core's media commands and reports
//! back:
//!
//! ```text
//! loop {
//!     message, policy command,  ─► focus.handle_input(now, input)
//!     name looked up, media         │
//!     report, timer expiry          ▼
//!     while let Some(out) = focus.poll_output() {
//!         Media(cmd)   ─► media driver (failures come back as inputs)
//!         Transmit(t)  ─► transports (never waits on one peer)
//!         Event(e)     ─► watchers
//!         Resolve(q)   ─► DNS task
//!     }
//!     sleep until focus.poll_timeout()
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

mod auth;
mod call;
mod call_record;
mod conference_doc;
mod config;
mod core;
mod dial_plan;
mod dialin;
mod dialog;
mod dialout;
mod drain;
mod floor;
mod hands;
mod input_output;
pub mod io;
mod live;
mod lobby;
mod media;
mod media_driver;
mod media_reports;
mod message;
mod metrics;
mod pin_entry;
mod policy;
mod recording;
mod refer;
mod registration;
mod resolve;
mod responder;
mod room;
mod room_events;
mod secure_media;
mod subscription;
mod timers;
mod utc;

pub use crate::auth::{AuthConfig, AuthMode, AuthStats};
pub use crate::call_record::{CallRecord, MediaCounts};
pub use crate::conference_doc::{raised_hands_in, recording_in, CONFAB_NS};
pub use crate::config::{DialOutPolicy, FocusConfig};
pub use crate::core::{Focus, FocusStats};
pub use crate::input_output::{Input, Output};
pub use crate::media::{
    LegControl, LegId, MediaCommand, MediaControlError, MediaInput, MediaRoomId, MediaSpec,
    PortToken,
};
pub use crate::media_driver::MediaDriver;
pub use crate::metrics::FocusMetrics;
pub use crate::policy::{FocusCommand, LiveLimits, Reply, RoomPolicy};
pub use crate::registration::BindingsChanged;
pub use crate::resolve::ResolveRequest;
pub use crate::room_events::{RoomEvent, RoomEventKind};
pub use crate::secure_media::{SrtpMode, SrtpPolicy};
pub use crate::subscription::EventStats;
pub use crate::utc::UtcTime;
pub use control::{
    ControlError, FloorAction, FloorInfo, FloorPolicy, HandAction, LiveRoom, ParticipantInfo,
    ParticipantUpdate, Role, RoomSnapshot,
};
pub use registrar::{Binding, Limits as RegistrarLimits};
pub use sip_auth::{Algorithm, Credentials};
