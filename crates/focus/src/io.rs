//! The focus driver: it feeds the core from the transports, the media
//! server's events and the clock, and sends what the core emits. No
//! protocol decisions here.

use std::time::Instant;

use media_server::mixer::MixerEvent;
use sip_transport::{Inbound, Transports};
use tokio::sync::{broadcast, mpsc};

use crate::Focus;

/// Runs the focus until `shutdown` resolves.
pub async fn run(
    mut focus: Focus,
    transports: Transports,
    mut inbound: mpsc::Receiver<Inbound>,
    mut media_events: Option<broadcast::Receiver<MixerEvent>>,
    mut commands: Option<mpsc::UnboundedReceiver<crate::FocusCommand>>,
    room_events: Option<broadcast::Sender<crate::RoomEvent>>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    // Name lookups run as tasks; their answers come back here.
    let (resolved_tx, mut resolved) = mpsc::unbounded_channel::<Resolved>();
    loop {
        let deadline = focus.poll_timeout();
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        let media = async {
            match media_events.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        let command = async {
            match commands.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut shutdown => break,
            cmd = command => match cmd {
                Some(c) => focus.handle_command(Instant::now(), c),
                None => commands = None,
            },
            msg = inbound.recv() => match msg {
                Some(m) => focus.handle_message(Instant::now(), m.peer, m.message),
                None => break,
            },
            ev = media => match ev {
                Ok(MixerEvent::Dtmf(_, leg, digit, _)) => focus.handle_dtmf(Instant::now(), leg, digit),
                Ok(MixerEvent::TalkingStarted(_, leg)) => focus.handle_talking(leg, true),
                Ok(MixerEvent::TalkingStopped(_, leg)) => focus.handle_talking(leg, false),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => tracing::warn!(missed = n, "media events lagged"),
                Err(broadcast::error::RecvError::Closed) => media_events = None,
            },
            Some((id, result)) = resolved.recv() => focus.handle_resolved(Instant::now(), id, result),
            _ = sleep => focus.handle_timeout(Instant::now()),
        }
        // The answers of this input go out first; what the input made due
        // at once (the NOTIFY fan-out after an answer) runs right after,
        // before the next input.
        flush(&mut focus, &transports, &resolved_tx, room_events.as_ref());
        if focus.fanout_pending() {
            focus.handle_fanout(Instant::now());
            flush(&mut focus, &transports, &resolved_tx, room_events.as_ref());
        }
    }
}

type Resolved = (u64, Result<std::net::SocketAddr, String>);

/// Hands out what the core produced: name lookups (as tasks), room events
/// and messages. Never waits: a peer that cannot take a message has it
/// dropped (counted and logged by the transports; SIP retransmits or times
/// out).
fn flush(
    focus: &mut Focus,
    transports: &Transports,
    resolved: &mpsc::UnboundedSender<Resolved>,
    room_events: Option<&broadcast::Sender<crate::RoomEvent>>,
) {
    while let Some(q) = focus.poll_resolve() {
        let tx = resolved.clone();
        tokio::spawn(async move {
            let found = tokio::net::lookup_host((q.host.as_str(), q.port))
                .await
                .map_err(|e| e.to_string())
                .and_then(|addrs| {
                    let all: Vec<_> = addrs.collect();
                    all.iter()
                        .find(|a| a.is_ipv4())
                        .or(all.first())
                        .copied()
                        .ok_or_else(|| "no address".to_string())
                });
            let _ = tx.send((q.id, found));
        });
    }
    while let Some(ev) = focus.poll_room_event() {
        if let Some(tx) = room_events {
            // No watcher is not an error.
            let _ = tx.send(ev);
        }
    }
    while let Some(t) = focus.poll_transmit() {
        let _ = transports.send(t);
    }
}
