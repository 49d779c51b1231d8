//! # sdp: session descriptions for confab
//!
//! [`Session::parse`] reads an SDP body with Mozilla's webrtc-sdp (the
//! parser Firefox ships) into the small model a conference focus acts on;
//! [`negotiate`] and [`answer`] are our RFC 3264 offer/answer for one audio
//! stream, and [`offer`] / [`accept_answer`] cover INVITEs without SDP.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub)]

mod model;
mod offer_answer;
mod sdes;

pub use model::{Direction, Format, MediaLine, OpusParams, SdpError, Session};
pub use offer_answer::{
    accept_answer, answer, negotiate, offer, CodecPref, Negotiated, NegotiationError, Preferences,
    CSRC_AUDIO_LEVEL, SSRC_AUDIO_LEVEL,
};
pub use sdes::Crypto;

#[cfg(test)]
mod tests {
    use super::*;

    const PHONE: &str = "v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
m=audio 49170 RTP/AVP 0 8 9 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n\
m=video 51372 RTP/AVP 31\r\na=rtpmap:31 H261/90000\r\n";

    #[test]
    fn answer_picks_our_preference_and_declines_video() {
        let offer = Session::parse(PHONE).unwrap();
        let n = negotiate(&offer, &Preferences::default()).unwrap();
        assert_eq!((n.codec, n.pt, n.dtmf_pt), ("G722", 9, Some(101)));
        assert_eq!(n.remote, "192.0.2.10:49170".parse().unwrap());
        assert_eq!(n.remote_rtcp, Some("192.0.2.10:49171".parse().unwrap()));
        let text = answer(
            &offer,
            &n,
            "127.0.0.1:20000".parse().unwrap(),
            Direction::SendRecv,
            7,
            1,
        );
        let a = Session::parse(&text).unwrap();
        assert_eq!(a.media.len(), 2);
        assert_eq!(a.media[0].format_ids, vec!["9", "101"]);
        assert_eq!(a.media[1].port, 0);
        assert!(text.contains("a=rtpmap:9 G722/8000\r\n"));
    }

    #[test]
    fn opus_mux_levels_and_hold() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 111 0 126\r\nc=IN IP4 10.0.0.1\r\n\
a=rtpmap:111 opus/48000/2\r\na=rtpmap:126 telephone-event/48000\r\na=rtcp-mux\r\na=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\na=sendonly\r\n";
        let offer = Session::parse(sdp).unwrap();
        let n = negotiate(&offer, &Preferences::default()).unwrap();
        assert_eq!(
            (n.codec, n.pt, n.dtmf_pt, n.rtcp_mux, n.audio_level_ext),
            ("opus", 111, Some(126), true, Some(1))
        );
        assert_eq!(n.remote_direction, Direction::SendOnly);
        let text = answer(
            &offer,
            &n,
            "127.0.0.1:20002".parse().unwrap(),
            n.remote_direction.reversed(),
            1,
            2,
        );
        assert!(text.contains("a=recvonly"));
        assert!(text.contains("a=rtcp-mux"));
        assert!(text.contains("a=rtpmap:111 opus/48000/2"));
    }

    /// What baresip offers: Opus with RFC 7587 parameters and
    /// telephone-event at 8 kHz, which the answer keeps at 8 kHz.
    #[test]
    fn opus_fmtp_and_telephone_event_at_another_clock() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 116 0 101\r\n\
