//! The seam between the policy server and the focus: room policy flows to
//! the focus as commands, the gRPC API's questions about live calls are
//! asked of the focus loop (with a oneshot for the answer), and the focus's
//! room events are turned into the API's `ConferenceEvent`s.

use focus::{FocusCommand, ParticipantInfo, Role};
use policy_server::live::{FloorOp, Live, ParticipantChange};
use policy_server::pb;
use policy_server::service::PolicyChange;
use policy_server::store::FloorPolicy as StoredFloor;
use tokio::sync::{broadcast, mpsc, oneshot};
use tonic::Status;

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
                    floor: match r.floor_policy {
                        StoredFloor::None => focus::FloorPolicy::None,
                        StoredFloor::ModeratorGranted => focus::FloorPolicy::ModeratorGranted,
                        StoredFloor::FirstCome => focus::FloorPolicy::FirstCome,
                    },
                }),
                PolicyChange::Delete(name) => FocusCommand::DeleteRoom(name),
            };
            if tx.send(cmd).is_err() {
                break;
            }
        }
    });
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
                focus::RoomEventKind::Deleted => Event::Deleted(pb::Deleted {}),
                // The policy server publishes conference changes itself,
                // with the stored fields the focus does not keep.
                focus::RoomEventKind::Policy(_) => continue,
            };
            let _ = tx.send(pb::ConferenceEvent {
                conference: ev.room,
                at_ms: policy_server::service::now_ms(),
                event: Some(event),
            });
        }
    });
}

fn role_pb(r: Role) -> pb::ParticipantRole {
    match r {
        Role::Moderator => pb::ParticipantRole::Moderator,
        Role::Participant => pb::ParticipantRole::Participant,
        Role::Listener => pb::ParticipantRole::Listener,
    }
}

fn participant_pb(p: ParticipantInfo) -> pb::Participant {
    pb::Participant {
        id: p.id,
        uri: p.uri,
        display_name: p.display_name,
        status: p.status,
        muted: p.muted,
        role: role_pb(p.role) as i32,
        deaf: p.deaf,
        input_gain_db: p.input_gain_db,
        output_gain_db: p.output_gain_db,
    }
}

fn floor_pb(f: focus::FloorInfo) -> pb::Floor {
    pb::Floor {
        policy: match f.policy {
            focus::FloorPolicy::None => pb::FloorPolicy::None,
            focus::FloorPolicy::ModeratorGranted => pb::FloorPolicy::ModeratorGranted,
            focus::FloorPolicy::FirstCome => pb::FloorPolicy::FirstCome,
        } as i32,
        holder: f.holder.unwrap_or_default(),
        queue: f.queue,
    }
}

/// The focus's live calls, as the policy server's gRPC API asks for them.
pub(crate) struct FocusLive(pub(crate) mpsc::UnboundedSender<FocusCommand>);

impl FocusLive {
    /// Asks the focus loop and waits for its answer; None when it is gone.
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> FocusCommand) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.0.send(make(tx)).ok()?;
        rx.await.ok()
    }
}

/// Where a dial-out URI's host name resolves (A/AAAA through the system
/// resolver; RFC 3263 NAPTR/SRV is not done). None for an IP literal,
/// which the focus takes as is.
async fn resolve(uri: &str) -> Result<Option<std::net::SocketAddr>, Status> {
    let parsed = sip::Uri::parse(uri)
        .map_err(|e| Status::invalid_argument(format!("uri: not a SIP URI ({e})")))?;
    let Some(sip::Host::Name(name)) = &parsed.host else {
        return Ok(None);
    };
    let port = parsed.port.unwrap_or(5060);
    let mut addrs = tokio::net::lookup_host((name.as_str(), port))
        .await
        .map_err(|e| Status::failed_precondition(format!("cannot resolve {name}: {e}")))?;
    let first = addrs.next();
    // Prefer IPv4 where both exist: our media binds follow the SIP address.
    let v4 = first
        .filter(|a| a.is_ipv4())
        .or_else(|| addrs.find(|a| a.is_ipv4()))
        .or(first);
    v4.map(Some)
        .ok_or_else(|| Status::failed_precondition(format!("{name} has no address")))
}

