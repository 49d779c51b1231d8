//! The conference event package, notifier side (RFC 6665, RFC 4575):
//! SUBSCRIBE creates, refreshes or ends a subscription to a room; the
//! first NOTIFY carries the full state, every change after it a partial
//! document with `version` one more than the last (scoped to the
//! subscription, starting at 1). Changes closer together than the minimum
//! interval are coalesced into one NOTIFY, never lost.
//!
//! A subscription is [`SubState::Pending`] until the subscriber has taken
//! its first, full document (changes meanwhile wait, so that no partial
//! document can overtake the full one), then [`SubState::Active`], and
//! [`SubState::Terminated`] once its final NOTIFY is out, until that NOTIFY
//! is answered or times out.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use sip::transaction::{Peer, TxId};
use sip::{HeaderName, Method, Request};

use crate::call::DialogId;
use crate::core::Focus;
use crate::timers::Timer;

/// Why a subscription ended, for the final NOTIFY's Subscription-State.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndReason {
    /// It expired, or the subscriber asked for a one-time fetch.
    Timeout,
    /// The subscriber unsubscribed.
    Unsubscribed,
    /// The room went away.
    NoResource,
}

/// Where a subscription is (RFC 6665 §4.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubState {
    /// Accepted; the NOTIFY with the full state is out and not answered yet.
    Pending {
        /// That NOTIFY's transaction.
        first: TxId,
    },
    /// Changes go out as partial documents, no closer than the minimum
    /// interval.
    Active {
        /// When coalesced changes go out, if some wait.
        notify_due: Option<Instant>,
    },
    /// The final NOTIFY is out: nothing more is sent, and a SUBSCRIBE in
    /// its dialog gets 481. Forgotten once that NOTIFY is answered.
    Terminated,
}

pub(crate) struct Subscription {
    pub(crate) room: String,
    /// The room URI as subscribed (the documents' `entity`).
    pub(crate) entity: String,
    /// The subscription's dialog (RFC 6665 §4.1.2.4).
    pub(crate) dialog: sip::dialog::Dialog,
    pub(crate) expires_at: Instant,
    /// Version of the last document sent (0: none yet).
    pub(crate) version: u32,
    /// Users changed since the last NOTIFY.
    pub(crate) changed: BTreeSet<String>,
    pub(crate) last_notify: Option<Instant>,
    pub(crate) state: SubState,
}

/// Counters of the event package.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EventStats {
    /// NOTIFYs sent.
    pub notifies: u64,
    /// Subscriptions alive.
    pub subscriptions: usize,
}

impl Focus {
    /// SUBSCRIBE outside a dialog.
    pub(crate) fn on_subscribe(
        &mut self,
        now: Instant,
        tx: TxId,
        req: Request,
        source: Peer,
        who: &crate::auth::Identity,
    ) {
        let Some(room) = self.check_subscribe(now, tx, &req, who) else {
            return;
        };
        let expires = match self.negotiate_expires(now, tx, &req) {
            Some(e) => e,
            None => return,
        };
        let local_tag = self.new_tag();
        let local_host = self.local_host(&req, source.transport);
        let sips = req.uri.scheme == sip::Scheme::Sips;
        let contact = self.focus_contact(&room, &local_host, source.transport, sips);
        let local = sip::dialog::Local {
            peer: source,
            host: local_host,
            contact: contact.clone(),
        };
        let Some(dialog) = sip::dialog::Dialog::uas(&req, &local_tag, local) else {
            return;
        };
        let id = dialog.id.clone();
        let entity = format!("sip:{room}@{}", req.uri.host_str());
        let headers = vec![
            (HeaderName::EXPIRES, expires.to_string()),
            (HeaderName::CONTACT, contact),
        ];
        self.reply_tagged(now, tx, &req, 200, "OK", &headers, None, &local_tag);
        let sub = Subscription {
            room,
            entity,
            dialog,
            expires_at: now + Duration::from_secs(expires as u64),
            version: 0,
            changed: BTreeSet::new(),
            last_notify: None,
            // Until the first NOTIFY is out just below.
            state: SubState::Active { notify_due: None },
        };
        self.timers.set(
            now + Duration::from_secs(expires as u64),
            Timer::Expiry(id.clone()),
        );
        self.add_subscription(id.clone(), sub);
        if expires == 0 {
            // A one-time fetch (RFC 6665 §4.4.3): full state, then terminated.
            self.end_subscription(now, &id, EndReason::Timeout);
        } else {
            self.send_notify(now, &id, true);
        }
    }

