//! Opus against an independent implementation: libopus as opus-tools ships
//! it (`opusenc`, `opusdec`). confab decodes what `opusenc` makes to within
//! 1 dB of what `opusdec` makes of the same packets; `opusdec` hears what
//! confab encodes, alone and as a room's mix, at the level it was sent.
//!
//! Without opus-tools the decoding test uses packets committed as data
//! (`tests/opus/fixtures`, written by `tests/opus/make_fixtures.sh` with the
//! levels opusdec measured); the encoding tests print SKIPPED. With
//! `CONFAB_INTEROP=1` (CI) a missing tool is a failure.

mod ogg;
mod recording;
mod signals;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use media_server::codec::{CodecKind, Decoder, Encoder, OpusConfig, MAX_FRAME_SAMPLES};
use media_server::jitter::MAX_PAYLOAD;
use media_server::mixer::{
    Command as MixCommand, InPacket, Mixer, PacketOut, Participant, ParticipantId,
    ParticipantSettings, ParticipantStats, Room, RoomId, RoomSettings,
};

use signals::{downmix, middle, rms_db, tone_db};

/// One way of encoding a test signal with opusenc.
struct Case {
    name: &'static str,
    /// A tone per channel; empty for the speech-like signal.
    freqs: &'static [f64],
    rate: u32,
    frame_ms: u32,
    bitrate_kbps: u32,
    args: &'static [&'static str],
    gaps: bool,
    /// Length of the signal.
    secs: f64,
}

const fn case(name: &'static str, freqs: &'static [f64], rate: u32, frame_ms: u32) -> Case {
    Case {
        name,
        freqs,
        rate,
        frame_ms,
        bitrate_kbps: 32,
        args: &[],
        gaps: false,
        secs: SECS,
    }
}

/// OPUS_SET_INBAND_FEC and OPUS_SET_DTX, for `--set-ctl-int`.
const FEC: &[&str] = &["--set-ctl-int", "4012=1", "--expect-loss", "20"];
const DTX: &[&str] = &["--set-ctl-int", "4016=1"];
const CBR: &[&str] = &["--hard-cbr"];

const CASES: &[Case] = &[
    case("tone200_48k_20ms", &[200.0], 48_000, 20),
    case("tone450_48k_20ms", &[450.0], 48_000, 20),
    case("tone1000_48k_20ms", &[1000.0], 48_000, 20),
    case("tone1450_48k_20ms", &[1450.0], 48_000, 20),
    case("tone3000_48k_20ms", &[3000.0], 48_000, 20),
    case("tone7000_48k_20ms", &[7000.0], 48_000, 20),
    case("tone450_16k_20ms", &[450.0], 16_000, 20),
    case("tone3000_16k_20ms", &[3000.0], 16_000, 20),
    case("tone1000_48k_40ms", &[1000.0], 48_000, 40),
    case("tone1000_48k_60ms", &[1000.0], 48_000, 60),
    Case {
        bitrate_kbps: 64,
        ..case("stereo450_850_48k_20ms", &[450.0, 850.0], 48_000, 20)
    },
    Case {
        args: CBR,
        ..case("tone1000_48k_cbr", &[1000.0], 48_000, 20)
    },
    Case {
        args: FEC,
        ..case("tone650_48k_fec", &[650.0], 48_000, 20)
    },
    Case {
        args: DTX,
        gaps: true,
        ..case("tone850_48k_dtx", &[850.0], 48_000, 20)
    },
    // On, off, on: the talker comes back after DTX.
    Case {
        args: DTX,
        gaps: true,
        secs: 3.0,
        ..case("tone850_48k_dtx_resume", &[850.0], 48_000, 20)
    },
    case("speech_48k_20ms", &[], 48_000, 20),
    case("speech_16k_20ms", &[], 16_000, 20),
];

