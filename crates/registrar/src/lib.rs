//! # registrar: bindings of addresses of record to contacts, sans-IO
//!
//! [`Location`] applies a REGISTER ([`Register`], read from a request with
//! [`Register::from_request`]) by the rules of RFC 3261 §10.3: several
//! contacts per address of record, `expires` per contact or for the
//! request, `q`, `Contact: *` with `Expires: 0`, Call-ID and CSeq
//! ordering, `423 Interval Too Brief` with the least interval, and the
//! `Path` a proxy in front recorded (RFC 3327). [`Location::lookup`] gives
//! the live contacts of an address of record, best `q` first, for forking.
//! Time is an argument (seconds); persistence is the store's.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub)]

mod location;
mod register;

pub use location::{Binding, Limits, Location, Outcome};
pub use register::{Register, RegisterError};
