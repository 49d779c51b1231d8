//! The seam between the policy server and the focus: room policy flows to
//! the focus as commands, the gRPC API's questions about live calls are
//! asked of the focus loop (with a oneshot for the answer), and the focus's
//! room events are turned into the API's `ConferenceEvent`s.

use control::{
    ControlError, FloorAction, FloorInfo, HandAction, LiveRoom, ParticipantInfo, ParticipantUpdate,
    RecordingInfo, RoomSnapshot,
};
use focus::FocusCommand;
use policy_server::convert::{floor as floor_pb, hands as hands_pb, participant as participant_pb};
use policy_server::live::Live;
use policy_server::pb;
use policy_server::service::PolicyChange;
use policy_server::store::BindingRow;
use sip::transaction::{Peer, TransportKind};
use tokio::sync::{broadcast, mpsc, oneshot};

/// Turns the policy server's room changes into commands for the focus.
pub(crate) fn forward_policy(
    mut rx: mpsc::UnboundedReceiver<PolicyChange>,
    tx: mpsc::UnboundedSender<FocusCommand>,
) {
    tokio::spawn(async move {
        while let Some(change) = rx.recv().await {
            let cmd = match change {
                PolicyChange::Upsert(r) => FocusCommand::UpsertRoom(focus::RoomPolicy {
                    name: r.name,
                    subject: r.subject,
                    locked: r.locked,
                    max_participants: (r.max_participants > 0)
                        .then_some(r.max_participants as usize),
                    mute_on_entry: r.mute_on_entry,
                    watchers: r.watchers,
                    talkers_mixed: (r.talkers_mixed > 0).then_some(r.talkers_mixed as usize),
                    wait_for_moderator: !r.auto_create,
                    pin: r.pin,
                    moderator_pin: r.moderator_pin,
                    floor: r.floor_policy,
                    members_only: r.members_only,
                    srtp: r.srtp,
                    record: r.record,
                }),
                PolicyChange::Delete(name) => FocusCommand::DeleteRoom(name),
                PolicyChange::User(name, credentials) => FocusCommand::SetUser(name, credentials),
                PolicyChange::UserRemoved(name) => FocusCommand::RemoveUser(name),
            };
            if tx.send(cmd).is_err() {
                break;
            }
        }
    });
}

/// Writes the registrar's binding changes to the store. What arrives while
/// a write is on disk is coalesced (the latest bindings of each address of
/// record) into the next transaction, so that a burst of REGISTERs costs a
/// few disk syncs, not one each, and the queue never grows with the rate.
pub(crate) fn store_bindings(
    mut rx: mpsc::UnboundedReceiver<focus::BindingsChanged>,
    store: policy_server::store::Store,
) {
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut latest = std::collections::HashMap::new();
            latest.insert(first.aor, first.bindings);
            while let Ok(more) = rx.try_recv() {
                latest.insert(more.aor, more.bindings);
            }
            let changes: Vec<(String, Vec<BindingRow>)> = latest
                .into_iter()
                .map(|(aor, b)| (aor, b.iter().map(binding_row).collect()))
                .collect();
            if let Err(e) = store.replace_bindings(&changes).await {
                tracing::warn!(users = changes.len(), error = %e, "cannot store registrations");
            }
        }
    });
}

/// The bindings the store kept, for the focus after a restart.
pub(crate) async fn restore_bindings(
    store: &policy_server::store::Store,
    tx: &mpsc::UnboundedSender<FocusCommand>,
) -> Result<usize, policy_server::store::StoreError> {
    let now = policy_server::service::now_ms() / 1000;
    let all = store.bindings(now).await?;
    let n = all.len();
    for (aor, rows) in all {
        let bindings = rows.iter().filter_map(binding_from_row).collect();
        let _ = tx.send(FocusCommand::RestoreBindings(aor, bindings));
    }
    Ok(n)
}

fn binding_row(b: &focus::Binding) -> BindingRow {
    BindingRow {
        contact: b.contact.to_string(),
        expires_at: i64::try_from(b.expires_at).unwrap_or(i64::MAX),
        q: b.q,
        call_id: b.call_id.clone(),
        cseq: b.cseq,
        path: b.path.clone(),
        source: b.source.map(|p| {
            format!(
                "{}:{}",
                p.transport.via_token().to_ascii_lowercase(),
                p.addr
            )
        }),
    }
}

fn binding_from_row(r: &BindingRow) -> Option<focus::Binding> {
    let source = r.source.as_deref().and_then(|s| {
        let (t, addr) = s.split_once(':')?;
        let transport = match t {
            "udp" => TransportKind::Udp,
            "tcp" => TransportKind::Tcp,
            "tls" => TransportKind::Tls,
            _ => return None,
        };
        Some(Peer {
            transport,
            addr: addr.parse().ok()?,
        })
    });
    Some(focus::Binding {
        contact: sip::header::NameAddr::parse(&r.contact).ok()?,
        expires_at: u64::try_from(r.expires_at).ok()?,
        q: r.q,
        call_id: r.call_id.clone(),
        cseq: r.cseq,
        path: r.path.clone(),
        source,
    })
}