a=rtpmap:116 opus/48000/2\r\na=fmtp:116 stereo=1;sprop-stereo=1;maxaveragebitrate=20000;maxplaybackrate=16000;sprop-maxcapturerate=16000;useinbandfec=1;usedtx=1\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=maxptime:60\r\na=sendrecv\r\n";
        let offer = Session::parse(sdp).unwrap();
        let n = negotiate(&offer, &Preferences::default()).unwrap();
        assert_eq!(
            (n.codec, n.pt, n.dtmf_pt, n.dtmf_clock),
            ("opus", 116, Some(101), 8000)
        );
        assert_eq!(n.remote_maxptime, Some(60));
        let o = n.opus.unwrap();
        assert_eq!(
            (
                o.max_playback_rate,
                o.sprop_max_capture_rate,
                o.max_average_bitrate
            ),
            (16000, Some(16000), Some(20000))
        );
        assert!(o.stereo && o.sprop_stereo && o.use_inband_fec && o.use_dtx && !o.cbr);
        let text = answer(
            &offer,
            &n,
            "127.0.0.1:20002".parse().unwrap(),
            Direction::SendRecv,
            1,
            2,
        );
        assert!(text.contains("m=audio 20002 RTP/AVP 116 101\r\n"), "{text}");
        assert!(
            text.contains("a=rtpmap:101 telephone-event/8000\r\n"),
            "{text}"
        );
        // A phone with events at both rates gets the codec's.
        let both = sdp.replace("116 0 101", "116 0 101 102").replace(
            "a=fmtp:101 0-15",
            "a=fmtp:101 0-15\r\na=rtpmap:102 telephone-event/48000",
        );
        let n = negotiate(&Session::parse(&both).unwrap(), &Preferences::default()).unwrap();
        assert_eq!((n.dtmf_pt, n.dtmf_clock), (Some(102), 48000));
    }

    #[test]
    fn refusals() {
        let video_only = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=video 4000 RTP/AVP 31\r\n";
        assert_eq!(
            negotiate(
                &Session::parse(video_only).unwrap(),
                &Preferences::default()
            ),
            Err(NegotiationError::NoAudio)
        );
        let g729 = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18\r\n";
        assert!(matches!(
            negotiate(&Session::parse(g729).unwrap(), &Preferences::default()),
            Err(NegotiationError::NoCommonCodec(_))
        ));
        assert!(Session::parse("v=0\r\nthis is not sdp\r\n").is_err());
        assert!(Session::parse("").is_err());
    }

    #[test]
    fn our_offer_and_the_answer_to_it() {
        let prefs = Preferences::default();
        let text = offer(
            &prefs,
            "127.0.0.1:20004".parse().unwrap(),
            Direction::SendRecv,
            3,
            1,
            &[],
        );
        let o = Session::parse(&text).unwrap();
        assert_eq!(o.media[0].formats.len(), 5);
        let reply = "v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";
        let n = accept_answer(&prefs, &Session::parse(reply).unwrap()).unwrap();
        assert_eq!((n.codec, n.pt), ("PCMU", 0));
        let bad = "v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=audio 5000 RTP/AVP 96\r\na=rtpmap:96 PCMU/8000\r\n";
        assert!(accept_answer(&prefs, &Session::parse(bad).unwrap()).is_err());
    }

    #[test]
    fn an_rtp_savp_offer_takes_the_first_key_we_can_use_and_the_answer_is_savp() {
        let offer = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
            m=audio 4000 RTP/SAVP 0\r\n\
            a=crypto:1 AES_CM_256_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v\r\n\
            a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32\r\n\
            a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n";
        let o = Session::parse(offer).unwrap();
        assert!(o.media[0].secure && !o.media[0].plain_rtp);
        let mut n = negotiate(&o, &Preferences::default()).unwrap();
        let c = n.crypto.clone().expect("a key");
        // Not the 256-bit suite (not ours), not the one with an MKI.
        assert_eq!((c.tag, c.suite.as_str()), (3, "AES_CM_128_HMAC_SHA1_32"));
        n.local_crypto = Some(Crypto {
            key_salt: vec![1; 30],
            ..c
        });
        let text = answer(
            &o,
            &n,
            "127.0.0.1:20000".parse().unwrap(),
            Direction::SendRecv,
            1,
            1,
        );
        assert!(text.contains("m=audio 20000 RTP/SAVP 0\r\n"), "{text}");
        assert!(
            text.contains("a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:AQEB"),
            "{text}"
        );
        let none = offer
            .replace("a=crypto:3", "a=crypto-not:3")
            .replace("|2^20|1:32", "|2^20|1:4");
        let o = Session::parse(&none).unwrap();
        assert!(matches!(
            negotiate(&o, &Preferences::default()),
            Err(NegotiationError::NoCommonCrypto(_))
        ));
    }
}
