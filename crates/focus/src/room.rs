//! A room owns what is its own: its policy, its mixer room while calls are
//! open, its calls and subscriptions, the dial-outs placed into it, its
//! floor and its raised hands. The focus keeps only an index from a
//! dialog to the room that holds it, and forgets a room once nothing is
//! left in it.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::media::{MediaCommand, MediaRoomId};
use sip::transaction::TxId;

use crate::call::{Call, DialogId};
use crate::core::Focus;
use crate::floor::Floor;
use crate::hands::Hands;
use crate::policy::RoomPolicy;
use crate::subscription::{SubState, Subscription};

/// One room.
#[derive(Default)]
pub(crate) struct Room {
    /// Its policy from the policy server; None for a room a caller made,
    /// which ends with its last call.
    pub(crate) policy: Option<RoomPolicy>,
    /// Its mixer room, open while it has calls.
    pub(crate) media: Option<MediaRoomId>,
    /// Its calls in any state, ordered by Call-ID (the order documents list them in).
    pub(crate) calls: BTreeMap<DialogId, Call>,
    /// Its conference-event subscriptions.
    pub(crate) subscriptions: HashMap<DialogId, Subscription>,
    /// The INVITE transactions of the calls the focus is placing into it.
    pub(crate) dialouts: HashSet<TxId>,
    pub(crate) floor: Floor,
    pub(crate) hands: Hands,
    /// Its mix is being recorded.
    pub(crate) recording: bool,
}

impl Room {
    /// Nothing left to keep it for.
    fn is_idle(&self) -> bool {
        self.policy.is_none()
            && self.media.is_none()
            && self.calls.is_empty()
            && self.subscriptions.is_empty()
            && self.dialouts.is_empty()
    }
}

impl Focus {
    /// The room named `name`, made empty if it is not there.
    pub(crate) fn room_entry(&mut self, name: &str) -> &mut Room {
        self.rooms.entry(name.to_owned()).or_default()
    }

    /// Forgets a room that has nothing left in it.
    pub(crate) fn forget_if_idle(&mut self, name: &str) {
        if self.rooms.get(name).is_some_and(Room::is_idle) {
            self.rooms.remove(name);
        }
    }

    /// The room's mixer room, opened if it has none yet.
    pub(crate) fn open_media(&mut self, name: &str) -> MediaRoomId {
        if let Some(m) = self.rooms.get(name).and_then(|r| r.media) {
            return m;
        }
        let talkers = self.policy(name).and_then(|p| p.talkers_mixed);
        // Changes later reach the open room through SetMaxTalkers.
        let room = self.media.new_room();
        self.media.send(MediaCommand::OpenRoom {
            room,
            capacity: self.config.max_room_size,
            talkers,
        });
        if self.policy(name).is_some_and(|p| p.record) {
            self.emit(name, crate::room_events::RoomEventKind::RecordingWanted);
        }
        self.room_entry(name).media = Some(room);
        room
    }

    /// The calls of a room, ordered by Call-ID.
    pub(crate) fn room_calls<'a>(
        &'a self,
        name: &str,
    ) -> impl Iterator<Item = (&'a DialogId, &'a Call)> + 'a {
        self.rooms
            .get(name)
            .into_iter()
            .flat_map(|r| r.calls.iter())
    }

    /// The ids of a room's calls, to act on each.
    pub(crate) fn room_call_ids(&self, name: &str) -> Vec<DialogId> {
        self.rooms
            .get(name)
            .map(|r| r.calls.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The ids of a room's live subscriptions (not terminated), to act on each.
    pub(crate) fn room_subscription_ids(&self, name: &str) -> Vec<DialogId> {
        self.rooms
            .get(name)
            .map(|r| {
                r.subscriptions
                    .iter()
                    .filter(|(_, s)| s.state != SubState::Terminated)
                    .map(|(id, _)| id.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A call, found through the room that holds it.
    pub(crate) fn call(&self, id: &DialogId) -> Option<&Call> {
        let room = self.call_rooms.get(id)?;
        self.rooms.get(room)?.calls.get(id)
    }

    /// A call to change, found through the room that holds it.
    pub(crate) fn call_mut(&mut self, id: &DialogId) -> Option<&mut Call> {
        let room = self.call_rooms.get(id)?;
        self.rooms.get_mut(room)?.calls.get_mut(id)
    }

    /// True when the focus has this call.
    pub(crate) fn has_call(&self, id: &DialogId) -> bool {
        self.call_rooms.contains_key(id)
    }

    /// A call joins its room, and the index.
    pub(crate) fn add_call(&mut self, id: DialogId, call: Call) {
        *self
            .calls_by_ip
            .entry(call.dialog.peer.addr.ip())
            .or_default() += 1;
        self.call_rooms.insert(id.clone(), call.room.clone());
        let room = call.room.clone();
        self.room_entry(&room).calls.insert(id, call);
    }

    /// Calls open from one IP address (for the per-source limit).
    pub(crate) fn calls_from(&self, ip: std::net::IpAddr) -> usize {
        self.calls_by_ip.get(&ip).copied().unwrap_or(0)
    }

    /// A call leaves its room and the index.
    pub(crate) fn remove_call(&mut self, id: &DialogId) -> Option<Call> {
        let room = self.call_rooms.remove(id)?;
        let call = self.rooms.get_mut(&room)?.calls.remove(id)?;
        let ip = call.dialog.peer.addr.ip();
        if let Some(n) = self.calls_by_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.calls_by_ip.remove(&ip);
            }
        }
        Some(call)
    }

    /// A subscription, found through the room that holds it.
    pub(crate) fn subscription(&self, id: &DialogId) -> Option<&Subscription> {
        let room = self.subscription_rooms.get(id)?;
        self.rooms.get(room)?.subscriptions.get(id)
    }

    /// A subscription to change, found through the room that holds it.
    pub(crate) fn subscription_mut(&mut self, id: &DialogId) -> Option<&mut Subscription> {
        let room = self.subscription_rooms.get(id)?;
        self.rooms.get_mut(room)?.subscriptions.get_mut(id)
    }

    /// A subscription joins its room, and the index.
    pub(crate) fn add_subscription(&mut self, id: DialogId, sub: Subscription) {
        self.subscription_rooms.insert(id.clone(), sub.room.clone());
        let room = sub.room.clone();
        self.room_entry(&room).subscriptions.insert(id, sub);
    }

    /// A subscription leaves its room and the index.
    pub(crate) fn remove_subscription(&mut self, id: &DialogId) -> Option<Subscription> {
        let room = self.subscription_rooms.remove(id)?;
        let sub = self.rooms.get_mut(&room)?.subscriptions.remove(id)?;
        self.forget_if_idle(&room);
        Some(sub)
    }
}

impl Focus {
    /// A dial-out joins the focus and its room's index.
    pub(crate) fn add_dialout(&mut self, tx: TxId, d: crate::dialout::DialOut) {
        let room = d.room.clone();
        self.room_entry(&room).dialouts.insert(tx);
        self.dialouts.insert(tx, d);
    }

    /// A dial-out is over (answered, refused or timed out).
    pub(crate) fn remove_dialout(&mut self, tx: TxId) -> Option<crate::dialout::DialOut> {
        let d = self.dialouts.remove(&tx)?;
        if let Some(r) = self.rooms.get_mut(&d.room) {
            r.dialouts.remove(&tx);
        }
        self.forget_if_idle(&d.room);
        Some(d)
    }
}
