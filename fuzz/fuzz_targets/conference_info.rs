//! Any conference-info document (RFC 4575): parsing never panics; what
//! parses prints, and the print parses to a document that prints the same;
//! applying a document to itself (a partial update) never panics.
#![no_main]

use conference_info::ConferenceInfo;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(doc) = ConferenceInfo::parse(text) else {
        return;
    };
    let xml = doc.to_xml();
    let again = ConferenceInfo::parse(&xml).expect("a printed document parses");
    assert_eq!(again.to_xml(), xml, "print is stable");
    let mut base = doc.clone();
    let _ = base.apply(&doc);
});
