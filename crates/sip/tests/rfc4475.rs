//! RFC 4475 torture messages (§3.1.1 valid, §3.1.2 invalid, and the §3.3
//! ones a parser decides), written from the RFC's descriptions into
//! `tests/torture/*.sip`. Fixture files use LF; they are sent with CRLF, and
//! `$LEN` stands for the real body length.

use sip::{parse_message, HeaderName, Host, Message, Method, ParseLimits, Scheme};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/torture/{name}.sip", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let text = text.replace('\n', "\r\n");
    // The body starts after the first empty line; a trailing CRLF that only
    // ends the file is not part of a body that has content.
    match text.find("\r\n\r\n") {
        Some(i) if text.contains("$LEN") => {
            let body = text[i + 4..].to_owned();
            text.replace("$LEN", &body.len().to_string()).into_bytes()
        }
        _ => text.into_bytes(),
    }
}

fn parse(name: &str) -> Result<Message, sip::ParseFailure> {
    parse_message(&fixture(name), &ParseLimits::default())
}

fn request(name: &str) -> sip::Request {
    match parse(name) {
        Ok(Message::Request(r)) => r,
        other => panic!("{name}: expected a request, got {other:?}"),
    }
}

/// The message is refused with `status`, and the answer can be routed back.
fn rejected(name: &str, status: u16) -> String {
    let f = parse(name).expect_err(name);
    assert_eq!(f.error.status, status, "{name}: {}", f.error.reason);
    let resp = f
        .response()
        .unwrap_or_else(|| panic!("{name}: should be answerable"));
    assert_eq!(resp.status, status);
    assert!(!resp.reason.is_empty());
    f.error.reason
}

/// The message is dropped: nothing can be answered.
fn dropped(name: &str) {
    let f = parse(name).expect_err(name);
    assert!(
        f.response().is_none(),
        "{name}: a bad response is never answered"
    );
}

// §3.1.1 valid messages

#[test]
fn wsinv_short_tortuous_invite() {
    let r = request("wsinv");
    assert_eq!(r.method, Method::Invite);
    assert!(r.uri.params.has("unknownparam"));
    let h = &r.headers;
    assert_eq!(h.to().unwrap().tag(), Some("1918181833n"));
    let from = h.from().unwrap();
    assert_eq!(from.display.as_deref(), Some("J Rosenberg \\\""));
    assert_eq!(from.tag(), Some("98asjd8"));
    assert_eq!(h.max_forwards(), Some(68));
    assert_eq!(h.cseq().unwrap().seq, 9);
    let vias = h.vias();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[1].branch(), Some("z9hG4bK9ikj8"));
    assert_eq!(vias[2].host, Host::V4("192.168.255.111".parse().unwrap()));
    assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
    assert_eq!(h.get(&HeaderName::SUBJECT), Some(""));
    assert_eq!(
        h.get(&HeaderName::new("newfangledheader")),
        Some("newfangled value continued newfangled value")
    );
    let c = h.contacts();
    let c = c[0].addr().unwrap();
    assert_eq!(c.display.as_deref(), Some("Quoted string \"\""));
    assert_eq!(c.params.value("newparam"), Some("newvalue"));
    assert_eq!(c.params.value("q"), Some("0.33"));
    assert!(c.params.has("secondparam"));
    assert!(r.body.starts_with(b"v=0"));
    assert_eq!(h.routes(&HeaderName::ROUTE).len(), 1);
}

