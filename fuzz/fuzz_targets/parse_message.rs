//! Any datagram: parsing never panics, and what parses prints and reparses
//! to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip::{parse_message, ParseLimits};

fuzz_target!(|data: &[u8]| {
    let limits = ParseLimits::default();
    match parse_message(data, &limits) {
        Ok(m) => {
            let printed = m.to_bytes();
            let again = parse_message(&printed, &limits).expect("a printed message parses");
            assert_eq!(again.to_bytes(), printed, "print is stable");
        }
        Err(f) => {
            let _ = f.response().map(|r| r.to_bytes());
        }
    }
});
