//! A recorded room, read back by opus-tools: `opusinfo` finds a valid Ogg
//! Opus stream of the right length, and `opusdec` hears both talkers of a
//! G.711 room at the level they were sent (the room has no Opus listener:
//! the media server's Opus encoders serve the recording alone).

use std::process::Command;
use std::time::Duration;

use media_server::codec::{CodecKind, Encoder, OpusConfig};
use media_server::mixer::{Command as MixCommand, Garbage, RoomId};

use super::{assert_close, measure, opusdec, scratch, sent_db, signals, tools, TestRoom};

/// Ticks recorded: 4 s.
const TICKS: usize = 200;

#[test]
fn opus_tools_read_a_recorded_room_and_hear_both_talkers_at_their_level() {
    if !tools("opus_tools_read_a_recorded_room") {
        return;
    }
    let mut room = TestRoom::new(&[CodecKind::Pcmu, CodecKind::Pcmu]);
    let path = scratch("recorded-room.opus");
    let _ = std::fs::remove_file(&path);
    let (tap, recording) = media_server::recording::start(
        &path,
        &[("TITLE", "standup"), ("DATE", "2026-12-07T01:00:00Z")],
    )
    .unwrap();
    assert!(room
        .commands
        .push(MixCommand::Record(RoomId(1), Box::new(tap)))
        .is_ok());
    let mut encoders = [
        Encoder::new(CodecKind::Pcmu, &OpusConfig::default()).unwrap(),
        Encoder::new(CodecKind::Pcmu, &OpusConfig::default()).unwrap(),
    ];
    let tones = [
        signals::tones(&[650.0], 8000, 4.0, super::AMP, false),
        signals::tones(&[850.0], 8000, 4.0, super::AMP, false),
    ];
    for tick in 0..TICKS {
        for (k, enc) in encoders.iter_mut().enumerate() {
            let mut out = [0u8; 160];
            let n = enc
                .encode(&tones[k][tick * 160..(tick + 1) * 160], &mut out)
                .unwrap();
            room.send(k, tick, &out[..n], 0, 8000);
        }
        room.tick();
    }
    assert!(room
        .commands
        .push(MixCommand::StopRecording(RoomId(1)))
        .is_ok());
    room.tick();
    // The tap comes back as garbage; dropping it lets the writer finish.
    let mut returned = false;
    while let Ok(g) = room.garbage.pop() {
        returned |= matches!(g, Garbage::Recorder(_));
    }
    assert!(returned, "the mixer gave the tap back");
    let summary = recording.done.blocking_recv().unwrap().unwrap();
    assert_eq!(summary.packets, TICKS as u64);
    assert_eq!(summary.dropped, 0);
    assert_eq!(summary.duration(), Duration::from_secs(4));
    let file = std::fs::read(&path).unwrap();
    assert_eq!(summary.bytes, file.len() as u64);

    let info = Command::new("opusinfo").arg(&path).output().unwrap();
    let info_text =
        String::from_utf8_lossy(&info.stdout).into_owned() + &String::from_utf8_lossy(&info.stderr);
    assert!(info.status.success(), "opusinfo: {info_text}");
    assert!(
        !info_text.contains("WARNING") && !info_text.contains("ERROR"),
        "opusinfo: {info_text}"
    );
    assert!(info_text.contains("TITLE=standup"), "{info_text}");
    assert!(
        info_text.contains("Playback length: 0m:03.99")
            || info_text.contains("Playback length: 0m:04"),
        "4 s less the pre-skip: {info_text}"
    );

    let heard = opusdec(&file);
    let (_, levels) = measure(&heard, &[650.0, 850.0]);
    let peak = heard.iter().map(|&s| (s as i32).abs()).max().unwrap_or(0);
    eprintln!(
        "recording: {} packets, {} bytes; opusdec hears {levels:.2?} dBFS (sent {:.2}), peak {peak}",
        summary.packets,
        summary.bytes,
        sent_db()
    );
    assert_close("650 Hz in the recording", levels[0], sent_db());
    assert_close("850 Hz in the recording", levels[1], sent_db());
    assert!(peak < 32767, "the recording clipped");
}
