//! # media-server
#![forbid(unsafe_code)]
pub mod codec;
pub mod jitter;
pub mod mixer;
pub mod resample;
pub mod tone;
