//! Transports placeholder.
