//! The focus driver: it feeds the core from the transports, the media
//! server's events, the policy server and the clock, and carries out what
//! the core asks. No protocol decisions here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use media_server::MediaServer;
use sip_transport::{Inbound, Transports};
use tokio::sync::{broadcast, mpsc};

use crate::{Focus, Input, MediaDriver, Output};

/// How often the media side's packet counters reach the core, for RTP
/// timeouts (which are whole seconds).
const ACTIVITY_EVERY: Duration = Duration::from_secs(1);

/// The focus's links to the policy side, each optional.
#[derive(Default)]
pub struct Links {
    /// Policy changes and the API's questions.
    pub commands: Option<mpsc::UnboundedReceiver<crate::FocusCommand>>,
    /// Where room events go.
    pub room_events: Option<broadcast::Sender<crate::RoomEvent>>,
    /// Where registrations go, for the store.
    pub bindings: Option<mpsc::UnboundedSender<crate::BindingsChanged>>,
    /// Where ended calls' records go (call detail records).
    pub records: Option<mpsc::UnboundedSender<crate::CallRecord>>,
}

/// Runs the focus until `shutdown` resolves.
pub async fn run(
    mut focus: Focus,
    transports: Transports,
    mut inbound: mpsc::Receiver<Inbound>,
    media: Arc<MediaServer>,
    links: Links,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut media_events = Some(media.subscribe());
    let Links {
        mut commands,
        room_events,
        bindings,
        records,
    } = links;
    let mut edge = Edge {
        media: MediaDriver::new(media).with_records(records),
        transports,
        room_events,
        bindings,
        back: Vec::new(),
    };
    // Name lookups run as tasks; their answers come back here.
    let (resolved_tx, mut resolved) = mpsc::unbounded_channel::<Resolved>();
    let mut activity = tokio::time::interval(ACTIVITY_EVERY);
    activity.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // What the last input (or the start) asked for goes out first; what
        // it made due at once (the NOTIFY fan-out after an answer) runs right
        // after, before the next input.
        edge.flush(&mut focus, &resolved_tx);
        if focus.poll_timeout().is_some_and(|t| t <= Instant::now()) {
            focus.handle_input(Instant::now(), Input::Timeout);
            edge.flush(&mut focus, &resolved_tx);
        }
        let deadline = focus.poll_timeout();
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        let mixer = async {
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
        let input = tokio::select! {
            _ = &mut shutdown => break,
            cmd = command => match cmd {
                Some(c) => Input::Command(c),
                None => {
                    commands = None;
                    continue;
                }
            },
            msg = inbound.recv() => match msg {
                Some(m) => Input::Message { peer: m.peer, message: m.message },
                None => break,
            },
            ev = mixer => match ev {
                Ok(ev) => match edge.media.event(&ev) {
                    Some(m) => Input::Media(m),
                    None => continue,
                },
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "media events lagged");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => {
                    media_events = None;
                    continue;
                }
            },
            Some((id, host, result)) = resolved.recv() => {
                if let Ok(addr) = &result {
                    // A TLS connection to it must show a certificate for the name.
                    edge.transports.set_tls_name(*addr, &host);
                }
                Input::Resolved { id, result }
            }
            _ = activity.tick() => Input::Media(edge.media.activity()),
            _ = sleep => Input::Timeout,
        };
        focus.handle_input(Instant::now(), input);
    }
}

/// A lookup's answer: its id, the name, and the address or why none.
type Resolved = (u64, String, Result<std::net::SocketAddr, String>);

/// Where the core's outputs go.
struct Edge {
    media: MediaDriver,
    transports: Transports,
    room_events: Option<broadcast::Sender<crate::RoomEvent>>,
    bindings: Option<mpsc::UnboundedSender<crate::BindingsChanged>>,
    /// Media reports produced while applying commands, fed back in turn.
    back: Vec<crate::MediaInput>,
}

impl Edge {
    /// Carries out everything the core produced, feeding back what the
    /// media server reports, until the core has nothing more. Never waits:
    /// a peer that cannot take a message has it dropped (counted and
    /// logged by the transports; SIP retransmits or times out).
    fn flush(&mut self, focus: &mut Focus, resolved: &mpsc::UnboundedSender<Resolved>) {
        loop {
            while let Some(out) = focus.poll_output() {
                match out {
                    Output::Media(cmd) => self.media.apply(cmd, &mut self.back),
                    Output::Transmit(t) => {
                        let _ = self.transports.send(t);
                    }
                    Output::Event(ev) => {
                        if let Some(tx) = &self.room_events {
                            // No watcher is not an error.
                            let _ = tx.send(ev);
                        }
                    }
                    Output::Resolve(q) => resolve(q, resolved.clone()),
                    Output::Bindings(b) => {
                        if let Some(tx) = &self.bindings {
                            // The store writer is gone only at shutdown.
                            let _ = tx.send(b);
                        }
                    }
                }
            }
            if self.back.is_empty() {
                return;
            }
            let now = Instant::now();
            for report in std::mem::take(&mut self.back) {
                focus.handle_input(now, Input::Media(report));
            }
        }
    }
}

fn resolve(q: crate::ResolveRequest, tx: mpsc::UnboundedSender<Resolved>) {
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
        let _ = tx.send((q.id, q.host, found));
    });
}