fn focus_gone() -> Status {
    Status::unavailable("the focus is not running")
}

#[tonic::async_trait]
impl Live for FocusLive {
    async fn rooms(&self) -> Vec<policy_server::live::LiveRoom> {
        self.ask(FocusCommand::LiveRooms)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|r| policy_server::live::LiveRoom {
                name: r.name,
                participants: u32::try_from(r.participants).unwrap_or(u32::MAX),
            })
            .collect()
    }

    async fn participants(&self, room: &str) -> Option<Vec<pb::Participant>> {
        self.ask(|r| FocusCommand::Participants(room.to_owned(), r))
            .await
            .flatten()
            .map(|v| v.into_iter().map(participant_pb).collect())
    }

    async fn snapshot(&self, room: &str) -> Option<(Vec<pb::Participant>, pb::Floor)> {
        let s = self
            .ask(|r| FocusCommand::Snapshot(room.to_owned(), r))
            .await
            .flatten()?;
        Some((
            s.participants.into_iter().map(participant_pb).collect(),
            floor_pb(s.floor),
        ))
    }

    async fn update(
        &self,
        room: &str,
        id: &str,
        change: ParticipantChange,
    ) -> Option<pb::Participant> {
        let update = focus::ParticipantUpdate {
            muted: change.muted,
            deaf: change.deaf,
            role: change.role.map(|r| match r {
                pb::ParticipantRole::Moderator => Role::Moderator,
                pb::ParticipantRole::Listener => Role::Listener,
                _ => Role::Participant,
            }),
            input_gain_db: change.input_gain_db,
            output_gain_db: change.output_gain_db,
        };
        self.ask(|r| FocusCommand::Update(room.to_owned(), id.to_owned(), update, r))
            .await
            .flatten()
            .map(participant_pb)
    }

    async fn mute_all(&self, room: &str, on: bool) -> Option<u32> {
        self.ask(|r| FocusCommand::MuteAll(room.to_owned(), on, r))
            .await
            .flatten()
            .map(|n| n as u32)
    }

    async fn remove(&self, room: &str, id: &str) -> bool {
        self.ask(|r| FocusCommand::Remove(room.to_owned(), id.to_owned(), r))
            .await
            .unwrap_or(false)
    }

    async fn dial_out(&self, room: &str, uri: &str) -> Result<String, Status> {
        let resolved = resolve(uri).await?;
        match self
            .ask(|r| FocusCommand::DialOut(room.to_owned(), uri.to_owned(), resolved, r))
            .await
        {
            None => Err(focus_gone()),
            Some(Ok(id)) => Ok(id),
            Some(Err(why)) if why.starts_with("no such conference") => {
                Err(Status::not_found(format!("no conference {room}")))
            }
            Some(Err(why)) if why.starts_with("uri:") => Err(Status::invalid_argument(why)),
            Some(Err(why)) => Err(Status::failed_precondition(why)),
        }
    }

    async fn floor(&self, room: &str, id: &str, op: FloorOp) -> Result<pb::Floor, Status> {
        let action = match op {
            FloorOp::Request => focus::FloorAction::Request,
            FloorOp::Release => focus::FloorAction::Release,
            FloorOp::Grant => focus::FloorAction::Grant,
            FloorOp::Deny => focus::FloorAction::Deny,
        };
        match self
            .ask(|r| FocusCommand::Floor(room.to_owned(), id.to_owned(), action, r))
            .await
        {
            None => Err(focus_gone()),
            Some(Ok(f)) => Ok(floor_pb(f)),
            Some(Err(e)) => Err(match e {
                focus::FloorError::NoRoom => Status::not_found(format!("no conference {room}")),
                focus::FloorError::NoParticipant => {
                    Status::not_found(format!("no participant {id} in {room}"))
                }
                other => Status::failed_precondition(other.to_string()),
            }),
        }
    }

    async fn floor_info(&self, room: &str) -> Option<pb::Floor> {
        self.ask(|r| FocusCommand::FloorInfo(room.to_owned(), r))
            .await
            .flatten()
            .map(floor_pb)
    }
}
