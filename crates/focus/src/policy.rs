//! Room policy as the focus applies it: pushed by the policy server on
//! every change (the focus keeps it in memory, so admission never waits on
//! a database). A locked room refuses new calls; its size, watchers and
//! mute-on-entry apply; deleting it ends its calls and subscriptions.

use std::time::Instant;

use crate::call::{DialogId, Role};
use crate::core::Focus;
use crate::floor::{FloorAction, FloorInfo, FloorPolicy};
use crate::live::{ParticipantInfo, ParticipantUpdate};
use crate::room_events::RoomEventKind;
use crate::subscription::EndReason;
use control::{ControlError, HandAction};

/// One room's policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomPolicy {
    /// Room name.
    pub name: String,
    /// Subject, shown in conference-info documents.
    pub subject: String,
    /// Nobody new may join.
    pub locked: bool,
    /// Most participants (None: the focus's default).
    pub max_participants: Option<usize>,
    /// Participants join muted (muted-via-focus).
    pub mute_on_entry: bool,
    /// AORs that may subscribe besides participants.
    pub watchers: Vec<String>,
    /// Callers key this PIN (DTMF, then `#`) to join.
    pub pin: Option<String>,
    /// Callers who key this PIN join as moderators.
    pub moderator_pin: Option<String>,
    /// How the floor is given.
    pub floor: FloorPolicy,
    /// Loudest talkers mixed, applied when the room's mixer opens (None: default).
    pub talkers_mixed: Option<usize>,
    /// The room starts only when a moderator is in: callers before that wait
    /// (not mixed, hearing a tone). The API's `auto_create: false`.
    pub wait_for_moderator: bool,
    /// With `--auth rooms`: only users who authenticate may call or
    /// subscribe (else anonymous callers are admitted, with the PIN).
    pub members_only: bool,
    /// SRTP for this room's calls (None: the server's `--srtp`).
    pub srtp: Option<control::SrtpMode>,
    /// Recorded from its first call: the focus asks for it
    /// ([`crate::RoomEventKind::RecordingWanted`]) when the room opens.
    pub record: bool,
}

pub(crate) use control::{LiveRoom, RoomSnapshot};

/// The limits that may change while the focus runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveLimits {
    /// Simultaneous calls from one IP address (beyond: 503).
    pub max_calls_per_source: usize,
    /// Dial-outs one room may place per minute.
    pub dial_out_per_minute: u32,
    /// Failed authentications within a minute before an address is ignored.
    pub auth_max_failures: u32,
    /// How long such an address is ignored.
    pub auth_lockout: std::time::Duration,
}

/// A reply channel.
pub type Reply<T> = tokio::sync::oneshot::Sender<T>;

