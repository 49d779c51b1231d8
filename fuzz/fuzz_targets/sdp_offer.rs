//! Any SDP offer: parsing never panics, and what parses negotiates (or is
//! refused with a typed error); a negotiated offer gets an answer that
//! parses back with the chosen codec on the chosen stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sdp::{answer, negotiate, Direction, Preferences, Session};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(offer) = Session::parse(text) else {
        return;
    };
    let Ok(neg) = negotiate(&offer, &Preferences::default()) else {
        return;
    };
    let local = "127.0.0.1:20000".parse().expect("an address");
    let ans = answer(&offer, &neg, local, Direction::SendRecv, 1, 1);
    let back = Session::parse(&ans).expect("our answer parses");
    assert_eq!(back.media.len(), offer.media.len(), "one answer line per offered stream");
});
