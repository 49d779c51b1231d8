//! The recordings a server keeps in its data directory: `ID.opus` (the
//! room's mix as Ogg Opus, written off the mixer thread by the media
//! server's recorder) and, once it ends, `ID.json`, its sidecar: when it
//! ran, how long, what was dropped, and who was in the room and who joined
//! and left when (offsets from its start). The id is the room and its start
//! in milliseconds since the epoch, so that it sorts and never collides.
//!
//! Starting one creates the file and its writer here, then asks the focus,
//! which decides (a live room not already recorded), plays the tone and
//! tells subscribers. A room whose policy records from the start asks for
//! it itself ([`focus::RoomEventKind::RecordingWanted`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use control::{ControlError, ParticipantInfo, RecordingInfo};
use focus::{FocusCommand, RoomEvent, RoomEventKind};
use media_server::recording::{RecordCounts, Summary};
use tokio::sync::{broadcast, mpsc, oneshot};

/// A recording going on.
struct Active {
    info: RecordingInfo,
    counts: Arc<RecordCounts>,
}

/// The recordings of this server.
pub(crate) struct Recordings {
    dir: PathBuf,
    focus: mpsc::UnboundedSender<FocusCommand>,
    events: broadcast::Sender<RoomEvent>,
    /// By room: a room has one recording at a time.
    active: Mutex<HashMap<String, Active>>,
}

fn now_ms() -> i64 {
    policy_server::service::now_ms()
}

/// A room name as it may appear in a file name.
fn file_safe(room: &str) -> String {
    room.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_owned()
}

impl Recordings {
    /// Recordings in `dir`; starts following the focus's rooms for those
    /// that record from their first call.
    pub(crate) fn start(
        dir: PathBuf,
        focus: mpsc::UnboundedSender<FocusCommand>,
        events: broadcast::Sender<RoomEvent>,
    ) -> Arc<Self> {
        let me = Arc::new(Self {
            dir,
            focus,
            events,
            active: Mutex::new(HashMap::new()),
        });
        let mut rx = me.events.subscribe();
        let weak = Arc::downgrade(&me);
        tokio::spawn(async move {
            loop {
                let ev = match rx.recv().await {
                    Ok(ev) => ev,
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                if ev.kind != RoomEventKind::RecordingWanted {
                    continue;
                }
                let Some(me) = weak.upgrade() else { break };
                match me.begin(&ev.room).await {
                    Ok(r) => {
                        tracing::info!(room = %ev.room, id = %r.id, "recording from the first call")
                    }
                    Err(e) => {
                        tracing::warn!(room = %ev.room, error = %e, "cannot record from the first call")
                    }
                }
            }
        });
        me
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> FocusCommand) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.focus.send(make(tx)).ok()?;
        rx.await.ok()
    }