const SECS: f64 = 2.0;
/// Amplitude of the test tones: -20.8 dBFS.
const AMP: f64 = 3000.0;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/opus/fixtures")
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// True when the tools are here; SKIPPED (or, in CI, a failure) otherwise.
fn tools(test: &str) -> bool {
    if have("opusenc") && have("opusdec") {
        return true;
    }
    if std::env::var_os("CONFAB_INTEROP").is_some() {
        panic!("{test}: opus-tools (opusenc, opusdec) is required with CONFAB_INTEROP=1");
    }
    eprintln!("SKIPPED: {test}: opus-tools (opusenc, opusdec) not installed");
    false
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("confab-opus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn source(c: &Case) -> Vec<i16> {
    if c.freqs.is_empty() {
        signals::speech(c.rate, c.secs)
    } else {
        signals::tones(c.freqs, c.rate, c.secs, AMP, c.gaps)
    }
}

/// opusenc on raw PCM; returns the Ogg Opus file.
fn opusenc(c: &Case) -> Vec<u8> {
    let raw = scratch(&format!("{}.raw", c.name));
    let out = scratch(&format!("{}.opus", c.name));
    let pcm: Vec<u8> = source(c).iter().flat_map(|s| s.to_le_bytes()).collect();
    std::fs::write(&raw, pcm).unwrap();
    let channels = c.freqs.len().max(1);
    let status = Command::new("opusenc")
        .args(["--quiet", "--raw", "--speech"])
        .args(["--raw-rate", &c.rate.to_string()])
        .args(["--raw-chan", &channels.to_string()])
        .args(["--bitrate", &c.bitrate_kbps.to_string()])
        .args(["--framesize", &c.frame_ms.to_string()])
        .args(c.args)
        .arg(&raw)
        .arg(&out)
        .status()
        .expect("run opusenc");
    assert!(status.success(), "opusenc failed for {}", c.name);
    std::fs::read(&out).unwrap()
}

/// opusdec at 48 kHz, no dither; mono (mixed down when the stream is stereo).
fn opusdec(file: &[u8]) -> Vec<i16> {
    let channels = ogg::read(file).channels;
    let mut child = Command::new("opusdec")
        .args(["--quiet", "--rate", "48000", "--no-dither", "-", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run opusdec");
    let mut stdin = child.stdin.take().unwrap();
    let data = file.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "opusdec failed");
    let pcm: Vec<i16> = out
        .stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    downmix(&pcm, channels)
}

/// confab's decoder on every packet; `lose` drops every n-th packet and
/// recovers it from the next one's in-band FEC.
fn confab_decode(file: &[u8], lose: Option<usize>) -> Vec<i16> {
    let f = ogg::read(file);
    let mut dec = Decoder::new(CodecKind::Opus).unwrap();
    let mut out = Vec::new();
    let mut buf = vec![0i16; MAX_FRAME_SAMPLES];
    for (i, p) in f.packets.iter().enumerate() {
        let lost = lose.is_some_and(|n| i % n == n - 1) && i + 1 < f.packets.len();
        let n = if lost {
            let len = opus_codec::packet_samples(p).unwrap();
            dec.decode_fec(&f.packets[i + 1], &mut buf[..len]).unwrap()
        } else {
            dec.decode(p, &mut buf).unwrap()
        };
        out.extend_from_slice(&buf[..n]);
    }
    out.drain(..f.pre_skip.min(out.len()));
    out
}

/// RMS and each tone's level, in dBFS, over the middle of the signal.
fn measure(pcm: &[i16], freqs: &[f64]) -> (f64, Vec<f64>) {
    let m = middle(pcm, 48_000, 0.25);
    (
        rms_db(m),
        freqs.iter().map(|&f| tone_db(m, 48_000, f)).collect(),
    )
}

fn assert_close(what: &str, ours: f64, theirs: f64) {
    assert!(
        (ours - theirs).abs() <= 1.0,
        "{what}: confab {ours:.2} dB, libopus {theirs:.2} dB"
    );
}

/// The levels opusdec measured for each committed fixture.
fn reference_levels() -> Vec<(String, f64, Vec<f64>)> {
    let text = std::fs::read_to_string(fixtures().join("reference.tsv")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let mut cols = l.split('\t');
            let name = cols.next().unwrap().to_string();
            let rms = cols.next().unwrap().parse().unwrap();
            let tones = cols
                .next()
                .unwrap_or("")
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().unwrap())
                .collect();
            (name, rms, tones)
        })
        .collect()
}

