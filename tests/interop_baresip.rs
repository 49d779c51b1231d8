//! baresip interop: two headless baresip instances (Debian `baresip`,
//! `ausine` tone sources, the `sndfile` module recording what each one
//! decodes) dial the same room, one on PCMU and one on G.722. Each
//! recording must hold the other's tone and not its own. Without baresip
//! the test says so and passes, unless `CONFAB_INTEROP=1`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::Server;
use media_server::tone::goertzel;

/// Writes a baresip config directory: no sound card, a sine source, the
/// decoded audio recorded by sndfile, one account that auto-answers.
fn baresip_dir(
    base: &Path,
    user: &str,
    sip_port: u16,
    rtp: (u16, u16),
    freq: u32,
    codec: &str,
) -> PathBuf {
    let dir = base.join(user);
    std::fs::create_dir_all(dir.join("rec")).unwrap();
    let config = format!(
        "poll_method epoll\nnet_interface 127.0.0.1\nsip_listen 127.0.0.1:{sip_port}\ncall_local_timeout 120\ncall_max_calls 4\n\
         audio_path /usr/share/baresip\naudio_source ausine,{freq}\naudio_player aubridge,{user}\naudio_alert aubridge,{user}\n\
         audio_level no\nausrc_format s16\nauplay_format s16\nauenc_format s16\naudec_format s16\naudio_buffer 20-160\n\
         rtp_ports {}-{}\nrtcp_mux no\njitter_buffer_delay 5-10\nmodule_path /usr/lib/baresip/modules\n\
         module g711.so\nmodule g722.so\nmodule opus.so\nmodule ausine.so\nmodule aubridge.so\nmodule sndfile.so\nmodule cons.so\n\
         module_tmp uuid.so\nmodule_tmp account.so\nmodule_app menu.so\nsnd_path {}\nstatmode_default off\n\
         ausrc_srate 48000\nausrc_channels 2\ncons_listen 127.0.0.1:{}\n",
        rtp.0,
        rtp.1,
        dir.join("rec").display(),
        sip_port + 1000
    );
    std::fs::write(dir.join("config"), config).unwrap();
    std::fs::write(dir.join("accounts"), format!("<sip:{user}@127.0.0.1:{sip_port}>;regint=0;answermode=auto;audio_codecs={codec};ptime=20\n")).unwrap();
    dir
}

/// Reads a 16-bit PCM WAV into mono samples and its rate.
fn read_wav(path: &Path) -> (Vec<i16>, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..4], b"RIFF");
    let (mut i, mut channels, mut rate, mut data) = (12, 1usize, 8000u32, Vec::new());
    while i + 8 <= b.len() {
        let id = &b[i..i + 4];
        let len = u32::from_le_bytes([b[i + 4], b[i + 5], b[i + 6], b[i + 7]]) as usize;
        let body = &b[i + 8..(i + 8 + len).min(b.len())];
        if id == b"fmt " {
            channels = u16::from_le_bytes([body[2], body[3]]) as usize;
            rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
        } else if id == b"data" {
            data = body
                .chunks_exact(2 * channels)
                .map(|f| i16::from_le_bytes([f[0], f[1]]))
                .collect();
        }
        i += 8 + len + (len & 1);
    }
    (data, rate)
}

