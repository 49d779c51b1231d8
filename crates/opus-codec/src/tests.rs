use super::*;

fn sine(freq: f64, rate: u32, n: usize, amp: f64) -> Vec<i16> {
    (0..n)
        .map(|i| (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin()) as i16)
        .collect()
}

fn rms(x: &[i16]) -> f64 {
    (x.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
}

#[test]
fn a_tone_comes_back_at_its_level() {
    let mut enc = Encoder::new(
        SampleRate::Hz48000,
        Channels::Mono,
        Application::Voip,
        &EncoderSettings::default(),
    )
    .unwrap();
    let mut dec = Decoder::new(SampleRate::Hz48000, Channels::Mono).unwrap();
    let input = sine(450.0, 48000, 960 * 100, 3000.0);
    let mut out = Vec::new();
    for frame in input.chunks(960) {
        let mut pkt = [0u8; 1500];
        let n = enc.encode(frame, &mut pkt).unwrap();
        assert_eq!(packet_samples(&pkt[..n]).unwrap(), 960);
        let mut pcm = [0i16; 960];
        assert_eq!(dec.decode(&pkt[..n], &mut pcm).unwrap(), 960);
        out.extend_from_slice(&pcm);
    }
    let db = 20.0 * (rms(&out[48000..]) / rms(&input[48000..])).log10();
    assert!(db.abs() < 1.0, "level off by {db:.2} dB");
}

#[test]
fn bad_sizes_and_garbage_are_errors_not_crashes() {
    let mut enc = Encoder::new(
        SampleRate::Hz48000,
        Channels::Mono,
        Application::Voip,
        &EncoderSettings::default(),
    )
    .unwrap();
    let mut pkt = [0u8; 1500];
    assert_eq!(enc.encode(&[0; 961], &mut pkt), Err(Error::BadArg));
    assert!(enc.encode(&[0; 960], &mut [0u8; 0]).is_err());
    let mut dec = Decoder::new(SampleRate::Hz48000, Channels::Mono).unwrap();
    let mut pcm = [0i16; 5760];
    assert_eq!(dec.decode(&[], &mut pcm), Err(Error::InvalidPacket));
    for len in [1usize, 2, 3, 17, 200, 1275, 1500] {
        for seed in 0..16usize {
            let junk: Vec<u8> = (0..len)
                .map(|i| ((i * 37 + seed * 101) % 251) as u8)
                .collect();
            let _ = dec.decode(&junk, &mut pcm);
            let _ = dec.decode_fec(&junk, &mut pcm[..960]);
        }
    }
    assert_eq!(dec.conceal(&mut pcm[..960]), Ok(960));
    assert_eq!(dec.conceal(&mut pcm[..7]), Err(Error::BadArg));
    dec.reset().unwrap();
}

#[test]
fn toc_durations_follow_rfc_6716() {
    // config 1 (SILK NB 20 ms), code 0.
    assert_eq!(packet_samples(&[1 << 3]).unwrap(), 960);
    // config 3 (SILK NB 60 ms), code 0.
    assert_eq!(packet_samples(&[3 << 3]).unwrap(), 2880);
    // config 31 (CELT FB 20 ms), code 1: two frames.
    assert_eq!(packet_samples(&[(31 << 3) | 1]).unwrap(), 1920);
    // code 3 with 6 frames of 20 ms = 120 ms; 7 would exceed the limit.
    assert_eq!(packet_samples(&[(31 << 3) | 3, 6]).unwrap(), 5760);
    assert_eq!(
        packet_samples(&[(31 << 3) | 3, 7]),
        Err(Error::InvalidPacket)
    );
    assert_eq!(packet_samples(&[(31 << 3) | 3]), Err(Error::InvalidPacket));
    assert_eq!(
        Toc::parse(&[(9 << 3) | 4]).unwrap().bandwidth(),
        Bandwidth::Wide
    );
    assert!(Toc::parse(&[4]).unwrap().stereo);
}

/// Concealment never saturates: CELT (and, with the system libopus, SILK)
/// losses are concealed by libopus below the signal's level; in the
/// pure-Rust build a SILK stream's loss is handed back to the caller.
#[test]
fn concealment_is_sound_or_declined() {
    for app in [Application::Voip, Application::LowDelay] {
        let mut enc = Encoder::new(
            SampleRate::Hz48000,
            Channels::Mono,
            app,
            &EncoderSettings::default(),
        )
        .unwrap();
        let mut dec = Decoder::new(SampleRate::Hz48000, Channels::Mono).unwrap();
        let input = sine(1000.0, 48000, 960 * 20, 3000.0);
        let mut last = [0u8; 1500];
        for frame in input.chunks(960) {
            let n = enc.encode(frame, &mut last).unwrap();
            let mut pcm = [0i16; 960];
            dec.decode(&last[..n], &mut pcm).unwrap();
        }
        let mode = Toc::parse(&last).unwrap().mode();
        let mut lost = [0i16; 960];
        match dec.conceal(&mut lost) {
            Ok(n) => {
                assert_eq!(n, 960);
                assert!(
                    rms(&lost) < 4000.0,
                    "{mode:?}: concealment at rms {}",
                    rms(&lost)
                );
            }
            Err(e) => {
                assert_eq!(e, Error::PlcUnavailable);
                assert!(!cfg!(feature = "system-libopus") && mode != Mode::Celt);
            }
        }
    }
}