#[test]
fn confab_decodes_opusenc_packets_as_opusdec_does() {
    let live = have("opusenc") && have("opusdec");
    if !live && std::env::var_os("CONFAB_INTEROP").is_some() {
        panic!("opus-tools (opusenc, opusdec) is required with CONFAB_INTEROP=1");
    }
    let stored = reference_levels();
    for c in CASES {
        let (file, (ref_rms, ref_tones)) = if live {
            let file = opusenc(c);
            let reference = measure(&opusdec(&file), c.freqs);
            (file, reference)
        } else {
            let file = std::fs::read(fixtures().join(format!("{}.opus", c.name))).unwrap();
            let (_, rms, tones) = stored
                .iter()
                .find(|(n, _, _)| n == c.name)
                .unwrap_or_else(|| panic!("no reference levels for {}", c.name));
            (file, (*rms, tones.clone()))
        };
        let (rms, tones) = measure(&confab_decode(&file, None), c.freqs);
        eprintln!(
            "{:<24} rms confab {rms:7.2} libopus {ref_rms:7.2} dBFS; tones {tones:.2?} vs {ref_tones:.2?}",
            c.name
        );
        assert_close(&format!("{} RMS", c.name), rms, ref_rms);
        for (i, (&ours, &theirs)) in tones.iter().zip(&ref_tones).enumerate() {
            assert_close(&format!("{} {} Hz", c.name, c.freqs[i]), ours, theirs);
        }
    }
    if !live {
        eprintln!("(decoded the committed fixtures: opus-tools not installed)");
    }
}

#[test]
fn one_packet_in_ten_lost_is_recovered_from_in_band_fec() {
    let c = CASES.iter().find(|c| c.name == "tone650_48k_fec").unwrap();
    let file = std::fs::read(fixtures().join(format!("{}.opus", c.name))).unwrap();
    let (_, whole) = measure(&confab_decode(&file, None), c.freqs);
    let (_, lossy) = measure(&confab_decode(&file, Some(10)), c.freqs);
    eprintln!(
        "650 Hz: {:.2} dBFS whole, {:.2} dBFS with 10 % loss + FEC",
        whole[0], lossy[0]
    );
    assert_close("650 Hz with FEC", lossy[0], whole[0]);
}

fn sent_db() -> f64 {
    20.0 * (AMP / 32768.0).log10()
}

#[test]
fn opusdec_hears_confab_encoded_tones_at_their_level() {
    if !tools("opusdec_hears_confab_encoded_tones_at_their_level") {
        return;
    }
    for &freq in &[200.0, 450.0, 850.0, 1000.0, 2000.0, 3000.0, 5000.0, 7000.0] {
        let mut enc = Encoder::new(CodecKind::Opus, &OpusConfig::default()).unwrap();
        let pcm = signals::tones(&[freq], 48_000, SECS, AMP, false);
        let packets: Vec<(Vec<u8>, usize)> = pcm
            .chunks(960)
            .map(|frame| {
                let mut buf = [0u8; 1500];
                let n = enc.encode(frame, &mut buf).unwrap();
                (buf[..n].to_vec(), 960)
            })
            .collect();
        let heard = opusdec(&ogg::write(&packets, 312));
        let (_, tones) = measure(&heard, &[freq]);
        let peak = heard.iter().map(|&s| (s as i32).abs()).max().unwrap_or(0);
        eprintln!(
            "{freq:6} Hz sent {:.2} dBFS, opusdec heard {:.2} dBFS, peak {peak}",
            sent_db(),
            tones[0]
        );
        assert_close(&format!("{freq} Hz"), tones[0], sent_db());
        assert!(peak < 32767, "{freq} Hz: clipped");
    }
}

/// A mixer with one room (every codec's shared encoders) and a phone of
/// each kind given in it, fed by hand one tick at a time.
struct TestRoom {
    mixer: Mixer,
    commands: rtrb::Producer<MixCommand>,
    events: rtrb::Consumer<media_server::mixer::MixerEvent>,
    garbage: rtrb::Consumer<media_server::mixer::Garbage>,
    /// Each phone's input ring and address.
    inputs: Vec<(rtrb::Producer<InPacket>, SocketAddr)>,
    /// What the mixer sent each phone.
    outputs: Vec<mpsc::Receiver<Vec<u8>>>,
    now: Instant,
}

