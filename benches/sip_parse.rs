//! Parsing and printing a typical INVITE with SDP and a typical 200 OK.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sip::{parse_message, ParseLimits};

const INVITE: &str = "INVITE sip:room42@conf.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: <sip:room42@conf.example.com>\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@192.0.2.10:5060;transport=udp>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, SUBSCRIBE, NOTIFY, REFER, MESSAGE\r\n\
Supported: timer, replaces\r\n\
Session-Expires: 1800;refresher=uac\r\n\
User-Agent: Example Phone 1.0\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 303\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 111 9 0 8 101\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 useinbandfec=1\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

const OK: &str = "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport=5060;received=192.0.2.10\r\n\
To: <sip:room42@conf.example.com>;tag=a6c85cf\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:room42@conf.example.com>;isfocus\r\n\
Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, SUBSCRIBE\r\n\
Content-Length: 0\r\n\r\n";

fn bench(c: &mut Criterion) {
    assert_eq!(INVITE.split("\r\n\r\n").nth(1).map(str::len), Some(303));
    let limits = ParseLimits::default();
    let mut g = c.benchmark_group("sip");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse INVITE with SDP", |b| {
        b.iter(|| parse_message(std::hint::black_box(INVITE.as_bytes()), &limits).is_ok())
    });
    g.bench_function("parse 200 OK", |b| {
        b.iter(|| parse_message(std::hint::black_box(OK.as_bytes()), &limits).is_ok())
    });
    let invite = parse_message(INVITE.as_bytes(), &limits).expect("valid");
    let ok = parse_message(OK.as_bytes(), &limits).expect("valid");
    g.bench_function("print INVITE with SDP", |b| {
        b.iter(|| std::hint::black_box(&invite).to_bytes())
    });
    g.bench_function("print 200 OK", |b| {
        b.iter(|| std::hint::black_box(&ok).to_bytes())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
