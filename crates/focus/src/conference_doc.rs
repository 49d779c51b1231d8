//! The conference-info documents the focus publishes (RFC 4575): the full
//! state of a room, or a partial one naming only the users that changed.

use std::collections::{BTreeSet, HashMap};

use conference_info::{
    ConferenceInfo, ConferenceState, Description, Element, Endpoint, EndpointStatus, JoiningMethod,
    Media, MediaStatus, Medium, SipDialogId, State, UriEntry, Uris, User, Users,
};

use crate::call::{Call, CallState, DialogId};
use crate::core::Focus;

/// The AOR of a name-addr: its URI without parameters or headers.
pub(crate) fn aor(name_addr: &str) -> String {
    match sip::header::NameAddr::parse(name_addr) {
        Ok(na) => {
            let mut u = na.uri;
            u.params = Default::default();
            u.headers.clear();
            u.port = None;
            u.to_string()
        }
        Err(_) => name_addr.to_owned(),
    }
}

/// The namespace of confab's extensions to the document (RFC 4575 §5
/// lets a document carry elements of other namespaces; clients that do
/// not know them skip them).
pub const CONFAB_NS: &str = "urn:x-confab:params:xml:ns:conference-info";

/// A confab element with unqualified attributes.
fn confab_element(name: &str, attrs: &[(&str, String)]) -> Element {
    Element {
        ns: CONFAB_NS.into(),
        name: name.into(),
        prefix: Some("confab".into()),
        attrs: attrs
            .iter()
            .map(|(k, v)| (String::new(), (*k).into(), None, v.clone()))
            .collect(),
        ..Default::default()
    }
}

/// The confab element `name` of a document's conference-state.
fn confab_state<'a>(doc: &'a ConferenceInfo, name: &str) -> Option<&'a Element> {
    doc.conference_state
        .as_ref()?
        .extensions
        .iter()
        .find(|e| e.ns == CONFAB_NS && e.name == name)
}

/// An unqualified attribute's value.
fn attr<'a>(el: &'a Element, name: &str) -> Option<&'a str> {
    el.attrs
        .iter()
        .find(|a| a.0.is_empty() && a.1 == name)
        .map(|a| a.3.as_str())
}

/// `<confab:raised-hands>` in conference-state: the room's raised hands,
/// first raised first, as the whole line. It is in every document, empty
/// when no hand is up, so that a partial one that lowers the last hand
/// replaces the line as any other does.
fn raised_hands(hands: &[(String, String)]) -> Element {
    Element {
        children: hands
            .iter()
            .map(|(user, participant)| {
                confab_element(
                    "hand",
                    &[("user", user.clone()), ("participant", participant.clone())],
                )
            })
            .collect(),
        ..confab_element("raised-hands", &[])
    }
}

/// `<confab:recording state="on|off"/>` in conference-state: whether the
/// room's mix is being recorded. In every document, like the raised hands.
fn recording(on: bool) -> Element {
    confab_element(
        "recording",
        &[("state", if on { "on" } else { "off" }.into())],
    )
}

/// Whether a document says its room is recorded; None when it does not say.
pub fn recording_in(doc: &ConferenceInfo) -> Option<bool> {
    Some(attr(confab_state(doc, "recording")?, "state")? == "on")
}

/// The raised hands a document carries, in order, as (user AOR,
/// participant id); None when it has no confab extension.
pub fn raised_hands_in(doc: &ConferenceInfo) -> Option<Vec<(String, String)>> {
    let line = confab_state(doc, "raised-hands")?;
    let value = |h: &Element, name: &str| attr(h, name).unwrap_or_default().to_owned();
    Some(
        line.children
            .iter()
            .filter(|h| h.ns == CONFAB_NS && h.name == "hand")
            .map(|h| (value(h, "user"), value(h, "participant")))
            .collect(),
    )
}

fn endpoint_of(id: &DialogId, c: &Call, status: EndpointStatus) -> Endpoint {
    let media_status = match status {
        EndpointStatus::OnHold => MediaStatus::Inactive,
        EndpointStatus::Pending => MediaStatus::Inactive,
        EndpointStatus::MutedViaFocus => MediaStatus::RecvOnly,
        _ => MediaStatus::SendRecv,
    };
    Endpoint {
        entity: Some(c.dialog.remote_target.to_string()),
        display_text: None,
        status: Some(status),
        joining_method: Some(if c.dialed_out {
            JoiningMethod::DialedOut
        } else {
            JoiningMethod::DialedIn
        }),
        referred: c.referred_by.as_ref().map(|by| conference_info::Execution {
            by: Some(by.clone()),
            ..Default::default()
        }),
        media: vec![Media {
            id: "1".into(),
            media_type: Some("audio".into()),
            status: Some(media_status),
            ..Default::default()
        }],
        call_info: Some(SipDialogId {
            call_id: id.call_id.clone(),
            from_tag: id.remote_tag.clone(),
            to_tag: id.local_tag.clone(),
            display_text: None,
        }),
        ..Default::default()
    }
}