/// Turns the focus's room events into the API's conference events.
pub(crate) fn forward_events(
    mut rx: broadcast::Receiver<focus::RoomEvent>,
    tx: broadcast::Sender<pb::ConferenceEvent>,
) {
    use pb::conference_event::Event;
    tokio::spawn(async move {
        loop {
            let ev = match rx.recv().await {
                Ok(ev) => ev,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "room events lagged");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => break,
            };
            let event = match ev.kind {
                focus::RoomEventKind::Joined(p) => Event::Joined(participant_pb(p)),
                focus::RoomEventKind::Updated(p) => Event::Updated(participant_pb(p)),
                focus::RoomEventKind::Left(p) => Event::Left(participant_pb(p)),
                focus::RoomEventKind::Talking { id, talking } => Event::Talking(pb::Talking {
                    participant: id,
                    talking,
                }),
                focus::RoomEventKind::Floor(f) => Event::Floor(floor_pb(f)),
                focus::RoomEventKind::Hands(h) => Event::Hands(hands_pb(h)),
                focus::RoomEventKind::Deleted => Event::Deleted(pb::Deleted {}),
                focus::RoomEventKind::Recording(on) => Event::Recording(pb::RecordingState { on }),
                // The policy server publishes conference changes itself,
                // with the stored fields the focus does not keep; the
                // recordings follow their own wish.
                focus::RoomEventKind::Policy(_) | focus::RoomEventKind::RecordingWanted => continue,
            };
            let _ = tx.send(pb::ConferenceEvent {
                conference: ev.room,
                at_ms: policy_server::service::now_ms(),
                event: Some(event),
            });
        }
    });
}

/// The focus's live calls, as the policy server's gRPC API asks for them,
/// and the recordings of its rooms.
pub(crate) struct FocusLive {
    pub(crate) focus: mpsc::UnboundedSender<FocusCommand>,
    pub(crate) recordings: std::sync::Arc<crate::recording::Recordings>,
}

impl FocusLive {
    /// Runs `f` on the recordings where blocking on the disk is allowed;
    /// None if it panicked.
    async fn on_disk<T: Send + 'static>(
        &self,
        f: impl FnOnce(&crate::recording::Recordings) -> T + Send + 'static,
    ) -> Option<T> {
        let recordings = self.recordings.clone();
        tokio::task::spawn_blocking(move || f(&recordings))
            .await
            .ok()
    }

    /// Asks the focus loop and waits for its answer; None when it is gone.
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> FocusCommand) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.focus.send(make(tx)).ok()?;
        rx.await.ok()
    }
}

#[tonic::async_trait]
impl Live for FocusLive {
    async fn rooms(&self) -> Vec<LiveRoom> {
        self.ask(FocusCommand::LiveRooms).await.unwrap_or_default()
    }

    async fn participants(&self, room: &str) -> Option<Vec<ParticipantInfo>> {
        self.ask(|r| FocusCommand::Participants(room.to_owned(), r))
            .await
            .flatten()
    }

    async fn snapshot(&self, room: &str) -> Option<RoomSnapshot> {
        self.ask(|r| FocusCommand::Snapshot(room.to_owned(), r))
            .await
            .flatten()
    }

    async fn update(
        &self,
        room: &str,
        id: &str,
        change: ParticipantUpdate,
    ) -> Option<ParticipantInfo> {
        self.ask(|r| FocusCommand::Update(room.to_owned(), id.to_owned(), change, r))
            .await
            .flatten()
    }

    async fn mute_all(&self, room: &str, on: bool) -> Option<usize> {
        self.ask(|r| FocusCommand::MuteAll(room.to_owned(), on, r))
            .await
            .flatten()
    }

    async fn remove(&self, room: &str, id: &str) -> bool {
        self.ask(|r| FocusCommand::Remove(room.to_owned(), id.to_owned(), r))
            .await
            .unwrap_or(false)
    }

    async fn dial_out(&self, room: &str, uri: &str) -> Result<String, ControlError> {
        self.ask(|r| FocusCommand::DialOut(room.to_owned(), uri.to_owned(), r))
            .await
            .unwrap_or(Err(ControlError::Unavailable))
    }

    async fn floor(
        &self,
        room: &str,
        id: &str,
        action: FloorAction,
    ) -> Result<FloorInfo, ControlError> {
        self.ask(|r| FocusCommand::Floor(room.to_owned(), id.to_owned(), action, r))
            .await
            .unwrap_or(Err(ControlError::Unavailable))
    }

    async fn floor_info(&self, room: &str) -> Option<FloorInfo> {
        self.ask(|r| FocusCommand::FloorInfo(room.to_owned(), r))
            .await
            .flatten()
    }

    async fn hand(&self, room: &str, action: HandAction) -> Result<Vec<String>, ControlError> {
        self.ask(|r| FocusCommand::Hand(room.to_owned(), action, r))
            .await
            .unwrap_or(Err(ControlError::Unavailable))
    }

    async fn raised_hands(&self, room: &str) -> Option<Vec<String>> {
        self.ask(|r| FocusCommand::RaisedHands(room.to_owned(), r))
            .await
            .flatten()
    }

    async fn start_recording(&self, room: &str) -> Result<RecordingInfo, ControlError> {
        self.recordings.begin(room).await
    }

    async fn stop_recording(&self, room: &str) -> Result<RecordingInfo, ControlError> {
        self.recordings.end(room).await
    }

    async fn recordings(&self) -> Vec<RecordingInfo> {
        self.on_disk(|r| r.list()).await.unwrap_or_default()
    }

    async fn recording(&self, id: &str) -> Option<(RecordingInfo, std::path::PathBuf)> {
        let id = id.to_owned();
        self.on_disk(move |r| r.get(&id)).await.flatten()
    }

    async fn delete_recording(&self, id: &str) -> Result<(), ControlError> {
        let id = id.to_owned();
        self.on_disk(move |r| r.delete(&id))
            .await
            .unwrap_or(Err(ControlError::Unavailable))
    }
}
