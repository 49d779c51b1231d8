//! # media-server
#![forbid(unsafe_code)]
pub mod codec;
pub mod jitter;
pub mod resample;
pub mod tone;
