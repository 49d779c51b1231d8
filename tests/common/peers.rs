//! What the interop tests share about third-party peers' audio: a tone
//! for SIPp's rtp_stream, and the level of a tone in a WAV a peer recorded.

use std::path::Path;

use media_server::codec::{CodecKind, Encoder, OpusConfig};
use media_server::tone::goertzel;

/// One second of a 1 kHz tone at -16 dBFS, as raw µ-law for SIPp's
/// rtp_stream, written to `dir/tone.ulaw`.
pub fn write_ulaw_tone(dir: &Path) {
    let pcm: Vec<i16> = (0..8000)
        .map(|i| (5000.0 * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / 8000.0).sin()) as i16)
        .collect();
    let mut enc = Encoder::new(CodecKind::Pcmu, &OpusConfig::default()).unwrap();
    let mut out = Vec::new();
    for frame in pcm.chunks(160) {
        let mut buf = [0u8; 160];
        let n = enc.encode(frame, &mut buf).unwrap();
        out.extend_from_slice(&buf[..n]);
    }
    std::fs::write(dir.join("tone.ulaw"), out).unwrap();
}

/// A 16-bit PCM WAV's first channel, and its rate.
pub fn read_wav_mono(wav: &Path) -> (Vec<i16>, u32) {
    let b = std::fs::read(wav).unwrap_or_else(|e| panic!("{}: {e}", wav.display()));
    let (mut i, mut channels, mut rate, mut samples) = (12, 1usize, 8000u32, Vec::new());
    while i + 8 <= b.len() {
        let len = u32::from_le_bytes([b[i + 4], b[i + 5], b[i + 6], b[i + 7]]) as usize;
        let body = &b[i + 8..(i + 8 + len).min(b.len())];
        match &b[i..i + 4] {
            b"fmt " => {
                channels = u16::from_le_bytes([body[2], body[3]]) as usize;
                rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
            }
            b"data" => {
                samples = body
                    .chunks_exact(2 * channels)
                    .map(|f| i16::from_le_bytes([f[0], f[1]]))
                    .collect();
            }
            _ => {}
        }
        i += 8 + len + (len & 1);
    }
    (samples, rate)
}

/// The level of a `freq` tone in `samples`, in dBFS (a full-scale sine is 0).
pub fn tone_dbfs(samples: &[i16], rate: u32, freq: f64) -> f64 {
    10.0 * (goertzel(samples, rate, freq) / (16384.0f64 * 16384.0))
        .max(1e-12)
        .log10()
}

/// A baresip to start: who, its account line (`{sip}` is replaced by its
/// SIP port), the sine it plays, what it runs, for how long, and config
/// lines besides the usual ones.
pub struct Baresip<'a> {
    /// User name, and the directory name under the base.
    pub user: &'a str,
    /// The account line before `;answermode=auto;...`.
    pub account: String,
    /// The sine it plays, Hz.
    pub freq: u32,
    /// A command to run at start (`/dial ...`), or none to wait for a call.
    pub command: Option<String>,
    /// Seconds until it quits.
    pub secs: u32,
    /// More config lines (TLS files, say).
    pub extra_config: String,
}

impl<'a> Baresip<'a> {
    /// A phone without a registration that plays `freq` and calls `uri`,
    /// staying `secs` seconds.
    pub fn dialing(user: &'a str, freq: u32, uri: &str, secs: u32) -> Self {
        Self {
            user,
            account: format!("<sip:{user}@127.0.0.1:{{sip}}>;regint=0"),
            freq,
            command: Some(format!("/dial {uri}")),
            secs,
            extra_config: String::new(),
        }
    }
}

/// Starts a baresip that auto-answers, plays its sine and records what it
/// hears (PCMU, 20 ms); its directory, SIP port and process.
pub fn baresip(base: &Path, b: Baresip<'_>) -> (std::path::PathBuf, u16, std::process::Child) {
    use crate::common::free_port;
    let user = b.user;
    let dir = base.join(user);
    std::fs::create_dir_all(dir.join("rec")).unwrap();
    let (sip, rtp) = (free_port(), free_port());
    std::fs::write(
        dir.join("config"),
        format!(
            "poll_method epoll\nnet_interface 127.0.0.1\nsip_listen 127.0.0.1:{sip}\ncall_local_timeout 120\n\
             audio_path /usr/share/baresip\naudio_source ausine,{}\naudio_player aubridge,{user}\naudio_alert aubridge,{user}\n\
             audio_level no\nausrc_format s16\nauplay_format s16\nauenc_format s16\naudec_format s16\naudio_buffer 20-160\n\
             rtp_ports {rtp}-{}\nrtcp_mux no\njitter_buffer_delay 5-10\nmodule_path /usr/lib/baresip/modules\n\
             module g711.so\nmodule ausine.so\nmodule aubridge.so\nmodule sndfile.so\nmodule cons.so\n\
             module_tmp uuid.so\nmodule_tmp account.so\nmodule_app menu.so\nsnd_path {}\nstatmode_default off\n\
             ausrc_srate 48000\nausrc_channels 2\ncons_listen 127.0.0.1:{}\n{}",
            b.freq,
            rtp + 9,
            dir.join("rec").display(),
            free_port(),
            b.extra_config
        ),
    )
    .unwrap();
    let account = b.account.replace("{sip}", &sip.to_string());
    std::fs::write(
        dir.join("accounts"),
        format!("{account};answermode=auto;audio_codecs=pcmu;ptime=20\n"),
    )
    .unwrap();
    let mut cmd = std::process::Command::new("timeout");
    cmd.arg((b.secs + 20).to_string())
        .args(["baresip", "-f"])
        .arg(&dir);
    if let Some(c) = &b.command {
        cmd.args(["-e", c]);
    }
    let child = cmd
        .args(["-t", &b.secs.to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start baresip");
    (dir, sip, child)
}

/// The level of a `freq` tone, in dBFS, over the middle of what a
/// baresip started by [`baresip`] decoded.
pub fn baresip_heard(dir: &Path, freq: f64) -> f64 {
    let wav = std::fs::read_dir(dir.join("rec"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
        .unwrap_or_else(|| panic!("no recording in {}", dir.display()));
    let (samples, rate) = read_wav_mono(&wav);
    assert!(
        samples.len() > rate as usize * 3,
        "{}: too short",
        wav.display()
    );
    tone_dbfs(
        &samples[samples.len() / 3..samples.len() * 9 / 10],
        rate,
        freq,
    )
}