impl TestRoom {
    fn new(kinds: &[CodecKind]) -> Self {
        let (mut commands, cmd_rx) = rtrb::RingBuffer::new(64);
        let (ev_tx, events) = rtrb::RingBuffer::new(4096);
        let (g_tx, garbage) = rtrb::RingBuffer::new(64);
        let mixer = Mixer::new(1, cmd_rx, ev_tx, g_tx);
        let room = Room::new(RoomId(1), RoomSettings::default()).unwrap();
        assert!(commands.push(MixCommand::AddRoom(Box::new(room))).is_ok());
        let mut inputs = Vec::new();
        let mut outputs = Vec::new();
        for (i, &kind) in kinds.iter().enumerate() {
            let (tx, rx) = rtrb::RingBuffer::new(32);
            let (out_tx, out_rx) = mpsc::channel();
            let addr: SocketAddr = format!("127.0.0.1:{}", 40_000 + 2 * i).parse().unwrap();
            let mut s = ParticipantSettings::new(kind);
            s.remote = Some(addr);
            let p = Participant::new(
                ParticipantId(i as u32 + 1),
                s,
                rx,
                Box::new(Collect(out_tx)),
                0x1000 + i as u32,
                0,
                Arc::default(),
            )
            .and_then(|p| p.with_kit(&OpusConfig::default()))
            .unwrap();
            assert!(commands
                .push(MixCommand::AddParticipant(RoomId(1), Box::new(p)))
                .is_ok());
            inputs.push((tx, addr));
            outputs.push(out_rx);
        }
        Self {
            mixer,
            commands,
            events,
            garbage,
            inputs,
            outputs,
            now: Instant::now(),
        }
    }

    /// Phone `phone` sends the payload of tick `tick`.
    fn send(&mut self, phone: usize, tick: usize, payload: &[u8], pt: u8, clock: u32) {
        let mut buf = [0u8; MAX_PAYLOAD];
        buf[..payload.len()].copy_from_slice(payload);
        let (tx, addr) = &mut self.inputs[phone];
        let _ = tx.push(InPacket {
            seq: tick as u16,
            timestamp: (tick as u32).wrapping_mul(clock / 50),
            payload_type: pt,
            ssrc: 0x5000 + phone as u32,
            audio_level: None,
            source: *addr,
            arrival: self.now,
            len: payload.len() as u16,
            payload: buf,
        });
    }

    /// One 20 ms tick; its events are dropped.
    fn tick(&mut self) {
        self.mixer.tick(self.now);
        while self.events.pop().is_ok() {}
        self.now += Duration::from_millis(20);
    }
}

/// Collects what the mixer sends one participant.
struct Collect(mpsc::Sender<Vec<u8>>);

impl PacketOut for Collect {
    fn send(&mut self, _to: SocketAddr, packet: &[u8]) -> bool {
        self.0.send(packet.to_vec()).is_ok()
    }
}

/// The payload of an RTP packet (after CSRCs and a header extension).
fn rtp_payload(p: &[u8]) -> &[u8] {
    let cc = (p[0] & 0x0f) as usize;
    let mut start = 12 + 4 * cc;
    if p[0] & 0x10 != 0 {
        let words = u16::from_be_bytes([p[start + 2], p[start + 3]]) as usize;
        start += 4 + 4 * words;
    }
    let end = if p[0] & 0x20 != 0 {
        p.len() - p[p.len() - 1] as usize
    } else {
        p.len()
    };
    &p[start..end]
}

fn opus_stream_heard(rx: &mpsc::Receiver<Vec<u8>>) -> Vec<i16> {
    let packets: Vec<(Vec<u8>, usize)> = rx
        .try_iter()
        .map(|p| (rtp_payload(&p).to_vec(), 960))
        .collect();
    assert!(packets.len() > 100, "only {} packets sent", packets.len());
    opusdec(&ogg::write(&packets, 312))
}

