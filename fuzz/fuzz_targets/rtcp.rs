//! Any datagram on an RTCP port (or a muxed one): the compound-packet
//! parser never panics and never reads past the datagram.
#![no_main]

use libfuzzer_sys::fuzz_target;
use media_server::rtcp;

fuzz_target!(|data: &[u8]| {
    let _ = rtcp::is_rtcp(data);
    let _ = rtcp::parse(data);
});
