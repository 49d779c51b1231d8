//! Recording a room: the mixer thread copies the room's shared Opus
//! encoding of the full mix (what every listener who is not talking hears)
//! into a fixed-slot ring once per tick ([`RecordTap`]); a writer thread of
//! its own drains the ring every 200 ms into an Ogg Opus file. A full ring
//! drops the frame and counts it (the writer fills the gap with a packet
//! the decoder conceals, so the timeline holds); the mixer never waits.
//! When the tap is dropped (recording stopped, or the room ended) the
//! writer ends the stream, syncs the file and reports a [`Summary`].

pub mod ogg_opus;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

use ogg_opus::{OggOpusWriter, GAP_PACKET};

/// Largest Opus packet (RFC 6716 §3.2.1: 1275 bytes for one frame).
pub const MAX_PACKET: usize = 1275;
/// Frames the ring holds: 5 s, far more than the writer's 200 ms wake-up.
const RING_FRAMES: usize = 250;
/// How often the writer drains the ring.
const WRITER_PERIOD: Duration = Duration::from_millis(200);

/// One tick's packet as it crosses from the mixer to the writer.
#[derive(Clone, Copy)]
pub struct RecordedFrame {
    /// The mixer tick it belongs to, counted from the recording's start.
    tick: u64,
    len: u16,
    data: [u8; MAX_PACKET],
}

/// What a recording counted, shared by the mixer, the writer and the
/// control side.
#[derive(Debug, Default)]
pub struct RecordCounts {
    /// Frames the mixer handed over.
    pub frames: AtomicU64,
    /// Frames dropped on a full ring (each became a concealed gap).
    pub dropped: AtomicU64,
    /// Bytes written to the file so far.
    pub bytes: AtomicU64,
}

/// The mixer's end: one push per tick, never blocking.
pub struct RecordTap {
    frames: rtrb::Producer<RecordedFrame>,
    counts: Arc<RecordCounts>,
    tick: u64,
}

impl std::fmt::Debug for RecordTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordTap")
            .field("tick", &self.tick)
            .finish()
    }
}