/// A room: an Opus talker whose packets opusenc made (450 Hz), two PCMU
/// talkers (650, 850 Hz) and an Opus listener. opusdec hears every talker
/// in the listener's shared stream at its level, and the Opus talker's own
/// mix-minus carries the others and not itself.
#[test]
fn opusdec_hears_three_talkers_in_a_room_mix() {
    if !tools("opusdec_hears_three_talkers_in_a_room_mix") {
        return;
    }
    let opus_case = CASES.iter().find(|c| c.name == "tone450_48k_20ms").unwrap();
    let opus_file = opusenc(opus_case);
    let (_, opus_sent) = measure(&opusdec(&opus_file), &[450.0]);
    let opus_packets = ogg::read(&opus_file).packets;

    let mut room = TestRoom::new(&[
        CodecKind::Opus,
        CodecKind::Pcmu,
        CodecKind::Pcmu,
        CodecKind::Opus,
    ]);
    let mut pcmu = [
        Encoder::new(CodecKind::Pcmu, &OpusConfig::default()).unwrap(),
        Encoder::new(CodecKind::Pcmu, &OpusConfig::default()).unwrap(),
    ];
    let pcmu_tones = [
        signals::tones(&[650.0], 8000, 4.0, AMP, false),
        signals::tones(&[850.0], 8000, 4.0, AMP, false),
    ];
    for tick in 0..200usize {
        room.send(
            0,
            tick,
            &opus_packets[tick % opus_packets.len()],
            111,
            48_000,
        );
        for k in 0..2 {
            let frame = &pcmu_tones[k][(tick % 200) * 160..(tick % 200 + 1) * 160];
            let mut out = [0u8; 160];
            let n = pcmu[k].encode(frame, &mut out).unwrap();
            room.send(k + 1, tick, &out[..n], 0, 8000);
        }
        room.tick();
    }
    let outputs = &room.outputs;
    let listener = opus_stream_heard(&outputs[3]);
    let talker = opus_stream_heard(&outputs[0]);
    let freqs = [450.0, 650.0, 850.0];
    let (_, heard) = measure(&listener, &freqs);
    let (_, own) = measure(&talker, &freqs);
    let peak = listener
        .iter()
        .map(|&s| (s as i32).abs())
        .max()
        .unwrap_or(0);
    eprintln!(
        "listener hears {heard:.2?} dBFS (sent {:.2} / {:.2} / {:.2}), peak {peak}; the Opus talker hears {own:.2?}",
        opus_sent[0],
        sent_db(),
        sent_db()
    );
    assert_close(
        "450 Hz (Opus talker) at the listener",
        heard[0],
        opus_sent[0],
    );
    assert_close("650 Hz (PCMU talker) at the listener", heard[1], sent_db());
    assert_close("850 Hz (PCMU talker) at the listener", heard[2], sent_db());
    assert!(peak < 32767, "the listener's audio clipped");
    assert_close("650 Hz at the Opus talker", own[1], sent_db());
    assert_close("850 Hz at the Opus talker", own[2], sent_db());
    assert!(
        own[0] < opus_sent[0] - 30.0,
        "the Opus talker hears itself: {:.2} dBFS",
        own[0]
    );
}

/// Writes the committed fixtures: `tests/opus/make_fixtures.sh` runs it.
#[test]
#[ignore]
fn write_fixtures() {
    assert!(
        tools("write_fixtures"),
        "opus-tools needed to write the fixtures"
    );
    let dir = fixtures();
    std::fs::create_dir_all(&dir).unwrap();
    // CONFAB_FIXTURES=a,b writes only those and keeps the others' files.
    let only = std::env::var("CONFAB_FIXTURES").ok();
    let mut tsv =
        String::from("# case\trms dBFS\ttone dBFS,... (opusdec --rate 48000 --no-dither)\n");
    for c in CASES {
        if only
            .as_ref()
            .is_some_and(|o| !o.split(',').any(|n| n == c.name))
        {
            let file = std::fs::read(dir.join(format!("{}.opus", c.name))).unwrap();
            let (rms, tones) = measure(&opusdec(&file), c.freqs);
            let tones: Vec<String> = tones.iter().map(|t| format!("{t:.3}")).collect();
            tsv.push_str(&format!("{}\t{rms:.3}\t{}\n", c.name, tones.join(",")));
            continue;
        }
        let file = opusenc(c);
        std::fs::write(dir.join(format!("{}.opus", c.name)), &file).unwrap();
        let (rms, tones) = measure(&opusdec(&file), c.freqs);
        let tones: Vec<String> = tones.iter().map(|t| format!("{t:.3}")).collect();
        tsv.push_str(&format!("{}\t{rms:.3}\t{}\n", c.name, tones.join(",")));
    }
    std::fs::write(dir.join("reference.tsv"), tsv).unwrap();
}

