//! Any byte stream cut at any points: the framer never panics and never
//! returns a frame larger than its limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip::StreamFramer;

fuzz_target!(|data: &[u8]| {
    let mut f = StreamFramer::new(4096);
    for chunk in data.chunks(7) {
        f.push(chunk);
        while let Some(frame) = f.next_frame() {
            match frame {
                Ok(bytes) => assert!(bytes.len() <= 4096),
                Err(_) => return,
            }
        }
    }
});
