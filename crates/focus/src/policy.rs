//! Room policy as the focus applies it: pushed by the policy server on
//! every change (the focus keeps it in memory, so admission never waits on
//! a database). A locked room refuses new calls; its size, watchers and
//! mute-on-entry apply; deleting it ends its calls and subscriptions.

use std::time::Instant;

use crate::core::Focus;
use crate::subscription::EndReason;

/// One room's policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomPolicy {
    /// Room name.
    pub name: String,
    /// Nobody new may join.
    pub locked: bool,
    /// Most participants (None: the focus's default).
    pub max_participants: Option<usize>,
    /// Participants join muted (muted-via-focus).
    pub mute_on_entry: bool,
    /// AORs that may subscribe besides participants.
    pub watchers: Vec<String>,
}

/// A change or a request from the policy server.
#[derive(Debug)]
pub enum FocusCommand {
    /// A room was created or changed.
    UpsertRoom(RoomPolicy),
    /// A room was deleted: end its calls (BYE with a Reason) and subscriptions.
    DeleteRoom(String),
    /// The participants of a room (None: no such room).
    Participants(
        String,
        tokio::sync::oneshot::Sender<Option<Vec<crate::ParticipantInfo>>>,
    ),
    /// Mute (true) or unmute a participant: room, id.
    Mute(
        String,
        String,
        bool,
        tokio::sync::oneshot::Sender<Option<crate::ParticipantInfo>>,
    ),
    /// Remove a participant: room, id.
    Remove(String, String, tokio::sync::oneshot::Sender<bool>),
}

impl Focus {
    /// Applies a change from the policy server.
    pub fn handle_command(&mut self, now: Instant, cmd: FocusCommand) {
        match cmd {
            FocusCommand::UpsertRoom(p) => {
                self.policies.insert(p.name.clone(), p);
            }
            FocusCommand::DeleteRoom(name) => {
                self.policies.remove(&name);
                let calls: Vec<_> = self
                    .calls
                    .iter()
                    .filter(|(_, c)| c.room == name)
                    .map(|(k, _)| k.clone())
                    .collect();
                for id in calls {
                    self.end_call(now, &id, Some(("SIP;cause=410", "conference deleted")));
                }
                let subs: Vec<_> = self
                    .subscriptions
                    .iter()
                    .filter(|(_, s)| s.room == name)
                    .map(|(k, _)| k.clone())
                    .collect();
                for id in subs {
                    self.end_subscription(now, &id, EndReason::NoResource);
                }
            }
            FocusCommand::Participants(room, reply) => {
                let _ = reply.send(self.participants(&room));
            }
            FocusCommand::Mute(room, id, on, reply) => {
                let _ = reply.send(self.set_muted(now, &room, &id, on));
            }
            FocusCommand::Remove(room, id, reply) => {
                let _ = reply.send(self.remove(now, &room, &id));
            }
        }
        self.process_events(now);
    }

    /// The policy of a room, if the policy server has one.
    pub(crate) fn policy(&self, room: &str) -> Option<&RoomPolicy> {
        self.policies.get(room)
    }
}
