//! The ConferenceControl service: every call checks its bearer token
//! (`Unauthenticated` without a valid one, `PermissionDenied` for a room it
//! may not touch), validates its fields (`InvalidArgument` naming the
//! field), and maps store outcomes to `NotFound` / `AlreadyExists`.

use tonic::{Request, Response, Status};

use crate::pb;
use crate::pb::conference_control_server::ConferenceControl;
use crate::store::{new_token, Principal, Role, Room, Store, StoreError};

/// A room's policy changed (the focus applies these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyChange {
    /// Created or updated.
    Upsert(Room),
    /// Deleted.
    Delete(String),
}

/// The service over a store.
pub struct ConferenceService {
    store: Store,
    changes: Option<tokio::sync::mpsc::UnboundedSender<PolicyChange>>,
    live: Option<std::sync::Arc<dyn crate::live::Live>>,
}

impl ConferenceService {
    /// A service over `store`, telling `changes` about every room change and
    /// asking `live` about calls in progress.
    pub fn new(
        store: Store,
        changes: Option<tokio::sync::mpsc::UnboundedSender<PolicyChange>>,
        live: Option<std::sync::Arc<dyn crate::live::Live>>,
    ) -> Self {
        Self {
            store,
            changes,
            live,
        }
    }

    fn live(&self) -> Result<&dyn crate::live::Live, Status> {
        self.live
            .as_deref()
            .ok_or_else(|| Status::unavailable("no focus is attached to this policy server"))
    }

    fn tell(&self, c: PolicyChange) {
        if let Some(tx) = &self.changes {
            let _ = tx.send(c);
        }
    }

    async fn principal<T>(&self, req: &Request<T>) -> Result<Principal, Status> {
        let header = req
            .metadata()
            .get("authorization")
            .ok_or_else(|| Status::unauthenticated("missing authorization: Bearer <token>"))?;
        let value = header
            .to_str()
            .map_err(|_| Status::unauthenticated("authorization is not text"))?;
        let token = value
            .strip_prefix("Bearer ")
            .ok_or_else(|| Status::unauthenticated("authorization must be 'Bearer <token>'"))?;
        self.store
            .principal(token.trim())
            .await
            .map_err(internal)?
            .ok_or_else(|| Status::unauthenticated("unknown token"))
    }
}

fn internal(e: StoreError) -> Status {
    match e {
        StoreError::NotFound => Status::not_found("no such conference"),
        StoreError::AlreadyExists => Status::already_exists("conference already exists"),
        other => {
            tracing::error!(error = %other, "store failure");
            Status::internal("store failure")
        }
    }
}

fn check_name(name: &str) -> Result<(), Status> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(Status::invalid_argument(
            "name: 1 to 64 letters, digits, '-', '_' or '.'",
        ));
    }
    Ok(())
}

fn check_fields(c: &pb::Conference) -> Result<(), Status> {
    if c.subject.len() > 256 {
        return Err(Status::invalid_argument("subject: at most 256 bytes"));
    }
    for (field, pin) in [("pin", &c.pin), ("moderator_pin", &c.moderator_pin)] {
        if !pin.is_empty()
            && (pin.len() < 4 || pin.len() > 16 || !pin.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(Status::invalid_argument(format!("{field}: 4 to 16 digits")));
        }
    }
    if c.max_participants > 10_000 {
        return Err(Status::invalid_argument("max_participants: at most 10000"));
    }
    if c.talkers_mixed > 8 {
        return Err(Status::invalid_argument("talkers_mixed: at most 8"));
    }
    if c.watchers.len() > 100 || c.watchers.iter().any(|w| w.is_empty() || w.len() > 256) {
        return Err(Status::invalid_argument(
            "watchers: at most 100 entries of 1 to 256 bytes",
        ));
    }
    Ok(())
}