    /// Event, Accept, room and authorization checks; answers and returns None on failure.
    fn check_subscribe(
        &mut self,
        now: Instant,
        tx: TxId,
        req: &Request,
        who: &crate::auth::Identity,
    ) -> Option<String> {
        if let Some((status, reason, headers)) = self.drain_refusal() {
            self.reply(now, tx, req, status, &reason, &headers, None);
            return None;
        }
        if req.headers.event().map(|e| e.package) != Some("conference".into()) {
            let h = vec![(HeaderName::ALLOW_EVENTS, "conference".to_string())];
            self.reply(now, tx, req, 489, "Bad Event", &h, None);
            return None;
        }
        let accepts: Vec<&str> = req.headers.values(&HeaderName::ACCEPT).collect();
        if !accepts.is_empty()
            && !accepts.iter().any(|a| {
                a.split(';').next().is_some_and(|t| {
                    t.trim()
                        .eq_ignore_ascii_case("application/conference-info+xml")
                })
            })
        {
            let h = vec![(
                HeaderName::ACCEPT,
                "application/conference-info+xml".to_string(),
            )];
            self.reply(
                now,
                tx,
                req,
                406,
                "Not Acceptable: only application/conference-info+xml",
                &h,
                None,
            );
            return None;
        }
        let room = req.uri.user.clone().unwrap_or_default();
        if !self.room_known(&room) && !self.config.rooms.contains(&room) {
            self.reply(
                now,
                tx,
                req,
                404,
                &format!("Not Found: no room {room}"),
                &[],
                None,
            );
            return None;
        }
        let who = &who.aor;
        let participant = self.room_calls(&room).any(|(_, c)| c.aor() == *who);
        let is_watcher = |w: &String| w == "*" || w == who;
        let watcher = self.config.watchers.iter().any(is_watcher)
            || self
                .policy(&room)
                .is_some_and(|p| p.watchers.iter().any(is_watcher));
        if !participant && !watcher {
            self.reply(
                now,
                tx,
                req,
                403,
                "Forbidden: only participants and configured watchers may subscribe",
                &[],
                None,
            );
            return None;
        }
        Some(room)
    }

    /// RFC 6665 §4.2.1.1: 423 below the minimum, capped at the maximum.
    fn negotiate_expires(&mut self, now: Instant, tx: TxId, req: &Request) -> Option<u32> {
        let asked = req
            .headers
            .expires()
            .unwrap_or(self.config.subscription_default);
        if asked != 0 && asked < self.config.subscription_min {
            let h = vec![(
                HeaderName::MIN_EXPIRES,
                self.config.subscription_min.to_string(),
            )];
            self.reply(now, tx, req, 423, "Interval Too Brief", &h, None);
            return None;
        }
        Some(asked.min(self.config.subscription_max))
    }

    /// SUBSCRIBE inside a subscription's dialog: refresh or unsubscribe.
    pub(crate) fn on_resubscribe(&mut self, now: Instant, tx: TxId, req: Request, id: &DialogId) {
        let tag = id.local_tag.clone();
        if req.headers.event().map(|e| e.package) != Some("conference".into()) {
            self.reply_tagged(
                now,
                tx,
                &req,
                489,
                "Bad Event",
                &[(HeaderName::ALLOW_EVENTS, "conference".into())],
                None,
                &tag,
            );
            return;
        }
        let checked = self
            .subscription_mut(id)
            .map(|s| s.dialog.handle_request(&req));
        if let Some(Err(e)) = checked {
            // RFC 3261 §12.2.2: an out-of-order refresh is refused.
            self.reply_tagged(
                now,
                tx,
                &req,
                500,
                &format!("Server Internal Error: {e}"),
                &[],
                None,
                &tag,
            );
            return;
        }
        let Some(expires) = self.negotiate_expires(now, tx, &req) else {
            return;
        };
        self.reply_tagged(
            now,
            tx,
            &req,
            200,
            "OK",
            &[(HeaderName::EXPIRES, expires.to_string())],
            None,
            &tag,
        );
        let expires_at = now + Duration::from_secs(expires as u64);
        if let Some(s) = self.subscription_mut(id) {
            s.expires_at = expires_at;
            self.timers.set(expires_at, Timer::Expiry(id.clone()));
        }
        if expires == 0 {
            self.end_subscription(now, id, EndReason::Unsubscribed);
        } else {
            // RFC 6665 §4.2.2: a refresh gets a NOTIFY too, with the full state.
            self.send_notify(now, id, true);
        }
    }

