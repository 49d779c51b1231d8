//! # sip-auth: digest authentication for SIP, sans-IO
//!
//! * [`Credentials`]: what the store keeps of a user, the HA1 values for
//!   MD5 and SHA-256 (RFC 7616 §3.4.2), never the password.
//! * [`Authorization`]: an `Authorization` or `Proxy-Authorization` header
//!   read into its parameters (RFC 7616 §3.4).
//! * [`NonceIssuer`]: challenges whose nonces carry their issue time and a
//!   MAC, so that they expire (answered with `stale=true`) and cannot be
//!   forged; verification of answers, with nonce-count replay checks.
//!
//! Time is an argument (seconds since the Unix epoch): tests run on a fake clock.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub)]

mod credentials;
mod header;
mod nonce;

pub use credentials::{Algorithm, Credentials};
pub use header::{Authorization, Challenge};
pub use nonce::{NonceIssuer, Refusal, Verdict};

use thiserror::Error;

/// A header that is not a digest answer we can check.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    /// Not the Digest scheme.
    #[error("not a Digest authorization")]
    NotDigest,
    /// A required parameter is missing.
    #[error("missing parameter {0}")]
    Missing(&'static str),
    /// A parameter's value is malformed.
    #[error("malformed parameter {0}")]
    Malformed(&'static str),
    /// An algorithm other than MD5 and SHA-256.
    #[error("unsupported algorithm")]
    Algorithm,
    /// A quality of protection other than `auth`.
    #[error("unsupported qop")]
    Qop,
}