/// Feeds one Opus talker (opusenc's packets from a fixture) to a room with
/// a PCMU listener, paced as a phone sends them: 40 and 60 ms packets one
/// every two or three ticks, DTX frames not sent at all (seq continuous,
/// timestamps jumping). Returns what the listener heard, the talker's
/// stats and the talking events.
fn room_with_opus_talker(fixture: &str) -> (Vec<i16>, Arc<ParticipantStats>, Vec<bool>) {
    let file = std::fs::read(fixtures().join(format!("{fixture}.opus"))).unwrap();
    let packets = ogg::read(&file).packets;
    let (mut commands, cmd_rx) = rtrb::RingBuffer::new(64);
    let (ev_tx, mut events) = rtrb::RingBuffer::new(4096);
    let (g_tx, _garbage) = rtrb::RingBuffer::new(64);
    let mut mixer = Mixer::new(1, cmd_rx, ev_tx, g_tx);
    let room = Room::new(RoomId(1), RoomSettings::default()).unwrap();
    assert!(commands.push(MixCommand::AddRoom(Box::new(room))).is_ok());
    let stats: Arc<ParticipantStats> = Arc::default();
    let mut rings = Vec::new();
    let (out_tx, out_rx) = mpsc::channel();
    for (i, kind) in [CodecKind::Opus, CodecKind::Pcmu].into_iter().enumerate() {
        let (tx, rx) = rtrb::RingBuffer::new(32);
        let mut s = ParticipantSettings::new(kind);
        s.remote = Some(format!("127.0.0.1:{}", 41_000 + 2 * i).parse().unwrap());
        let p = Participant::new(
            ParticipantId(i as u32 + 1),
            s,
            rx,
            Box::new(Collect(out_tx.clone())),
            i as u32,
            0,
            if i == 0 {
                stats.clone()
            } else {
                Arc::default()
            },
        )
        .and_then(|p| p.with_kit(&OpusConfig::default()))
        .unwrap();
        assert!(commands
            .push(MixCommand::AddParticipant(RoomId(1), Box::new(p)))
            .is_ok());
        rings.push(tx);
    }
    drop(out_tx);
    let mut now = Instant::now();
    let (mut due, mut ts, mut seq) = (0usize, 0u32, 0u16);
    let mut next = packets.iter();
    let mut talking = Vec::new();
    let mut heard = Vec::new();
    let mut dec = Decoder::new(CodecKind::Pcmu).unwrap();
    for tick in 0..(packets.len() * 3) {
        // Send every packet whose time has come (its first sample is due).
        while due <= tick * 960 {
            let Some(p) = next.next() else { break };
            let samples = opus_codec::packet_samples(p).unwrap();
            if p.len() > 2 {
                let mut buf = [0u8; MAX_PAYLOAD];
                buf[..p.len()].copy_from_slice(p);
                let _ = rings[0].push(InPacket {
                    seq,
                    timestamp: ts,
                    payload_type: 111,
                    ssrc: 0x77,
                    audio_level: None,
                    source: "127.0.0.1:41000".parse().unwrap(),
                    arrival: now,
                    len: p.len() as u16,
                    payload: buf,
                });
                seq = seq.wrapping_add(1);
            }
            ts = ts.wrapping_add(samples as u32);
            due += samples;
        }
        mixer.tick(now);
        while let Ok(e) = events.pop() {
            match e {
                media_server::mixer::MixerEvent::TalkingStarted(..) => talking.push(true),
                media_server::mixer::MixerEvent::TalkingStopped(..) => talking.push(false),
                _ => {}
            }
        }
        now += Duration::from_millis(20);
    }
    // The listener is the PCMU participant (SSRC 1); skip the talker's own.
    for p in out_rx.try_iter() {
        if u32::from_be_bytes([p[8], p[9], p[10], p[11]]) != 1 {
            continue;
        }
        let payload = rtp_payload(&p);
        let mut pcm = [0i16; 160];
        let n = dec.decode(payload, &mut pcm).unwrap();
        heard.extend_from_slice(&pcm[..n]);
    }
    (heard, stats, talking)
}

#[test]
fn forty_and_sixty_ms_opus_packets_are_heard_steadily() {
    for fixture in ["tone1000_48k_40ms", "tone1000_48k_60ms"] {
        let (heard, stats, _) = room_with_opus_talker(fixture);
        // Every 20 ms block of the steady part carries the tone at its level.
        let steady = &heard[8000 / 2..8000 * 3 / 2];
        let mut quietest = f64::MAX;
        for block in steady.chunks(160) {
            quietest = quietest.min(tone_db(block, 8000, 1000.0));
        }
        let lost = stats.lost.load(std::sync::atomic::Ordering::Relaxed);
        eprintln!("{fixture}: quietest 20 ms block {quietest:.2} dBFS, lost {lost}");
        assert!(
            quietest > sent_db() - 1.5,
            "{fixture}: a block at {quietest:.2} dBFS"
        );
        assert_eq!(lost, 0, "{fixture}: packets counted lost");
    }
}