impl RecordTap {
    /// Hands this tick's packet over (an empty one marks a tick without
    /// audio); on a full ring it is dropped and counted.
    pub(crate) fn push(&mut self, packet: &[u8]) {
        let len = packet.len().min(MAX_PACKET);
        let mut frame = RecordedFrame {
            tick: self.tick,
            len: len as u16,
            data: [0; MAX_PACKET],
        };
        frame.data[..len].copy_from_slice(&packet[..len]);
        self.tick += 1;
        self.counts.frames.fetch_add(1, Ordering::Relaxed);
        if self.frames.push(frame).is_err() {
            self.counts.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Recording failures.
#[derive(Debug, Error)]
pub enum RecordingError {
    /// The file could not be made or written.
    #[error("recording file {path}: {source}")]
    Io {
        /// Which file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The writer thread could not be started, or died.
    #[error("recording writer: {0}")]
    Writer(String),
}

/// A finished recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The file.
    pub path: PathBuf,
    /// 20 ms packets written (gaps included).
    pub packets: u64,
    /// Frames the ring dropped.
    pub dropped: u64,
    /// The file's size.
    pub bytes: u64,
}

impl Summary {
    /// The audio's length.
    pub fn duration(&self) -> Duration {
        Duration::from_millis(self.packets * 20)
    }
}

/// The control side's end: counters now, the [`Summary`] when it is done.
pub struct Recording {
    /// Live counters.
    pub counts: Arc<RecordCounts>,
    /// Resolves when the file is complete.
    pub done: tokio::sync::oneshot::Receiver<Result<Summary, RecordingError>>,
}

/// Creates `path` (its directory too), writes the Ogg Opus headers with
/// `comments` (`TITLE`, `DATE`…), and starts its writer thread. Give the
/// tap to the room ([`crate::MediaServer::record`]).
pub fn start(
    path: &Path,
    comments: &[(&str, &str)],
) -> Result<(RecordTap, Recording), RecordingError> {
    let io = |source| RecordingError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let file = File::create_new(path).map_err(io)?;
    let serial: u32 = rand::random();
    let writer =
        OggOpusWriter::new(BufWriter::new(file), serial, "confab", comments).map_err(io)?;
    let (producer, consumer) = rtrb::RingBuffer::new(RING_FRAMES);
    let counts = Arc::new(RecordCounts::default());
    let (tx, done) = tokio::sync::oneshot::channel();
    let thread_counts = counts.clone();
    let thread_path = path.to_owned();
    std::thread::Builder::new()
        .name("confab-recorder".into())
        .spawn(move || {
            let r = write_until_stopped(writer, consumer, &thread_counts, &thread_path);
            let _ = tx.send(r);
        })
        .map_err(|e| RecordingError::Writer(e.to_string()))?;
    Ok((
        RecordTap {
            frames: producer,
            counts: counts.clone(),
            tick: 0,
        },
        Recording { counts, done },
    ))
}

fn write_until_stopped(
    mut w: OggOpusWriter<BufWriter<File>>,
    mut frames: rtrb::Consumer<RecordedFrame>,
    counts: &RecordCounts,
    path: &Path,
) -> Result<Summary, RecordingError> {
    let io = |source| RecordingError::Io {
        path: path.to_owned(),
        source,
    };
    let mut next_tick = 0;
    loop {
        // Read before draining: frames pushed before the tap was dropped
        // are all in the ring by then.
        let stopped = frames.is_abandoned();
        while let Ok(f) = frames.pop() {
            // Dropped frames left a hole in the ticks: concealed gaps.
            while next_tick < f.tick {
                w.push(&GAP_PACKET).map_err(io)?;
                next_tick += 1;
            }
            let packet = &f.data[..f.len as usize];
            w.push(if packet.is_empty() {
                &GAP_PACKET
            } else {
                packet
            })
            .map_err(io)?;
            next_tick = f.tick + 1;
        }
        w.output().flush().map_err(io)?;
        if let Ok(meta) = w.output().get_ref().metadata() {
            counts.bytes.store(meta.len(), Ordering::Relaxed);
        }
        if stopped {
            break;
        }
        std::thread::sleep(WRITER_PERIOD);
    }
    // Frames dropped at the very end have no later frame to show the hole:
    // the mixer's count of ticks does (final now that the tap is gone).
    let ticks = counts.frames.load(Ordering::Relaxed);
    while next_tick < ticks {
        w.push(&GAP_PACKET).map_err(io)?;
        next_tick += 1;
    }
    let packets = w.packets().max(1);
    let file = w
        .finish()
        .map_err(io)?
        .into_inner()
        .map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    let bytes = file.metadata().map_err(io)?.len();
    counts.bytes.store(bytes, Ordering::Relaxed);
    Ok(Summary {
        path: path.to_owned(),
        packets,
        dropped: counts.dropped.load(Ordering::Relaxed),
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames pushed faster than the writer drains: those the ring could
    /// not take are counted and become gaps, so the file is as long as the
    /// ticks were; the mixer's side never waited.
    #[test]
    fn a_full_ring_drops_and_counts_and_the_timeline_holds() {
        let path =
            std::env::temp_dir().join(format!("confab-rec-unit-{}.opus", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let (mut tap, rec) = start(&path, &[]).unwrap();
        let packet = [0xf8u8, 0xff, 0xfe];
        for _ in 0..RING_FRAMES + 100 {
            tap.push(&packet);
        }
        drop(tap);
        let summary = rec.done.blocking_recv().unwrap().unwrap();
        assert_eq!(summary.packets, (RING_FRAMES + 100) as u64);
        assert!(summary.dropped <= 100, "{summary:?}");
        assert_eq!(
            rec.counts.frames.load(Ordering::Relaxed),
            (RING_FRAMES + 100) as u64
        );
        assert!(File::create_new(&path).is_err(), "never overwritten");
        let _ = std::fs::remove_file(&path);
    }
}