/// A change or a request from the policy server.
#[derive(Debug)]
pub enum FocusCommand {
    /// A room was created or changed.
    UpsertRoom(RoomPolicy),
    /// A room was deleted: end its calls (BYE with a Reason) and subscriptions.
    DeleteRoom(String),
    /// The participants of a room (None: no such room).
    Participants(String, Reply<Option<Vec<ParticipantInfo>>>),
    /// Every room with calls open, by name.
    LiveRooms(Reply<Vec<LiveRoom>>),
    /// The participants and floor of a room, for a new watcher (None: no
    /// such room, and none would be made by a dial-in).
    Snapshot(String, Reply<Option<RoomSnapshot>>),
    /// Change a participant: room, id (None: no such participant).
    Update(
        String,
        String,
        ParticipantUpdate,
        Reply<Option<ParticipantInfo>>,
    ),
    /// Mute (true) or unmute everyone but moderators: how many changed (None: no such room).
    MuteAll(String, bool, Reply<Option<usize>>),
    /// Remove a participant: room, id.
    Remove(String, String, Reply<bool>),
    /// Call a URI into a room: the new participant's id, or why not (a host
    /// name in it goes through the focus's own resolver first).
    DialOut(String, String, Reply<Result<String, ControlError>>),
    /// A floor action: room, participant id.
    Floor(
        String,
        String,
        FloorAction,
        Reply<Result<FloorInfo, ControlError>>,
    ),
    /// The floor of a room.
    FloorInfo(String, Reply<Option<FloorInfo>>),
    /// Raise or lower hands in a room: the raised hands after it.
    Hand(String, HandAction, Reply<Result<Vec<String>, ControlError>>),
    /// The raised hands of a room, first raised first (None: no such room).
    RaisedHands(String, Reply<Option<Vec<String>>>),
    /// Start recording a live room's mix into the tap (whose writer the
    /// caller started): participants hear a tone, subscribers see it.
    StartRecording(
        String,
        Box<media_server::recording::RecordTap>,
        Reply<Result<(), ControlError>>,
    ),
    /// Stop recording a room.
    StopRecording(String, Reply<Result<(), ControlError>>),
    /// A SIP user was created or its password changed: name, HA1 values.
    SetUser(String, sip_auth::Credentials),
    /// A SIP user was deleted.
    RemoveUser(String),
    /// Bindings the store kept: address of record, its bindings.
    RestoreBindings(String, Vec<registrar::Binding>),
    /// New limits, read again while running (SIGHUP).
    SetLimits(LiveLimits),
    /// Everything the focus counts, for the metrics endpoint.
    Metrics(Reply<crate::metrics::FocusMetrics>),
    /// Stop taking new calls; those in progress go on.
    Drain,
    /// End every call and subscription (the drain's time is up).
    EndAll,
    /// Reply once no call is open (at once if none is).
    WhenIdle(Reply<()>),
}