fn recording(dir: &Path, suffix: &str) -> PathBuf {
    std::fs::read_dir(dir.join("rec"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(suffix))
        .unwrap_or_else(|| panic!("no {suffix} recording in {}", dir.display()))
}

fn decoded_wav(dir: &Path) -> PathBuf {
    recording(dir, "-dec.wav")
}

/// A tone's level in dB full scale over the middle of a recording.
fn tone_level(path: &Path, freq: f64) -> f64 {
    let (samples, rate) = read_wav(path);
    assert!(
        samples.len() > rate as usize * 3,
        "{}: too short",
        path.display()
    );
    let mid = &samples[samples.len() / 3..samples.len() * 9 / 10];
    10.0 * (goertzel(mid, rate, freq) / (16384.0f64 * 16384.0))
        .max(1e-12)
        .log10()
}

#[test]
fn two_baresips_hear_each_other_not_themselves() {
    if !common::peer_tool("baresip", "baresip") {
        return;
    }
    let server = Server::start(&[]);
    let base = std::env::temp_dir().join(format!("confab-baresip-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let p = common::free_span(40);
    let alice = baresip_dir(&base, "alice", p + 2, (p + 10, p + 19), 440, "pcmu");
    let bob = baresip_dir(&base, "bob", p + 6, (p + 20, p + 29), 1000, "g722");
    let target = format!("sip:room@{}", server.sip);
    let spawn = |dir: &Path| {
        Command::new("timeout")
            .args(["40", "baresip", "-f"])
            .arg(dir)
            .args(["-e", &format!("/dial {target}"), "-t", "10"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start baresip")
    };
    let a = spawn(&alice);
    std::thread::sleep(Duration::from_millis(300));
    let b = spawn(&bob);
    let (oa, ob) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let logs = format!(
        "{}\n{}",
        String::from_utf8_lossy(&oa.stdout),
        String::from_utf8_lossy(&ob.stdout)
    );
    assert!(
        logs.matches("Call established").count() >= 2,
        "both calls established:\n{logs}"
    );
    for (dir, own, other) in [(&alice, 440.0, 1000.0), (&bob, 1000.0, 440.0)] {
        let (samples, rate) = read_wav(&decoded_wav(dir));
        assert!(
            samples.len() > rate as usize * 3,
            "{}: {} samples",
            dir.display(),
            samples.len()
        );
        let tail = &samples[samples.len() / 3..samples.len() * 9 / 10];
        let hears_other = goertzel(tail, rate, other);
        let hears_self = goertzel(tail, rate, own);
        assert!(
            hears_other > 1000.0,
            "{} does not hear {other} Hz: {hears_other}\n{logs}",
            dir.display()
        );
        assert!(
            hears_self * 100.0 < hears_other,
            "{} hears itself: {own} Hz {hears_self} vs {hears_other}",
            dir.display()
        );
    }
    let _ = std::fs::remove_dir_all(&base);
}

/// Two baresips on Opus (libopus) and one on PCMU in one room: each hears
/// the other two at the level they sent (what their own sndfile recorded
/// going into their encoder), within 1 dB, and not itself.
#[test]
fn opus_and_pcmu_baresips_hear_each_other_at_their_level() {
    if !common::peer_tool("baresip", "baresip") {
        return;
    }
    let server = Server::start(&[]);
    let base = std::env::temp_dir().join(format!("confab-baresip-opus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let p = common::free_span(40);
    let phones = [
        (
            "ann",
            450.0,
            baresip_dir(&base, "ann", p + 2, (p + 10, p + 19), 450, "opus"),
        ),
        (
            "ben",
            850.0,
            baresip_dir(&base, "ben", p + 4, (p + 20, p + 29), 850, "opus"),
        ),
        (
            "cat",
            1250.0,
            baresip_dir(&base, "cat", p + 6, (p + 30, p + 39), 1250, "pcmu"),
        ),
    ];
    let target = format!("sip:opusroom@{}", server.sip);
    let children: Vec<_> = phones
        .iter()
        .map(|(_, _, dir)| {
            let child = Command::new("timeout")
                .args(["40", "baresip", "-f"])
                .arg(dir)
                .args(["-e", &format!("/dial {target}"), "-t", "12"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start baresip");
            std::thread::sleep(Duration::from_millis(300));
            child
        })
        .collect();
    let logs: String = children
        .into_iter()
        .map(|c| String::from_utf8_lossy(&c.wait_with_output().unwrap().stdout).into_owned())
        .collect();
    assert!(
        logs.matches("Call established").count() >= 3,
        "three calls established:\n{logs}"
    );
    for (name, own, dir) in &phones {
        let heard = decoded_wav(dir);
        for (other, freq, other_dir) in &phones {
            let level = tone_level(&heard, *freq);
            if other == name {
                let sent = tone_level(&recording(dir, "-enc.wav"), *own);
                eprintln!("{name} hears itself at {level:.2} dBFS (sends {sent:.2})");
                assert!(level < sent - 30.0, "{name} hears itself: {level:.2} dBFS");
                continue;
            }
            let sent = tone_level(&recording(other_dir, "-enc.wav"), *freq);
            eprintln!("{name} hears {other} ({freq} Hz) at {level:.2} dBFS, sent at {sent:.2}");
            assert!(
                (level - sent).abs() <= 1.0,
                "{name} hears {other} at {level:.2} dBFS, sent at {sent:.2}\n{logs}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&base);
}

/// Samples of a WAV between two times, in seconds from its start.
fn window(samples: &[i16], rate: u32, from: f64, to: f64) -> &[i16] {
    let at = |t: f64| ((t * rate as f64) as usize).min(samples.len());
    &samples[at(from)..at(to)]
}

/// baresip on Opus offers `telephone-event/8000` beside `opus/48000`: the
/// answer keeps the events, so its user's keys work. It keys `*6` (RFC 4733,
/// sent by baresip's own `/sndcode`) and the room stops hearing it.
#[test]
fn an_opus_baresip_keys_star_6_and_is_no_longer_heard() {
    if !common::peer_tool("baresip", "baresip") {
        return;
    }
    let server = Server::start(&[]);
    let base = std::env::temp_dir().join(format!("confab-baresip-dtmf-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let p = common::free_span(40);
    let ann = baresip_dir(&base, "ann", p + 2, (p + 10, p + 19), 450, "opus");
    let cat = baresip_dir(&base, "cat", p + 6, (p + 30, p + 39), 1250, "pcmu");
    let target = format!("sip:keyroom@{}", server.sip);
    let spawn = |dir: &Path| {
        Command::new("timeout")
            .args(["40", "baresip", "-f"])
            .arg(dir)
            .args(["-e", &format!("/dial {target}"), "-t", "12"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start baresip")
    };
    let a = spawn(&ann);
    std::thread::sleep(Duration::from_millis(300));
    let c = spawn(&cat);
    std::thread::sleep(Duration::from_millis(5000));
    // baresip's console (its `cons` module) on sip_port + 1000.
    let console = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    console
        .send_to(b"/sndcode *6\n", ("127.0.0.1", p + 2 + 1000))
        .unwrap();
    let (oa, oc) = (a.wait_with_output().unwrap(), c.wait_with_output().unwrap());
    let logs = format!(
        "{}\n{}",
        String::from_utf8_lossy(&oa.stdout),
        String::from_utf8_lossy(&oc.stdout)
    );
    assert!(
        logs.matches("Call established").count() >= 2,
        "both calls established:\n{logs}"
    );
    let (samples, rate) = read_wav(&decoded_wav(&cat));
    assert!(
        samples.len() >= rate as usize * 10,
        "cat recorded {} s",
        samples.len() / rate as usize
    );
    let level = |s: &[i16]| {
        10.0 * (goertzel(s, rate, 450.0) / (16384.0f64 * 16384.0))
            .max(1e-12)
            .log10()
    };
    let before = level(window(&samples, rate, 1.5, 3.5));
    let after = level(window(&samples, rate, 6.5, 10.0));
    eprintln!("cat hears ann at {before:.1} dBFS before *6, {after:.1} dBFS after");
    assert!(
        before > -30.0,
        "ann is heard before *6: {before:.1} dBFS\n{logs}"
    );
    assert!(
        after < before - 30.0,
        "ann is not heard after *6: {after:.1} dBFS (before {before:.1})\n{logs}"
    );
    let _ = std::fs::remove_dir_all(&base);
}