#[test]
fn intmeth_wide_range_of_valid_characters() {
    let r = request("intmeth");
    assert_eq!(
        r.method,
        Method::Extension("!interesting-Method0123456789_*+`.%indeed'~".into())
    );
    assert_eq!(
        r.uri.user.as_deref(),
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(
        r.uri.password.as_deref(),
        Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
    );
    let to = r.headers.to().unwrap();
    assert!(to.display.unwrap().contains('\u{7}'));
    let from = r.headers.from().unwrap();
    assert_eq!(
        from.display.as_deref(),
        Some("token1~` token2'+_ token3*%!.-")
    );
    assert_eq!(from.params.value("fromParam''~+*_!.-%"), Some("работающий"));
    assert_eq!(from.tag(), Some("_token~1'+`*%!-."));
    assert_eq!(
        r.headers.call_id(),
        Some("intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{")
    );
    assert_eq!(r.headers.max_forwards(), Some(255));
    assert!(r
        .headers
        .get(&HeaderName::new("extensionHeader-!.%*+_`'~"))
        .unwrap()
        .contains("大停電"));
}

#[test]
fn esc01_valid_percent_escapes() {
    let r = request("esc01");
    assert_eq!(r.uri.user.as_deref(), Some("sips:user@example.com"));
    assert_eq!(r.headers.to().unwrap().uri.user.as_deref(), Some("user"));
    assert_eq!(
        r.headers.from().unwrap().uri.user.as_deref(),
        Some("I have spaces")
    );
    let c = r.headers.contacts();
    let uri = &c[0].addr().unwrap().uri;
    assert_eq!(uri.user.as_deref(), Some("caller"));
    assert!(uri.params.has("lr"));
    assert_eq!(uri.params.value("name"), Some("value%41"));
    assert_eq!(r.headers.content_type().as_deref(), Some("application/sdp"));
}

#[test]
fn escnull_escaped_nulls() {
    let r = request("escnull");
    assert_eq!(
        r.headers.to().unwrap().uri.user.as_deref(),
        Some("null-\0-null")
    );
    let c = r.headers.contacts();
    assert_eq!(c.len(), 2);
    assert_eq!(c[1].addr().unwrap().uri.user.as_deref(), Some("\0\0"));
}

#[test]
fn esc02_percent_that_is_not_an_escape() {
    let r = request("esc02");
    assert_eq!(r.method, Method::Extension("RE%47IST%45R".into()));
    assert_eq!(r.headers.from().unwrap().display.as_deref(), Some("%Z%45"));
    assert_eq!(
        r.headers.contacts().len(),
        2,
        "C%6Fntact is another header, not Contact"
    );
    assert!(r.headers.get(&HeaderName::new("C%6Fntact")).is_some());
}

#[test]
fn lwsdisp_no_space_before_angle() {
    let r = request("lwsdisp");
    assert_eq!(r.headers.from().unwrap().display.as_deref(), Some("caller"));
}

#[test]
fn longreq_long_values() {
    let tag = "longreq.one".repeat(80);
    let via: String = (0..20)
        .map(|i| {
            format!(
                "Via: SIP/2.0/TCP sip{i}.example.com;branch=z9hG4bK{i}{}\r\n",
                "x".repeat(300)
            )
        })
        .collect();
    let text = format!(
        "INVITE sip:user@example.com SIP/2.0\r\nTo: \"I have a user name of {} proportion\" <sip:user@example.com:6000;unknownparam={}>\r\n\
         From: sip:{}@example.net;tag={tag}\r\nCall-ID: longreq.{}\r\nCSeq: 3882340 INVITE\r\n{via}Max-Forwards: 70\r\n\
         Contact: <sip:amazinglylongcallername{}@host5.example.net>\r\nContent-Length: 0\r\n\r\n",
        "extreme".repeat(50),
        "y".repeat(600),
        "a".repeat(400),
        "c".repeat(500),
        "z".repeat(300),
    );
    let Message::Request(r) = parse_message(text.as_bytes(), &ParseLimits::default()).unwrap()
    else {
        panic!()
    };
    assert_eq!(r.headers.vias().len(), 20);
    assert_eq!(r.headers.from().unwrap().tag(), Some(tag.as_str()));
    assert_eq!(r.headers.to().unwrap().uri.port, Some(6000));
}

#[test]
fn dblreq_extra_octets_after_the_message_are_ignored() {
    let r = request("dblreq");
    assert_eq!(r.method, Method::Register);
    assert!(r.body.is_empty());
}

#[test]
fn semiuri_semicolons_in_user_part() {
    let r = request("semiuri");
    assert_eq!(r.uri.user.as_deref(), Some("user;par=u@example.net"));
    assert!(r.uri.params.0.is_empty());
    assert_eq!(r.headers.values(&HeaderName::ACCEPT).count(), 6);
}

#[test]
fn transports_varied_and_unknown() {
    let r = request("transports");
    let t: Vec<String> = r.headers.vias().into_iter().map(|v| v.transport).collect();
    assert_eq!(t, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
}

#[test]
fn mpart01_multipart_body() {
    let r = request("mpart01");
    assert_eq!(r.headers.content_type().as_deref(), Some("multipart/mixed"));
    assert!(r.body.ends_with(b"--7a9cbec02ceef655--\r\n"));
}

#[test]
fn unreason_utf8_reason_phrase() {
    let Ok(Message::Response(r)) = parse("unreason") else {
        panic!()
    };
    assert_eq!(r.status, 200);
    assert!(r.reason.contains("девяносто"));
}

#[test]
fn noreason_empty_reason_phrase() {
    let Ok(Message::Response(r)) = parse("noreason") else {
        panic!()
    };
    assert_eq!((r.status, r.reason.as_str()), (100, ""));
}

#[test]
fn inv2543_old_style_invite_is_accepted() {
    let r = request("inv2543");
    let via = r.headers.top_via().unwrap();
    assert!(via.branch().is_none());
    assert_eq!(r.headers.from().unwrap().tag(), None);
    assert_eq!(r.uri.user.as_deref(), Some("UserB"));
}

#[test]
fn unksm2_unknown_schemes_in_headers_parse() {
    let r = request("unksm2");
    assert_eq!(
        r.headers.to().unwrap().uri.scheme,
        Scheme::Other("isbn".into())
    );
    assert_eq!(
        r.headers.from().unwrap().uri.scheme,
        Scheme::Other("http".into())
    );
}

#[test]
fn valid_messages_print_and_reparse_the_same() {
    for name in [
        "wsinv",
        "intmeth",
        "esc01",
        "escnull",
        "esc02",
        "lwsdisp",
        "semiuri",
        "transports",
        "mpart01",
        "unreason",
        "inv2543",
    ] {
        let m = parse(name).unwrap();
        let again = parse_message(&m.to_bytes(), &ParseLimits::default())
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(again.to_bytes(), m.to_bytes(), "{name}");
    }
}

// §3.1.2 invalid messages

#[test]
fn badinv01_extra_separators() {
    rejected("badinv01", 400);
}

#[test]
fn clerr_content_length_larger_than_message() {
    assert!(rejected("clerr", 400).contains("Content-Length"));
}

#[test]
fn ncl_negative_content_length() {
    assert!(rejected("ncl", 400).contains("Content-Length"));
}

#[test]
fn scalar02_overlarge_request_values() {
    rejected("scalar02", 400);
}

#[test]
fn scalarlg_overlarge_response_values_are_dropped() {
    dropped("scalarlg");
}

#[test]
fn quotbal_unterminated_quote() {
    assert!(rejected("quotbal", 400).contains("quoted"));
}

#[test]
fn ltgtruri_bracketed_request_uri() {
    assert!(rejected("ltgtruri", 400).contains("<>"));
}

#[test]
fn lwsruri_space_in_request_uri() {
    rejected("lwsruri", 400);
}

#[test]
fn lwsstart_multiple_spaces_in_request_line() {
    rejected("lwsstart", 400);
}

#[test]
fn trws_trailing_space_in_request_line() {
    rejected("trws", 400);
}

#[test]
fn escruri_headers_in_request_uri() {
    rejected("escruri", 400);
}

#[test]
fn baddate_non_gmt_date() {
    assert!(rejected("baddate", 400).contains("GMT"));
}

#[test]
fn regbadct_unbracketed_uri_with_headers() {
    rejected("regbadct", 400);
}

#[test]
fn badaspec_spaces_inside_angle_brackets() {
    rejected("badaspec", 400);
}

#[test]
fn baddn_unquoted_display_name_with_comma() {
    rejected("baddn", 400);
}

#[test]
fn badvers_unknown_version_is_505() {
    let f = parse("badvers").unwrap_err();
    assert_eq!(f.error.status, 505);
    let resp = f.response().unwrap();
    assert_eq!(
        resp.headers.get(&HeaderName::new("Supported-Version")),
        Some("SIP/2.0")
    );
}

#[test]
fn mismatch01_cseq_method_mismatch() {
    assert!(rejected("mismatch01", 400).contains("CSeq"));
}

#[test]
fn mismatch02_unknown_method_with_mismatched_cseq() {
    rejected("mismatch02", 400);
}

#[test]
fn bigcode_overlarge_status_code_is_dropped() {
    dropped("bigcode");
}

// §3.3 cases decided by the parser

#[test]
fn insuf_missing_required_headers() {
    assert!(rejected("insuf", 400).contains("missing"));
}

#[test]
fn unkscm_and_novelsc_unknown_request_uri_scheme_is_416() {
    rejected("unkscm", 416);
    rejected("novelsc", 416);
}

#[test]
fn multi01_multiple_single_value_headers() {
    assert!(rejected("multi01", 400).contains("multiple"));
}

#[test]
fn mcl01_multiple_content_length() {
    assert!(rejected("mcl01", 400).contains("Content-Length"));
}

#[test]
fn oversized_message_is_513() {
    let mut m = fixture("lwsdisp");
    let limits = ParseLimits {
        max_message: 300,
        ..Default::default()
    };
    m.truncate(m.len() - 2);
    m.extend_from_slice(format!("X-Pad: {}\r\n\r\n", "p".repeat(400)).as_bytes());
    let f = parse_message(&m, &limits).unwrap_err();
    assert_eq!(f.error.status, 513);
    assert!(f.response().is_some());
}

#[test]
fn every_prefix_of_every_fixture_is_handled_without_panic() {
    let dir = format!("{}/tests/torture", env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry
            .unwrap()
            .path()
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let bytes = fixture(&name);
        for i in 0..bytes.len() {
            let _ = parse_message(&bytes[..i], &ParseLimits::default());
        }
    }
}
