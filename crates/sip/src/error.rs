//! Parse errors. Each carries the status code and the reason phrase that a
//! server sends back (RFC 3261 §21, RFC 4475 §3.1.2), or says that the message
//! cannot be answered at all.

use thiserror::Error;

/// Why a message could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{reason}")]
pub struct ParseError {
    /// The status a server answers with (400, 416, 505, 513, …).
    pub status: u16,
    /// A reason phrase that says what is wrong, fit for the status line.
    pub reason: String,
}

impl ParseError {
    /// A 400 Bad Request with the given reason.
    pub fn bad(reason: impl Into<String>) -> Self {
        Self {
            status: 400,
            reason: reason.into(),
        }
    }

    /// An error answered with a specific status.
    pub fn with_status(status: u16, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.into(),
        }
    }
}

/// Why a byte stream could not be framed into messages.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// The message (or its header block) is larger than the configured limit.
    #[error("message larger than {limit} bytes")]
    TooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The header block could not be read (no Content-Length where one is needed, a bad one).
    #[error("{0}")]
    Malformed(String),
}