impl Focus {
    /// Applies a change from the policy server.
    pub(crate) fn handle_command(&mut self, now: Instant, cmd: FocusCommand) {
        match cmd {
            FocusCommand::UpsertRoom(p) => {
                let name = p.name.clone();
                let old = self.room_entry(&name).policy.replace(p.clone());
                if let Some(old) = old {
                    let open = self.rooms.get(&name).and_then(|r| r.media);
                    if let (Some(room), true) = (open, old.talkers_mixed != p.talkers_mixed) {
                        let n = p
                            .talkers_mixed
                            .unwrap_or(media_server::mixer::RoomSettings::default().max_talkers);
                        self.media
                            .send(crate::media::MediaCommand::SetMaxTalkers { room, talkers: n });
                    }
                    if old.floor != p.floor {
                        self.floor_policy_changed(now, &name);
                    }
                    if old.locked != p.locked || old.subject != p.subject {
                        self.room_policy_changed(now, &name);
                    }
                }
                if !p.wait_for_moderator {
                    self.open_lobby(now, &name);
                }
                self.emit(&name, RoomEventKind::Policy(p));
            }
            FocusCommand::DeleteRoom(name) => {
                if let Some(r) = self.rooms.get_mut(&name) {
                    r.policy = None;
                    r.floor = Default::default();
                }
                for id in self.room_call_ids(&name) {
                    self.end_call(now, &id, Some(("SIP;cause=410", "conference deleted")));
                }
                for id in self.room_subscription_ids(&name) {
                    self.end_subscription(now, &id, EndReason::NoResource);
                }
                self.forget_if_idle(&name);
                self.emit(&name, RoomEventKind::Deleted);
            }
            FocusCommand::Participants(room, reply) => {
                let _ = reply.send(self.participants(&room));
            }
            FocusCommand::LiveRooms(reply) => {
                let _ = reply.send(self.live_rooms());
            }
            FocusCommand::Snapshot(room, reply) => {
                // A room that the first dial-in will make can be watched
                // before it: the watcher sees it empty, then the joins.
                let participants = self
                    .participants(&room)
                    .or_else(|| self.config.auto_create.then(Vec::new));
                let snap = participants.map(|participants| RoomSnapshot {
                    participants,
                    floor: self.floor_info(&room),
                    hands: self.raised_hands(&room).unwrap_or_default(),
                });
                let _ = reply.send(snap);
            }
            FocusCommand::Update(room, id, update, reply) => {
                let _ = reply.send(self.update_participant(now, &room, &id, update));
            }
            FocusCommand::MuteAll(room, on, reply) => {
                let _ = reply.send(self.mute_all(now, &room, on));
            }
            FocusCommand::Remove(room, id, reply) => {
                let _ = reply.send(self.remove(now, &room, &id));
            }
            FocusCommand::DialOut(room, uri, reply) => self.dial_out_api(now, &room, &uri, reply),
            FocusCommand::Floor(room, id, action, reply) => {
                let _ = reply.send(self.floor_action(now, &room, &id, action));
            }
            FocusCommand::FloorInfo(room, reply) => {
                let _ = reply.send(self.room_known(&room).then(|| self.floor_info(&room)));
            }
            FocusCommand::Hand(room, action, reply) => {
                let _ = reply.send(self.hand_action(now, &room, action));
            }
            FocusCommand::RaisedHands(room, reply) => {
                let _ = reply.send(self.raised_hands(&room));
            }
            FocusCommand::StartRecording(room, tap, reply) => {
                let _ = reply.send(self.start_recording(now, &room, tap));
            }
            FocusCommand::StopRecording(room, reply) => {
                let _ = reply.send(self.stop_recording(now, &room));
            }
            FocusCommand::SetUser(name, credentials) => self.gate.set_user(name, credentials),
            FocusCommand::RemoveUser(name) => self.gate.remove_user(&name),
            FocusCommand::RestoreBindings(aor, bindings) => self.restore_bindings(aor, bindings),
            FocusCommand::Drain => self.start_drain(),
            FocusCommand::EndAll => self.end_all(now),
            FocusCommand::WhenIdle(reply) => self.when_idle(reply),
            FocusCommand::Metrics(reply) => {
                let _ = reply.send(self.metrics());
            }
            FocusCommand::SetLimits(l) => {
                self.config.max_calls_per_source = l.max_calls_per_source;
                self.config.dial_out.per_room_per_minute = l.dial_out_per_minute;
                self.config.auth.max_failures = l.auth_max_failures.max(1);
                self.config.auth.lockout = l.auth_lockout;
                self.gate
                    .set_lockout(l.auth_max_failures.max(1), l.auth_lockout);
            }
        }
        self.process_events(now);
    }

    /// Why a participant's REFER is refused, if it is: callers still at
    /// the PIN prompt and listeners may not bring anyone in; only
    /// moderators may remove (method=BYE) in a room the policy server
    /// manages; a locked room takes nobody new.
    pub(crate) fn refer_refusal(
        &self,
        room: &str,
        referrer: &DialogId,
        removing: bool,
    ) -> Option<&'static str> {
        let c = self.call(referrer)?;
        if c.control.pin.is_some() {
            return Some("Forbidden: enter the room's PIN first");
        }
        let managed = self.policy(room);
        if removing {
            if managed.is_some() && c.control.role != Role::Moderator {
                return Some("Forbidden: only moderators may remove participants");
            }
            return None;
        }
        if c.control.role == Role::Listener {
            return Some("Forbidden: listeners may not bring others in");
        }
        if managed.is_some_and(|p| p.locked) {
            return Some("Forbidden: the room is locked");
        }
        None
    }

    /// Why a participant's MESSAGE to the room is refused, if it is.
    pub(crate) fn message_refusal(&self, sender: &DialogId) -> Option<&'static str> {
        let c = self.call(sender)?;
        if c.control.pin.is_some() {
            return Some("Forbidden: enter the room's PIN first");
        }
        if c.control.role == Role::Listener {
            return Some("Forbidden: listeners may not message the room");
        }
        None
    }

    /// The policy of a room, if the policy server has one.
    pub(crate) fn policy(&self, room: &str) -> Option<&RoomPolicy> {
        self.rooms.get(room)?.policy.as_ref()
    }
}