impl Focus {
    /// Users of a room, by AOR, built from its calls.
    fn room_users(&self, room: &str, only: Option<&BTreeSet<String>>) -> Vec<User> {
        let mut users: Vec<User> = Vec::new();
        // Where each AOR's user is in `users`: one user per AOR, whatever
        // the number of its calls, without a scan per call.
        let mut at: HashMap<String, usize> = HashMap::new();
        let Some(r) = self.rooms.get(room) else {
            return users;
        };
        for (id, c) in r.calls.iter() {
            let aor = c.aor();
            if only.is_some_and(|o| !o.contains(&aor)) {
                continue;
            }
            let ep = endpoint_of(id, c, r.endpoint_status(id, c));
            match at.get(&aor) {
                Some(&i) => users[i].endpoints.push(ep),
                None => {
                    at.insert(aor.clone(), users.len());
                    users.push(User {
                        entity: Some(aor.clone()),
                        display_text: sip::header::NameAddr::parse(&c.dialog.remote_party)
                            .ok()
                            .and_then(|n| n.display),
                        roles: vec![c.control.role.as_str().into()],
                        endpoints: vec![ep],
                        ..Default::default()
                    })
                }
            }
        }
        // Calls the focus is placing: dialing-out, then alerting.
        let placing = self
            .rooms
            .get(room)
            .into_iter()
            .flat_map(|r| r.dialouts.iter())
            .filter_map(|tx| self.dialouts.get(tx))
            .filter(|d| !d.cancelled);
        for d in placing {
            if only.is_some_and(|o| !o.contains(&d.user)) || at.contains_key(&d.user) {
                continue;
            }
            at.insert(d.user.clone(), users.len());
            users.push(User {
                entity: Some(d.user.clone()),
                roles: vec!["participant".into()],
                endpoints: vec![Endpoint {
                    entity: Some(d.invite.uri.to_string()),
                    status: Some(if d.alerting {
                        EndpointStatus::Alerting
                    } else {
                        EndpointStatus::DialingOut
                    }),
                    joining_method: Some(JoiningMethod::DialedOut),
                    referred: d.referred_by.as_ref().map(|by| conference_info::Execution {
                        by: Some(by.clone()),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
        if let Some(only) = only {
            // Users that changed and have no call left are gone.
            for aor in only {
                if !at.contains_key(aor) {
                    users.push(User {
                        entity: Some(aor.clone()),
                        state: State::Deleted,
                        ..Default::default()
                    });
                }
            }
        }
        users
    }

    /// The raised hands of a room as (user AOR, participant id), in order.
    fn hand_users(&self, room: &str) -> Vec<(String, String)> {
        let Some(r) = self
            .rooms
            .get(room)
            .filter(|r| r.hands.iter().next().is_some())
        else {
            return Vec::new();
        };
        // One pass over the calls, whatever the number of hands.
        let users: HashMap<&str, &str> = self
            .room_calls(room)
            .map(|(id, c)| (id.local_tag.as_str(), c.dialog.remote_party.as_str()))
            .collect();
        r.hands
            .iter()
            .filter_map(|p| Some((aor(users.get(p)?), p.to_owned())))
            .collect()
    }

    /// The document for a room: full, or partial with only `changed` users.
    pub(crate) fn room_document(
        &self,
        room: &str,
        entity: &str,
        version: u32,
        changed: Option<&BTreeSet<String>>,
    ) -> ConferenceInfo {
        let count = self
            .room_calls(room)
            .filter(|(_, c)| c.state != CallState::Ringing)
            .count() as u32;
        let full = changed.is_none();
        ConferenceInfo {
            entity: entity.to_owned(),
            state: if full { State::Full } else { State::Partial },
            version: Some(version),
            description: full.then(|| Description {
                display_text: Some(room.to_owned()),
                subject: self
                    .policy(room)
                    .map(|p| p.subject.clone())
                    .filter(|s| !s.is_empty()),
                conf_uris: Some(Uris {
                    state: State::Full,
                    entries: vec![UriEntry {
                        uri: entity.to_owned(),
                        purpose: Some("participation".into()),
                        ..Default::default()
                    }],
                }),
                maximum_user_count: Some(self.config.max_room_size as u32),
                available_media: vec![Medium {
                    label: "1".into(),
                    media_type: "audio".into(),
                    status: Some(MediaStatus::SendRecv),
                    display_text: None,
                }],
                ..Default::default()
            }),
            conference_state: Some(ConferenceState {
                user_count: Some(count),
                active: Some(count > 0),
                locked: Some(self.policy(room).is_some_and(|p| p.locked)),
                extensions: vec![
                    raised_hands(&self.hand_users(room)),
                    recording(self.is_recording(room)),
                ],
            }),
            users: Some(Users {
                state: if full { State::Full } else { State::Partial },
                users: self.room_users(room, changed),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}