#[test]
fn a_dtx_phone_in_silence_is_not_loss_nor_a_talker() {
    let (heard, stats, talking) = room_with_opus_talker("tone850_48k_dtx_resume");
    let lost = stats.lost.load(std::sync::atomic::Ordering::Relaxed);
    let errors = stats
        .decode_errors
        .load(std::sync::atomic::Ordering::Relaxed);
    // One second of tone, one of silence (DTX), one of tone again.
    let tone = tone_db(&heard[8000 / 4..8000 * 3 / 4], 8000, 850.0);
    let gap = rms_db(&heard[8000 * 5 / 4..8000 * 7 / 4]);
    eprintln!("dtx: tone {tone:.2} dBFS, silence {gap:.2} dBFS, lost {lost}, errors {errors}, talking {talking:?}");
    assert_eq!((lost, errors), (0, 0));
    assert_close("850 Hz before DTX", tone, sent_db());
    assert!(gap < -60.0, "the DTX gap is heard at {gap:.2} dBFS");
    // The gap went undecoded, and the decoder caught up for the tone after it.
    let skipped = stats
        .decode_skipped
        .load(std::sync::atomic::Ordering::Relaxed);
    let after = tone_db(&heard[8000 * 9 / 4..8000 * 11 / 4], 8000, 850.0);
    eprintln!("dtx: heard {} samples; {skipped} packets left undecoded, tone after the gap {after:.2} dBFS", heard.len());
    assert!(skipped > 0, "no packet of the gap was left undecoded");
    assert_close("850 Hz after DTX", after, sent_db());
    assert_eq!(talking.first(), Some(&true));
    assert!(
        talking.contains(&false),
        "the talker never stopped in DTX: {talking:?}"
    );
}

/// What libopus's encoder flagged, read without decoding: its packets'
/// voice-activity bits and DTX frames, against the signal it was given.
#[test]
fn packet_activity_follows_what_libopus_encoded() {
    use opus_codec::Activity;
    // One second of 850 Hz, one of silence (DTX), one of 850 Hz: 50 packets a second.
    let file = std::fs::read(fixtures().join("tone850_48k_dtx_resume.opus")).unwrap();
    let packets = ogg::read(&file).packets;
    let count = |range: std::ops::Range<usize>, want: &[Activity]| {
        packets[range]
            .iter()
            .filter(|p| opus_codec::activity(p).is_ok_and(|a| want.contains(&a)))
            .count()
    };
    let seq: String = packets
        .iter()
        .map(|p| match opus_codec::activity(p) {
            Ok(Activity::Active) => 'A',
            Ok(Activity::Inactive) => 'i',
            Ok(Activity::Silent) => '.',
            Ok(Activity::Unknown) => '?',
            Err(_) => 'X',
        })
        .collect();
    eprintln!("activity: {seq}");
    // A steady tone starts as voice; after about half a second the
    // encoder's VAD may take it for noise, which is why the mixer decodes
    // every possible talker and one quiet packet in 25.
    let onset = count(0..25, &[Activity::Active, Activity::Unknown]);
    let quiet = count(65..100, &[Activity::Silent, Activity::Inactive]);
    let back = count(100..125, &[Activity::Active, Activity::Unknown]);
    eprintln!("activity: onset {onset}/25 voice, silence {quiet}/35 quiet, back {back}/25 voice");
    assert_eq!(onset, 25, "a tone's onset read as quiet");
    assert_eq!(quiet, 35, "silence read as voice");
    assert!(back >= 20, "the tone's return read as quiet");
    // Speech and every tone fixture parse; none is malformed.
    for c in CASES {
        let file = std::fs::read(fixtures().join(format!("{}.opus", c.name))).unwrap();
        for p in ogg::read(&file).packets {
            assert!(
                opus_codec::activity(&p).is_ok(),
                "{}: a packet read as malformed",
                c.name
            );
        }
    }
}
