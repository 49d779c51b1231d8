//! # sip: confab's SIP message and transaction layer
//!
//! * [`parse_message`] reads one message (a datagram or a frame cut from a
//!   stream by [`StreamFramer`]) in two phases: framing and header
//!   validation. A failure keeps what headers it could read, so the
//!   server can still answer `400` with a reason, or `505`, `513`, `416`
//!   (RFC 4475); a bad response is dropped.
//! * [`Request`], [`Response`], [`Headers`] and the typed headers in
//!   [`header`] print back to bytes with `to_bytes`.
//! * [`transaction`] is a sans-IO implementation of RFC 3261 §17 with the
//!   RFC 6026 fixes: time and datagrams are inputs, timers and datagrams are
//!   outputs, so tests drive it on a fake clock.
//! * [`dialog`] keeps what a dialog shares (RFC 3261 §12) and builds and
//!   checks the requests inside it.
//! * [`routing`] stamps RFC 3581 `received`/`rport` and finds where a
//!   response goes (§18.2.2); [`limits`] is the per-source rate limit.
//!
//! No I/O here, and no tokio: the sockets are the `sip-transport` crate's.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub)]

pub mod dialog;
mod error;
mod framing;
pub mod header;
pub mod limits;
mod message;
mod method;
mod parse;
pub mod routing;
mod scan;
pub mod transaction;
mod uri;

pub use error::{FrameError, ParseError};
pub use framing::StreamFramer;
pub use header::{Header, HeaderName, Headers};
pub use message::{reason_phrase, Message, Request, Response};
pub use method::Method;
pub use parse::{parse_bytes, parse_message, ParseFailure, ParseLimits};
pub use scan::{Param, Params};
pub use uri::{Host, Scheme, Uri};