    /// Marks a user of a room as changed. Answer first, then fan out: this
    /// only notes the change (constant time, whatever the number of
    /// subscribers), and the next timeout, due at once, schedules the
    /// room's NOTIFYs; they go out then or, when a subscriber's last one
    /// was too recent, together at the end of its interval.
    pub(crate) fn room_changed(&mut self, now: Instant, room: &str, who: &str) {
        self.fanout.push((room.to_owned(), Some(who.to_owned())));
        self.fanout_at.get_or_insert(now);
    }

    /// The room itself changed (lock, subject): its subscribers get the
    /// full state, coalesced like any change.
    pub(crate) fn room_policy_changed(&mut self, now: Instant, room: &str) {
        self.fanout.push((room.to_owned(), None));
        self.fanout_at.get_or_insert(now);
    }

    /// Sends (or schedules, when coalescing) the NOTIFYs of the changes
    /// noted since the last turn. Also run by [`Focus::handle_timeout`].
    pub(crate) fn handle_fanout(&mut self, now: Instant) {
        if self.fanout_at.take().is_none() {
            return;
        }
        for (room, who) in std::mem::take(&mut self.fanout) {
            self.schedule_notifies(now, &room, who.as_deref());
        }
    }

    fn schedule_notifies(&mut self, now: Instant, room: &str, who: Option<&str>) {
        for id in self.room_subscription_ids(room) {
            if let (Some(who), Some(s)) = (who, self.subscription_mut(&id)) {
                s.changed.insert(who.to_owned());
            }
            self.schedule_notify(now, &id);
        }
    }

    /// An active subscription's changes go out now, or at the end of its
    /// minimum interval; a pending one's wait for its first NOTIFY's answer.
    fn schedule_notify(&mut self, now: Instant, id: &DialogId) {
        let min_interval = self.config.notify_min_interval;
        let Some(s) = self.subscription_mut(id) else {
            return;
        };
        let SubState::Active { notify_due: None } = s.state else {
            return;
        };
        let earliest = s.last_notify.map(|t| t + min_interval).unwrap_or(now);
        if earliest <= now {
            self.send_notify(now, id, false);
        } else {
            s.state = SubState::Active {
                notify_due: Some(earliest),
            };
            self.timers.set(earliest, Timer::Notify(id.clone()));
        }
    }

    /// Sends the next NOTIFY of a subscription: full, or the changed users.
    pub(crate) fn send_notify(&mut self, now: Instant, id: &DialogId, full: bool) {
        let Some(s) = self.subscription_mut(id) else {
            return;
        };
        if s.state == SubState::Terminated {
            return;
        }
        s.version += 1;
        s.last_notify = Some(now);
        // While the full state is unanswered, only the full state is sent.
        let changed = std::mem::take(&mut s.changed);
        let full = full || changed.is_empty() || matches!(s.state, SubState::Pending { .. });
        let (room, entity, version) = (s.room.clone(), s.entity.clone(), s.version);
        let remaining = s.expires_at.saturating_duration_since(now).as_secs();
        let doc = if full {
            self.room_document(&room, &entity, version, None)
        } else {
            self.room_document(&room, &entity, version, Some(&changed))
        };
        let state = format!("active;expires={remaining}");
        let tx = self.notify(now, id, &state, Some(doc.to_xml()));
        if let Some(s) = self.subscription_mut(id) {
            s.state = match tx {
                Some(first) if full => SubState::Pending { first },
                _ => SubState::Active { notify_due: None },
            };
        }
    }

