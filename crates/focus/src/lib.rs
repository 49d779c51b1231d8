//! # focus: confab's SIP side
//!
//! [`Focus`] is a sans-IO core over the [`sip::transaction`] layer. The
//! io edge ([`io::run`]) feeds it parsed messages from the transports and
//! the clock, and sends what it emits:
//!
//! ```text
//! loop {
//!     inbound message ─► focus.handle_message(now, ..)   ┐
//!     timer expiry    ─► focus.handle_timeout(now)        ├─► drain poll_transmit()
//! }                                                       ┘   re-arm poll_timeout()
//! ```
//!
//! For now the focus answers what it does not yet route (RFC 3261 §8.2):
//! OPTIONS, 501/405 for methods it does not implement, 483, 420, 400 with
//! the parser's reason; INVITE and SUBSCRIBE get 480 until rooms and the
//! conference event package are routed. Stray ACKs and responses are counted
//! and dropped.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub)]

mod core;
pub mod io;
mod responder;

pub use crate::core::{Focus, FocusConfig, FocusStats};
