//! Checked against webrtc-srtp, an independent implementation, in both
//! directions and for every suite; then the rollover counter across
//! sequence wrap, replays, and forged or truncated packets.

use super::*;
use webrtc_srtp::context::Context;
use webrtc_srtp::protection_profile::ProtectionProfile;

const KEY: [u8; 16] = [
    0xE1, 0xF9, 0x7A, 0x0D, 0x3E, 0x01, 0x8B, 0xE0, 0xD6, 0x4F, 0xA3, 0x2C, 0x06, 0xDE, 0x41, 0x39,
];
const SALT: [u8; 14] = [
    0x0E, 0xC6, 0x75, 0xAD, 0x49, 0x8A, 0xFE, 0xEB, 0xB6, 0x96, 0x0B, 0x3A, 0xAB, 0xE6,
];

fn theirs(suite: Suite) -> Context {
    let profile = match suite {
        Suite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        Suite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        Suite::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
    };
    Context::new(&KEY, &SALT[..suite.salt_len()], profile, None, None).expect("their context")
}

fn ours(suite: Suite) -> Session {
    Session::new(suite, &KEY, &SALT[..suite.salt_len()]).expect("our session")
}

/// An RTP packet: PCMU, `seq`, with a 160-byte payload.
fn rtp(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(seq as u32 * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..160u16).map(|i| i.wrapping_add(seq) as u8));
    p
}

/// A receiver report with no blocks, then an SDES with a CNAME.
fn rtcp(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 201, 0x00, 0x01];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0x81, 202, 0x00, 0x03]);
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[1, 3, b'a', b'b', b'c', 0, 0, 0]);
    p
}

fn protect(s: &mut Session, plain: &[u8]) -> Vec<u8> {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + 32, 0);
    let n = s.protect_rtp(&mut buf, plain.len()).expect("protect");
    buf.truncate(n);
    buf
}

#[test]
fn what_we_protect_they_unprotect_and_the_other_way_round() {
    for suite in Suite::ALL {
        let (mut we_send, mut they_receive) = (ours(suite), theirs(suite));
        let (mut they_send, mut we_receive) = (theirs(suite), ours(suite));
        // Across a sequence wrap: the rollover counter must agree.
        for seq in (65_530u16..=65_535).chain(0..6) {
            let plain = rtp(seq, 0x1234_5678);
            let wire = protect(&mut we_send, &plain);
            assert_eq!(wire.len(), plain.len() + suite.rtp_overhead());
            let back = they_receive.decrypt_rtp(&wire).expect("they decrypt ours");
            assert_eq!(back.as_ref(), &plain[..], "{suite:?} seq {seq}");

            let wire = they_send.encrypt_rtp(&plain).expect("they encrypt");
            let mut buf = wire.to_vec();
            let n = we_receive
                .unprotect_rtp(&mut buf)
                .expect("we decrypt theirs");
            assert_eq!(&buf[..n], &plain[..], "{suite:?} seq {seq}");
        }
        for _ in 0..3 {
            let plain = rtcp(0x1234_5678);
            let mut buf = plain.clone();
            buf.resize(plain.len() + 32, 0);
            let n = we_send.protect_rtcp(&mut buf, plain.len()).unwrap();
            let back = they_receive
                .decrypt_rtcp(&buf[..n])
                .expect("they decrypt our SRTCP");
            assert_eq!(back.as_ref(), &plain[..], "{suite:?}");

            let wire = they_send.encrypt_rtcp(&plain).expect("they encrypt RTCP");
            let mut buf = wire.to_vec();
            let n = we_receive
                .unprotect_rtcp(&mut buf)
                .expect("we decrypt their SRTCP");
            assert_eq!(&buf[..n], &plain[..], "{suite:?}");
        }
    }
}

#[test]
fn replays_forgeries_and_truncations_are_refused() {
    for suite in Suite::ALL {
        let (mut tx, mut rx) = (ours(suite), ours(suite));
        let wire = protect(&mut tx, &rtp(7, 42));
        let mut a = wire.clone();
        assert!(rx.unprotect_rtp(&mut a).is_ok());
        let mut again = wire.clone();
        assert_eq!(rx.unprotect_rtp(&mut again), Err(Error::Replay));
        let mut bad = protect(&mut tx, &rtp(8, 42));
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(rx.unprotect_rtp(&mut bad), Err(Error::Auth), "{suite:?}");
        let mut flipped = protect(&mut tx, &rtp(9, 42));
        flipped[20] ^= 0x80;
        assert_eq!(rx.unprotect_rtp(&mut flipped), Err(Error::Auth));
        // The forged packets did not move the window: 8 and 9 still pass.
        for seq in [8u16, 9] {
            let mut ok = protect(&mut ours(suite), &rtp(seq, 42));
            assert!(rx.unprotect_rtp(&mut ok).is_ok(), "{suite:?} {seq}");
        }
        assert_eq!(rx.unprotect_rtp(&mut [0x80, 0, 0]), Err(Error::Malformed));
        let mut wrong_key = Session::new(suite, &[9; 16], &SALT[..suite.salt_len()]).unwrap();
        let mut w = protect(&mut wrong_key, &rtp(10, 42));
        assert_eq!(rx.unprotect_rtp(&mut w), Err(Error::Auth));
        // SRTCP: a replayed index is refused.
        let plain = rtcp(42);
        let mut buf = plain.clone();
        buf.resize(plain.len() + 32, 0);
        let n = tx.protect_rtcp(&mut buf, plain.len()).unwrap();
        let mut first = buf[..n].to_vec();
        let mut second = buf[..n].to_vec();
        assert!(rx.unprotect_rtcp(&mut first).is_ok());
        assert_eq!(rx.unprotect_rtcp(&mut second), Err(Error::Replay));
    }
}

#[test]
fn the_rollover_counter_survives_reordering_across_the_wrap() {
    let (mut tx, mut rx) = (
        ours(Suite::AesCm128HmacSha1_80),
        ours(Suite::AesCm128HmacSha1_80),
    );
    let packets: Vec<Vec<u8>> = (65_533u16..=65_535)
        .chain(0..3)
        .map(|s| protect(&mut tx, &rtp(s, 5)))
        .collect();
    // 65533, 65534, then 0 and 1 before 65535 arrives late, then 2.
    for i in [0usize, 1, 3, 4, 2, 5] {
        let mut p = packets[i].clone();
        assert!(rx.unprotect_rtp(&mut p).is_ok(), "packet {i}");
    }
}

#[test]
fn no_room_for_the_tag_is_an_error_not_a_panic() {
    let mut s = ours(Suite::AesCm128HmacSha1_80);
    let mut p = rtp(1, 1);
    let len = p.len();
    assert_eq!(s.protect_rtp(&mut p, len), Err(Error::NoRoom));
    assert_eq!(
        Session::new(Suite::AeadAes128Gcm, &KEY, &SALT).err(),
        Some(Error::KeyLength),
        "GCM's salt is 12 bytes"
    );
}