    /// Starts recording `room`.
    pub(crate) async fn begin(self: &Arc<Self>, room: &str) -> Result<RecordingInfo, ControlError> {
        if self.active_info(room).is_some() {
            return Err(ControlError::Refused(format!(
                "conference {room} is already being recorded"
            )));
        }
        let started = now_ms();
        let id = format!("{}-{started}", file_safe(room));
        let path = self.dir.join(format!("{id}.opus"));
        let (title, date, file) = (room.to_owned(), date_time(started), path.clone());
        // The file is made (and its headers written) off the async threads.
        let (tap, recording) = tokio::task::spawn_blocking(move || {
            media_server::recording::start(
                &file,
                &[("TITLE", &title), ("DATE", &date), ("ENCODER", "confab")],
            )
        })
        .await
        .map_err(|e| ControlError::Refused(format!("cannot record: {e}")))?
        .map_err(|e| ControlError::Refused(format!("cannot record: {e}")))?;
        // Subscribed before the focus starts it: no join is missed.
        let events = self.events.subscribe();
        let present = self
            .ask(|r| FocusCommand::Participants(room.to_owned(), r))
            .await
            .flatten()
            .unwrap_or_default();
        let answer = self
            .ask(|r| FocusCommand::StartRecording(room.to_owned(), Box::new(tap), r))
            .await
            .unwrap_or(Err(ControlError::Unavailable));
        if let Err(e) = answer {
            // The tap was dropped with the refusal: the writer ends the
            // empty file, which goes.
            let _ = recording.done.await;
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        let info = RecordingInfo {
            id: id.clone(),
            room: room.to_owned(),
            started_at_ms: started,
            ..Default::default()
        };
        if let Ok(mut active) = self.active.lock() {
            active.insert(
                room.to_owned(),
                Active {
                    info: info.clone(),
                    counts: recording.counts.clone(),
                },
            );
        }
        let me = self.clone();
        tokio::spawn(async move {
            let log = follow(
                info.room.clone(),
                events,
                present,
                info.started_at_ms,
                recording.done,
            )
            .await;
            // The sidecar is written and synced off the async threads.
            let _ = tokio::task::spawn_blocking(move || me.finish(info, log)).await;
        });
        Ok(self.active_info(room).unwrap_or_default())
    }

    /// Stops recording `room`; its sidecar is written once the file is.
    pub(crate) async fn end(&self, room: &str) -> Result<RecordingInfo, ControlError> {
        let info = self.active_info(room).ok_or_else(|| {
            ControlError::Refused(format!("conference {room} is not being recorded"))
        })?;
        self.ask(|r| FocusCommand::StopRecording(room.to_owned(), r))
            .await
            .unwrap_or(Err(ControlError::Unavailable))?;
        Ok(RecordingInfo {
            ended_at_ms: Some(now_ms()),
            ..info
        })
    }

    /// The file is complete: the sidecar goes next to it, and the
    /// recording leaves the active ones.
    fn finish(&self, info: RecordingInfo, log: Followed) {
        let ended = now_ms();
        let (summary, error) = match log.result {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let side = serde_json::json!({
            "id": info.id,
            "room": info.room,
            "file": format!("{}.opus", info.id),
            "format": "Ogg Opus, mono, 48 kHz, 20 ms packets",
            "started_at_ms": info.started_at_ms,
            "started_at": date_time(info.started_at_ms),
            "ended_at_ms": ended,
            "duration_ms": summary.as_ref().map(|s| s.duration().as_millis() as u64).unwrap_or(0),
            "bytes": summary.as_ref().map(|s| s.bytes).unwrap_or(0),
            "dropped_frames": summary.as_ref().map(|s| s.dropped).unwrap_or(0),
            "error": error,
            "present_at_start": log.present.iter().map(person).collect::<Vec<_>>(),
            "events": log.events,
            "events_missed": log.missed,
        });
        let path = self.dir.join(format!("{}.json", info.id));
        let written = serde_json::to_vec_pretty(&side)
            .map_err(std::io::Error::other)
            .and_then(|bytes| write_synced(&path, &bytes));
        match written {
            Ok(()) => tracing::info!(id = %info.id, room = %info.room, "recording complete"),
            Err(e) => {
                tracing::warn!(id = %info.id, error = %e, "cannot write the recording's sidecar")
            }
        }
        if let Ok(mut active) = self.active.lock() {
            if active.get(&info.room).is_some_and(|a| a.info.id == info.id) {
                active.remove(&info.room);
            }
        }
    }

    /// A room's recording going on, with its counters now.
    fn active_info(&self, room: &str) -> Option<RecordingInfo> {
        let active = self.active.lock().ok()?;
        active.get(room).map(live_info)
    }

    /// Every recording, newest first: those going on, then the sidecars.
    /// Reads the directory: call it off the async threads.
    pub(crate) fn list(&self) -> Vec<RecordingInfo> {
        let mut out: Vec<RecordingInfo> = self
            .active
            .lock()
            .map(|a| a.values().map(live_info).collect())
            .unwrap_or_default();
        if let Ok(dir) = std::fs::read_dir(&self.dir) {
            for entry in dir.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "json") {
                    if let Some(info) = read_sidecar(&path) {
                        out.push(info);
                    }
                }
            }
        }
        out.sort_by(|a, b| b.started_at_ms.cmp(&a.started_at_ms).then(a.id.cmp(&b.id)));
        out
    }

