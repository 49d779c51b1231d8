//! Call detail records as JSON lines, one per ended call, appended to a
//! file (or written to stdout), off the focus's loop: the focus hands each
//! record to a channel and a task writes it.

use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// Where the records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CdrSink {
    /// Standard output (`-`).
    Stdout,
    /// Appended to this file.
    File(PathBuf),
}

impl CdrSink {
    /// `-` is stdout, anything else a file.
    pub fn parse(s: &str) -> Self {
        if s == "-" {
            CdrSink::Stdout
        } else {
            CdrSink::File(s.into())
        }
    }
}

/// Seconds since the Unix epoch of an instant (read against the clock now).
fn unix(t: Instant) -> f64 {
    let since = Instant::now().saturating_duration_since(t);
    SystemTime::now()
        .checked_sub(since)
        .and_then(|s| s.duration_since(UNIX_EPOCH).ok())
        .map(|d| (d.as_millis() as f64) / 1e3)
        .unwrap_or(0.0)
}

/// The RTP clock of a codec, to turn RTCP jitter into milliseconds.
fn clock_rate(codec: &str) -> f64 {
    if codec.eq_ignore_ascii_case("opus") {
        48_000.0
    } else {
        8_000.0
    }
}

/// One record as a JSON line.
pub(crate) fn line(r: &focus::CallRecord) -> String {
    let media = r.media.map(|m| {
        serde_json::json!({
            "packets_in": m.packets_in,
            "packets_out": m.packets_out,
            "lost": m.lost,
            "loss_percent": if m.packets_in + m.lost > 0 {
                (m.lost as f64 * 1000.0 / (m.packets_in + m.lost) as f64).round() / 10.0
            } else {
                0.0
            },
            "peer_loss_percent": (m.peer_loss_percent * 10.0).round() / 10.0,
            "peer_jitter_ms": (m.peer_jitter as f64 * 1000.0 / clock_rate(r.codec.unwrap_or("PCMU"))).round(),
        })
    });
    serde_json::json!({
        "room": r.room,
        "caller": r.caller,
        "call_id": r.call_id,
        "direction": if r.dialed_out { "out" } else { "in" },
        "start": unix(r.started),
        "end": unix(r.ended),
        "duration_s": (r.ended.saturating_duration_since(r.started).as_millis() as f64) / 1e3,
        "cause": r.cause,
        "codec": r.codec,
        "srtp": r.srtp,
        "media": media,
    })
    .to_string()
}

/// Writes records as they come until the channel closes.
pub(crate) async fn write(sink: CdrSink, mut rx: mpsc::UnboundedReceiver<focus::CallRecord>) {
    let mut out: Box<dyn tokio::io::AsyncWrite + Unpin + Send> = match &sink {
        CdrSink::Stdout => Box::new(tokio::io::stdout()),
        CdrSink::File(path) => match tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await
        {
            Ok(f) => Box::new(f),
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "cannot open the call detail record file: records are lost");
                while rx.recv().await.is_some() {}
                return;
            }
        },
    };
    while let Some(r) = rx.recv().await {
        let mut text = line(&r);
        text.push('\n');
        if let Err(e) = out.write_all(text.as_bytes()).await {
            tracing::warn!(error = %e, "call detail record not written");
        }
        let _ = out.flush().await;
    }
}