    /// Ends a subscription with a final NOTIFY (full state, RFC 6665 §4.2.2).
    pub(crate) fn end_subscription(&mut self, now: Instant, id: &DialogId, reason: EndReason) {
        let Some(s) = self.subscription_mut(id) else {
            return;
        };
        if s.state == SubState::Terminated {
            return;
        }
        s.version += 1;
        let (room, entity, version) = (s.room.clone(), s.entity.clone(), s.version);
        let state = match reason {
            EndReason::Timeout => "terminated;reason=timeout",
            EndReason::Unsubscribed => "terminated",
            EndReason::NoResource => "terminated;reason=noresource",
        };
        let body = (reason != EndReason::NoResource)
            .then(|| self.room_document(&room, &entity, version, None).to_xml());
        let sent = self.notify(now, id, state, body);
        // Terminated at once: it hears no more changes, and is kept only
        // until its final NOTIFY is answered.
        match sent {
            Some(_) => {
                if let Some(s) = self.subscription_mut(id) {
                    s.state = SubState::Terminated;
                }
            }
            None => {
                self.remove_subscription(id);
            }
        }
    }

    /// Sends one NOTIFY in a subscription's dialog; its transaction.
    fn notify(
        &mut self,
        now: Instant,
        id: &DialogId,
        state: &str,
        body: Option<String>,
    ) -> Option<TxId> {
        let branch = self.new_branch();
        let s = self.subscription_mut(id)?;
        let mut req = s.dialog.request(Method::Notify, &branch);
        req.headers.push(HeaderName::EVENT, "conference");
        req.headers.push(HeaderName::SUBSCRIPTION_STATE, state);
        if let Some(b) = body {
            req.headers
                .push(HeaderName::CONTENT_TYPE, "application/conference-info+xml");
            req.body = b.into_bytes().into();
        }
        let peer = s.dialog.peer;
        match self.send_request(now, req, peer) {
            Ok(tx) => {
                self.event_stats.notifies += 1;
                self.by_notify_tx.insert(tx, id.clone());
                Some(tx)
            }
            Err(e) => {
                tracing::debug!(error = %e, "could not send NOTIFY");
                None
            }
        }
    }

    /// A response to one of our NOTIFYs: 481 or a failure ends the subscription (RFC 6665 §4.2.2).
    pub(crate) fn on_notify_response(&mut self, now: Instant, tx: TxId, status: u16) {
        if status < 200 {
            return;
        }
        let Some(id) = self.by_notify_tx.remove(&tx) else {
            return;
        };
        let Some(s) = self.subscription_mut(&id) else {
            return;
        };
        if status >= 300 {
            self.counters.notifies_failed += 1;
            tracing::info!(status, call_id = %id.call_id, "NOTIFY refused: subscription ended");
            self.remove_subscription(&id);
            return;
        }
        match s.state {
            SubState::Terminated => {
                self.remove_subscription(&id);
            }
            SubState::Pending { first } if first == tx => {
                // The full state was taken: what changed meanwhile follows.
                s.state = SubState::Active { notify_due: None };
                if !s.changed.is_empty() {
                    self.schedule_notify(now, &id);
                }
            }
            _ => {}
        }
    }

    /// A NOTIFY that was never answered ends its subscription.
    pub(crate) fn on_notify_timeout(&mut self, tx: TxId) {
        if let Some(id) = self.by_notify_tx.remove(&tx) {
            self.counters.notifies_failed += 1;
            tracing::info!(call_id = %id.call_id, "NOTIFY timed out: subscription ended");
            self.remove_subscription(&id);
        }
    }

    /// A subscription's expiry came up: it ends if it was not refreshed.
    pub(crate) fn subscription_expiry(&mut self, now: Instant, id: &DialogId) {
        if self.subscription(id).is_some_and(|s| s.expires_at <= now) {
            self.end_subscription(now, id, EndReason::Timeout);
        }
    }

    /// A coalesced NOTIFY came up: it goes now if still due.
    pub(crate) fn notify_due(&mut self, now: Instant, id: &DialogId) {
        let due = self.subscription(id).is_some_and(
            |s| matches!(s.state, SubState::Active { notify_due: Some(t) } if t <= now),
        );
        if due {
            self.send_notify(now, id, false);
        }
    }

    /// Counters of the event package.
    pub fn event_stats(&self) -> EventStats {
        let ended = self
            .rooms
            .values()
            .flat_map(|r| r.subscriptions.values())
            .filter(|s| s.state == SubState::Terminated)
            .count();
        EventStats {
            subscriptions: self.subscription_rooms.len() - ended,
            ..self.event_stats
        }
    }
}