    /// A recording and its file.
    pub(crate) fn get(&self, id: &str) -> Option<(RecordingInfo, PathBuf)> {
        let file = self.dir.join(format!("{id}.opus"));
        let going_on = self
            .active
            .lock()
            .ok()?
            .values()
            .find(|a| a.info.id == id)
            .map(live_info);
        let info = going_on.or_else(|| read_sidecar(&self.dir.join(format!("{id}.json"))))?;
        Some((info, file))
    }

    /// Deletes a finished recording.
    pub(crate) fn delete(&self, id: &str) -> Result<(), ControlError> {
        let (info, file) = self.get(id).ok_or(ControlError::NoRecording)?;
        if info.ended_at_ms.is_none() {
            return Err(ControlError::Refused(format!(
                "recording {id} is still going on"
            )));
        }
        let gone = |p: &Path| match std::fs::remove_file(p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ControlError::Refused(
                format!("cannot delete {}: {e}", p.display()),
            )),
            _ => Ok(()),
        };
        gone(&file)?;
        gone(&self.dir.join(format!("{id}.json")))
    }
}

fn live_info(a: &Active) -> RecordingInfo {
    let frames = a.counts.frames.load(Ordering::Relaxed);
    RecordingInfo {
        duration_ms: frames * 20,
        bytes: a.counts.bytes.load(Ordering::Relaxed),
        dropped_frames: a.counts.dropped.load(Ordering::Relaxed),
        ..a.info.clone()
    }
}

fn read_sidecar(path: &Path) -> Option<RecordingInfo> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    Some(RecordingInfo {
        id: v["id"].as_str()?.to_owned(),
        room: v["room"].as_str()?.to_owned(),
        started_at_ms: v["started_at_ms"].as_i64()?,
        ended_at_ms: Some(v["ended_at_ms"].as_i64()?),
        duration_ms: v["duration_ms"].as_u64().unwrap_or(0),
        bytes: v["bytes"].as_u64().unwrap_or(0),
        dropped_frames: v["dropped_frames"].as_u64().unwrap_or(0),
    })
}

fn person(p: &ParticipantInfo) -> serde_json::Value {
    serde_json::json!({
        "participant": p.id,
        "uri": p.uri,
        "display_name": p.display_name,
    })
}

/// What happened in the room while it was recorded.
struct Followed {
    present: Vec<ParticipantInfo>,
    events: Vec<serde_json::Value>,
    missed: u64,
    result: Result<Summary, media_server::recording::RecordingError>,
}

/// Collects the room's joins and leaves until the file is complete.
async fn follow(
    room: String,
    mut events: broadcast::Receiver<RoomEvent>,
    present: Vec<ParticipantInfo>,
    started: i64,
    mut done: oneshot::Receiver<Result<Summary, media_server::recording::RecordingError>>,
) -> Followed {
    let mut log = Vec::new();
    let mut missed = 0;
    let result = loop {
        tokio::select! {
            r = &mut done => break r.unwrap_or_else(|_| Err(
                media_server::recording::RecordingError::Writer("the writer stopped".into()),
            )),
            ev = events.recv() => match ev {
                Ok(ev) if ev.room == room => {
                    let (what, p) = match &ev.kind {
                        RoomEventKind::Joined(p) => ("joined", p),
                        RoomEventKind::Left(p) => ("left", p),
                        _ => continue,
                    };
                    let mut entry = person(p);
                    entry["event"] = what.into();
                    entry["at_ms"] = (now_ms() - started).max(0).into();
                    log.push(entry);
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => missed += n,
                // The focus is gone: the file still ends.
                Err(broadcast::error::RecvError::Closed) => {
                    break (&mut done).await.unwrap_or_else(|_| Err(
                        media_server::recording::RecordingError::Writer("the writer stopped".into()),
                    ));
                }
            },
        }
    };
    Followed {
        present,
        events: log,
        missed,
        result,
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// `2026-12-07T01:48:18Z` for milliseconds since the epoch.
fn date_time(ms: i64) -> String {
    focus::UtcTime::from_unix(u64::try_from(ms / 1000).unwrap_or(0)).rfc3339()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_become_file_names() {
        assert_eq!(file_safe("standup"), "standup");
        assert_eq!(file_safe("../etc/x y"), "_etc_x_y");
    }
}
