//! Applying a document to the state a subscriber holds (RFC 4575 §4.6):
//! versions must follow one another; a full document replaces, a partial
//! one merges users by `entity`, endpoints by `entity`, media by `id` and
//! URI entries by URI, with `state="deleted"` removing.

use thiserror::Error;

use crate::model::*;

/// Why an update was not applied.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ApplyError {
    /// A version at or below the one held: stale, ignored.
    #[error("version {got} is not newer than {have}")]
    Stale {
        /// Version held.
        have: u32,
        /// Version received.
        got: u32,
    },
    /// A version gap: some document was lost; fetch the full state again.
    #[error("version gap: have {have}, got {got}")]
    Gap {
        /// Version held.
        have: u32,
        /// Version received.
        got: u32,
    },
    /// A partial document arrived before any full one.
    #[error("partial document without a full one first")]
    NoBase,
}

fn merge_opt<T: Clone>(into: &mut Option<T>, from: &Option<T>) {
    if from.is_some() {
        into.clone_from(from);
    }
}

fn merge_uris(into: &mut Option<Uris>, from: &Option<Uris>) {
    let Some(f) = from else { return };
    match (into.as_mut(), f.state) {
        (Some(i), State::Partial) => {
            for e in &f.entries {
                i.entries.retain(|x| x.uri != e.uri);
                i.entries.push(e.clone());
            }
        }
        _ => {
            *into = Some(Uris {
                state: State::Full,
                entries: f.entries.clone(),
            })
        }
    }
}

fn merge_endpoint(into: &mut Endpoint, from: &Endpoint) {
    merge_opt(&mut into.display_text, &from.display_text);
    merge_opt(&mut into.referred, &from.referred);
    merge_opt(&mut into.status, &from.status);
    merge_opt(&mut into.joining_method, &from.joining_method);
    merge_opt(&mut into.joining_info, &from.joining_info);
    merge_opt(&mut into.disconnection_method, &from.disconnection_method);
    merge_opt(&mut into.disconnection_info, &from.disconnection_info);
    merge_opt(&mut into.call_info, &from.call_info);
    for m in &from.media {
        into.media.retain(|x| x.id != m.id);
        into.media.push(m.clone());
    }
    if !from.extensions.is_empty() {
        into.extensions.clone_from(&from.extensions);
    }
}

fn merge_user(into: &mut User, from: &User) {
    merge_opt(&mut into.display_text, &from.display_text);
    merge_uris(&mut into.associated_aors, &from.associated_aors);
    if !from.roles.is_empty() {
        into.roles.clone_from(&from.roles);
    }
    if !from.languages.is_empty() {
        into.languages.clone_from(&from.languages);
    }
    merge_opt(&mut into.cascaded_focus, &from.cascaded_focus);
    for e in &from.endpoints {
        let pos = into.endpoints.iter().position(|x| x.entity == e.entity);
        match (e.state, pos) {
            (State::Deleted, Some(p)) => {
                into.endpoints.remove(p);
            }
            (State::Deleted, None) => {}
            (State::Partial, Some(p)) => merge_endpoint(&mut into.endpoints[p], e),
            (_, Some(p)) => {
                into.endpoints[p] = Endpoint {
                    state: State::Full,
                    ..e.clone()
                }
            }
            (_, None) => into.endpoints.push(Endpoint {
                state: State::Full,
                ..e.clone()
            }),
        }
    }
}

impl ConferenceInfo {
    /// Applies a received document to this state (which starts as the
    /// first full document). Returns an error, and changes nothing, when the
    /// version is stale or leaves a gap.
    pub fn apply(&mut self, update: &ConferenceInfo) -> Result<(), ApplyError> {
        if let (Some(have), Some(got)) = (self.version, update.version) {
            if got <= have {
                return Err(ApplyError::Stale { have, got });
            }
            if update.state == State::Partial && got != have + 1 {
                return Err(ApplyError::Gap { have, got });
            }
        }
        match update.state {
            State::Full | State::Deleted => {
                *self = update.clone();
                return Ok(());
            }
            State::Partial if self.version.is_none() && self.entity.is_empty() => {
                return Err(ApplyError::NoBase)
            }
            State::Partial => {}
        }
        self.version = update.version.or(self.version);
        // Description and host-info have no state of their own: present means replaced.
        merge_opt(&mut self.description, &update.description);
        merge_opt(&mut self.host_info, &update.host_info);
        if let Some(s) = &update.conference_state {
            let cs = self
                .conference_state
                .get_or_insert_with(ConferenceState::default);
            merge_opt(&mut cs.user_count, &s.user_count);
            merge_opt(&mut cs.active, &s.active);
            merge_opt(&mut cs.locked, &s.locked);
            if !s.extensions.is_empty() {
                cs.extensions.clone_from(&s.extensions);
            }
        }
        if let Some(u) = &update.users {
            let users = self.users.get_or_insert_with(Users::default);
            if u.state == State::Full {
                users.users.clone_from(&u.users);
            } else {
                for user in &u.users {
                    let pos = users.users.iter().position(|x| x.entity == user.entity);
                    match (user.state, pos) {
                        (State::Deleted, Some(p)) => {
                            users.users.remove(p);
                        }
                        (State::Deleted, None) => {}
                        (State::Partial, Some(p)) => merge_user(&mut users.users[p], user),
                        (_, Some(p)) => {
                            users.users[p] = User {
                                state: State::Full,
                                ..user.clone()
                            }
                        }
                        (_, None) => users.users.push(User {
                            state: State::Full,
                            ..user.clone()
                        }),
                    }
                }
            }
        }
        merge_uris(&mut self.sidebars_by_ref, &update.sidebars_by_ref);
        if update.sidebars_by_val.is_some() {
            self.sidebars_by_val.clone_from(&update.sidebars_by_val);
        }
        self.state = State::Full;
        Ok(())
    }
}