fn to_pb(r: &Room) -> pb::Conference {
    pb::Conference {
        name: r.name.clone(),
        subject: r.subject.clone(),
        locked: r.locked,
        max_participants: r.max_participants,
        pin: String::new(),
        has_pin: r.pin.is_some(),
        moderator_pin: String::new(),
        has_moderator_pin: r.moderator_pin.is_some(),
        watchers: r.watchers.clone(),
        mute_on_entry: r.mute_on_entry,
        talkers_mixed: r.talkers_mixed,
        created_at: r.created_at,
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

#[tonic::async_trait]
impl ConferenceControl for ConferenceService {
    async fn create_conference(
        &self,
        req: Request<pb::CreateConferenceRequest>,
    ) -> Result<Response<pb::Conference>, Status> {
        let who = self.principal(&req).await?;
        if who.role != Role::Admin {
            return Err(Status::permission_denied(
                "creating conferences needs an admin token",
            ));
        }
        let c = req
            .into_inner()
            .conference
            .ok_or_else(|| Status::invalid_argument("conference: required"))?;
        check_name(&c.name)?;
        check_fields(&c)?;
        let room = Room {
            name: c.name.clone(),
            subject: c.subject.clone(),
            locked: c.locked,
            max_participants: c.max_participants,
            pin: non_empty(&c.pin),
            moderator_pin: non_empty(&c.moderator_pin),
            watchers: c.watchers.clone(),
            mute_on_entry: c.mute_on_entry,
            talkers_mixed: c.talkers_mixed,
            created_at: 0,
        };
        let stored = self.store.create_room(&room).await.map_err(internal)?;
        self.tell(PolicyChange::Upsert(stored.clone()));
        Ok(Response::new(to_pb(&stored)))
    }

    async fn get_conference(
        &self,
        req: Request<pb::GetConferenceRequest>,
    ) -> Result<Response<pb::Conference>, Status> {
        let who = self.principal(&req).await?;
        let name = req.into_inner().name;
        check_name(&name)?;
        if !who.may_view(&name) {
            return Err(Status::permission_denied(format!(
                "this token may not see {name}"
            )));
        }
        Ok(Response::new(to_pb(
            &self.store.room(&name).await.map_err(internal)?,
        )))
    }

    async fn list_conferences(
        &self,
        req: Request<pb::ListConferencesRequest>,
    ) -> Result<Response<pb::ListConferencesResponse>, Status> {
        let who = self.principal(&req).await?;
        let r = req.into_inner();
        let size = match r.page_size {
            0 => 100,
            n if n > 1000 => return Err(Status::invalid_argument("page_size: at most 1000")),
            n => n,
        };
        if !r.page_token.is_empty() {
            check_name(&r.page_token)
                .map_err(|_| Status::invalid_argument("page_token: not one this server issued"))?;
        }
        let rooms = self
            .store
            .rooms(&r.page_token, size)
            .await
            .map_err(internal)?;
        let next = if rooms.len() as u32 == size {
            rooms.last().map(|r| r.name.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        let conferences = rooms
            .iter()
            .filter(|r| who.may_view(&r.name))
            .map(to_pb)
            .collect();
        Ok(Response::new(pb::ListConferencesResponse {
            conferences,
            next_page_token: next,
        }))
    }

    async fn update_conference(
        &self,
        req: Request<pb::UpdateConferenceRequest>,
    ) -> Result<Response<pb::Conference>, Status> {
        let who = self.principal(&req).await?;
        let r = req.into_inner();
        let c = r
            .conference
            .ok_or_else(|| Status::invalid_argument("conference: required"))?;
        check_name(&c.name)?;
        if !who.may_moderate(&c.name) {
            return Err(Status::permission_denied(format!(
                "this token may not change {}",
                c.name
            )));
        }
        check_fields(&c)?;
        let mask = r
            .update_mask
            .ok_or_else(|| Status::invalid_argument("update_mask: required"))?;
        if mask.paths.is_empty() {
            return Err(Status::invalid_argument(
                "update_mask: name at least one field",
            ));
        }
        let mut room = self.store.room(&c.name).await.map_err(internal)?;
        for path in &mask.paths {
            match path.as_str() {
                "subject" => room.subject = c.subject.clone(),
                "locked" => room.locked = c.locked,
                "max_participants" => room.max_participants = c.max_participants,
                "pin" => room.pin = non_empty(&c.pin),
                "moderator_pin" => room.moderator_pin = non_empty(&c.moderator_pin),
                "watchers" => room.watchers = c.watchers.clone(),
                "mute_on_entry" => room.mute_on_entry = c.mute_on_entry,
                "talkers_mixed" => room.talkers_mixed = c.talkers_mixed,
                other => {
                    return Err(Status::invalid_argument(format!(
                        "update_mask: unknown or read-only field {other:?}"
                    )))
                }
            }
        }
        self.store.update_room(&room).await.map_err(internal)?;
        self.tell(PolicyChange::Upsert(room.clone()));
        Ok(Response::new(to_pb(&room)))
    }

    async fn delete_conference(
        &self,
        req: Request<pb::DeleteConferenceRequest>,
    ) -> Result<Response<pb::DeleteConferenceResponse>, Status> {
        let who = self.principal(&req).await?;
        if who.role != Role::Admin {
            return Err(Status::permission_denied(
                "deleting conferences needs an admin token",
            ));
        }
        let name = req.into_inner().name;
        check_name(&name)?;
        self.store.delete_room(&name).await.map_err(internal)?;
        self.tell(PolicyChange::Delete(name));
        Ok(Response::new(pb::DeleteConferenceResponse {}))
    }

    async fn create_token(
        &self,
        req: Request<pb::CreateTokenRequest>,
    ) -> Result<Response<pb::CreateTokenResponse>, Status> {
        let who = self.principal(&req).await?;
        if who.role != Role::Admin {
            return Err(Status::permission_denied(
                "creating tokens needs an admin token",
            ));
        }
        let r = req.into_inner();
        let role = match pb::Role::try_from(r.role) {
            Ok(pb::Role::Admin) => Role::Admin,
            Ok(pb::Role::Moderator) => Role::Moderator,
            Ok(pb::Role::Viewer) => Role::Viewer,
            _ => {
                return Err(Status::invalid_argument(
                    "role: ROLE_ADMIN, ROLE_MODERATOR or ROLE_VIEWER",
                ))
            }
        };
        if role == Role::Moderator && r.rooms.is_empty() {
            return Err(Status::invalid_argument(
                "rooms: a moderator token names its rooms",
            ));
        }
        for room in &r.rooms {
            check_name(room)
                .map_err(|_| Status::invalid_argument("rooms: each a valid room name"))?;
        }
        if r.description.len() > 256 {
            return Err(Status::invalid_argument("description: at most 256 bytes"));
        }
        let token = new_token();
        let id = self
            .store
            .insert_token(&token, role, &r.rooms, &r.description)
            .await
            .map_err(internal)?;
        Ok(Response::new(pb::CreateTokenResponse { token, id }))
    }

    async fn list_participants(
        &self,
        req: Request<pb::ListParticipantsRequest>,
    ) -> Result<Response<pb::ListParticipantsResponse>, Status> {
        let who = self.principal(&req).await?;
        let room = req.into_inner().conference;
        check_name(&room).map_err(|_| Status::invalid_argument("conference: a valid room name"))?;
        if !who.may_view(&room) {
            return Err(Status::permission_denied(format!(
                "this token may not see {room}"
            )));
        }
        let participants = self
            .live()?
            .participants(&room)
            .await
            .ok_or_else(|| Status::not_found(format!("no conference {room}")))?;
        Ok(Response::new(pb::ListParticipantsResponse { participants }))
    }

    async fn update_participant(
        &self,
        req: Request<pb::UpdateParticipantRequest>,
    ) -> Result<Response<pb::Participant>, Status> {
        let who = self.principal(&req).await?;
        let r = req.into_inner();
        moderated_room(&who, &r.conference)?;
        let p = r
            .participant
            .ok_or_else(|| Status::invalid_argument("participant: required"))?;
        check_participant_id(&p.id)?;
        let mask = r
            .update_mask
            .ok_or_else(|| Status::invalid_argument("update_mask: required"))?;
        if mask.paths.is_empty() || mask.paths.iter().any(|f| f != "muted") {
            return Err(Status::invalid_argument(
                "update_mask: only \"muted\" can be updated",
            ));
        }
        let updated = self
            .live()?
            .set_muted(&r.conference, &p.id, p.muted)
            .await
            .ok_or_else(|| {
                Status::not_found(format!("no participant {} in {}", p.id, r.conference))
            })?;
        Ok(Response::new(updated))
    }

    async fn remove_participant(
        &self,
        req: Request<pb::RemoveParticipantRequest>,
    ) -> Result<Response<pb::RemoveParticipantResponse>, Status> {
        let who = self.principal(&req).await?;
        let r = req.into_inner();
        moderated_room(&who, &r.conference)?;
        check_participant_id(&r.id)?;
        if !self.live()?.remove(&r.conference, &r.id).await {
            return Err(Status::not_found(format!(
                "no participant {} in {}",
                r.id, r.conference
            )));
        }
        Ok(Response::new(pb::RemoveParticipantResponse {}))
    }
}

fn check_participant_id(id: &str) -> Result<(), Status> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Status::invalid_argument("id: 1 to 64 letters or digits"));
    }
    Ok(())
}

/// The `conference` field names a valid room this principal moderates.
fn moderated_room(who: &Principal, room: &str) -> Result<(), Status> {
    check_name(room).map_err(|_| Status::invalid_argument("conference: a valid room name"))?;
    if !who.may_moderate(room) {
        return Err(Status::permission_denied(format!(
            "this token may not moderate {room}"
        )));
    }
    Ok(())
}
