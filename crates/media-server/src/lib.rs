//! # media-server: RTP in, mix-minus, RTP out
//!
//! * [`codec`]: PCMU, PCMA, G.722 and Opus behind one interface, plus RFC
//!   4733 DTMF. Opus is the reference libopus through `opus-codec` (pure
//!   Rust by default, the system's libopus with `system-libopus`).
//! * [`jitter`]: the adaptive jitter buffer (sans-IO: arrival times in,
//!   frames out).
//! * [`resample`]: rubato, fixed 20 ms chunks, allocation-free.
//! * [`mixer`]: the sans-IO mixer core. A tick drains input rings, decodes,
//!   detects talkers, mixes the N loudest, encodes once per codec group and
//!   once per talker, and writes RTP. No lock, allocation or blocking call
//!   in steady state (the pure-Rust libopus allocates inside its calls).
//! * [`rtcp`]: reception statistics and SR/RR/BYE, sans-IO.
//! * [`io`]: the edge. [`MediaServer`] binds RTP ports, spreads them over
//!   receive threads that drain each with one `recvmmsg` per tick, and runs
//!   one OS thread per mixer that ticks on an absolute 20 ms deadline:
//!
//! ```text
//! receive thread ──InPacket ring──► mixer thread ──non-blocking send_to──► network
//! control API ────Command ring────►      │
//!             ◄───MixerEvent ring────────┘ (talking, DTMF) ──► pump thread ──► broadcast
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub)]

pub mod codec;
pub mod io;
pub mod jitter;
pub mod latch;
pub mod mixer;
pub mod recording;
pub mod resample;
pub mod rtcp;
pub mod tone;

pub use io::{EndpointInfo, MediaConfig, MediaError, MediaServer, Reservation};
