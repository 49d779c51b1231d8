//! The ConferenceControl service: every call checks its bearer token
//! (`Unauthenticated` without a valid one, `PermissionDenied` for a room it
//! may not touch), validates its fields (`InvalidArgument` naming the
//! field), and maps store outcomes to `NotFound` / `AlreadyExists`.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::broadcast;
use tonic::{Request, Response, Status};

use crate::convert;
use crate::live::{FloorAction, HandAction, Live, LiveRoom, ParticipantUpdate};
use crate::pb;
use crate::pb::conference_control_server::ConferenceControl;
use crate::rate_limit::RateLimiter;
use crate::store::{new_token, Principal, Role, Room, Store, StoreError};
use sip_auth::Credentials;

/// A room's policy changed (the focus applies these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyChange {
    /// Created or updated.
    Upsert(Room),
    /// Deleted.
    Delete(String),
    /// A SIP user was created or given a new password: name, HA1 values.
    User(String, Credentials),
    /// A SIP user was deleted.
    UserRemoved(String),
}

/// The service over a store.
pub struct ConferenceService {
    store: Store,
    changes: Option<tokio::sync::mpsc::UnboundedSender<PolicyChange>>,
    live: Option<Arc<dyn Live>>,
    events: broadcast::Sender<pb::ConferenceEvent>,
    limiter: Arc<RateLimiter>,
    drain: Arc<tokio::sync::Notify>,
    principals: Arc<crate::principal_cache::PrincipalCache>,
}

/// Events a watcher may fall behind by before its stream ends.
pub const WATCH_BACKLOG: usize = 4096;

impl ConferenceService {
    /// A service over `store`, telling `changes` about every room change and
    /// asking `live` about calls in progress.
    /// `events` carries what happens in rooms (the binary feeds it from the
    /// focus); `limiter` bounds each token's request rate.
    pub fn new(
        store: Store,
        changes: Option<tokio::sync::mpsc::UnboundedSender<PolicyChange>>,
        live: Option<Arc<dyn Live>>,
        events: broadcast::Sender<pb::ConferenceEvent>,
        limiter: Arc<RateLimiter>,
        drain: Arc<tokio::sync::Notify>,
        principals: Arc<crate::principal_cache::PrincipalCache>,
    ) -> Self {
        Self {
            store,
            changes,
            live,
            events,
            limiter,
            drain,
            principals,
        }
    }

    fn live(&self) -> Result<&dyn Live, Status> {
        self.live
            .as_deref()
            .ok_or_else(|| Status::unavailable("no focus is attached to this policy server"))
    }

    /// Rooms with calls open (none without a focus).
    async fn live_rooms(&self) -> Vec<LiveRoom> {
        match &self.live {
            Some(live) => live.rooms().await,
            None => Vec::new(),
        }
    }

    /// Calls open in `room`; None when it has none.
    async fn live_count(&self, room: &str) -> Option<u32> {
        self.live_rooms()
            .await
            .into_iter()
            .find(|l| l.name == room)
            .map(|l| count(l.participants))
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
        let (token, now) = (token.trim(), Instant::now());
        let hash = crate::store::hash_token(token);
        let who = match self.principals.get(&hash, now) {
            Some(p) => p,
            None => {
                let p = self
                    .store
                    .principal(token)
                    .await
                    .map_err(internal)?
                    .ok_or_else(|| Status::unauthenticated("unknown token"))?;
                self.principals.put(hash, p.clone(), now);
                p
            }
        };
        if !self.limiter.allow(&who.id, now) {
            return Err(Status::resource_exhausted(
                "too many requests for this token; slow down",
            ));
        }
        Ok(who)
    }

    /// Checks the token is an admin's; `what` names the action for the refusal.
    async fn admin<T>(&self, req: &Request<T>, what: &str) -> Result<Principal, Status> {
        let who = self.principal(req).await?;
        if who.role != Role::Admin {
            return Err(Status::permission_denied(format!(
                "{what} needs an admin token"
            )));
        }
        Ok(who)
    }

    /// Checks the token may see `room`, a valid name in field `conference`.
    async fn viewer_of<T>(&self, req: &Request<T>, room: &str) -> Result<Principal, Status> {
        let who = self.principal(req).await?;
        check_name(room).map_err(|_| Status::invalid_argument("conference: a valid room name"))?;
        if !who.may_view(room) {
            return Err(Status::permission_denied(format!(
                "this token may not see {room}"
            )));
        }
        Ok(who)
    }

    /// Checks the token moderates `room`, a valid name in field `conference`.
    async fn moderator_of<T>(&self, req: &Request<T>, room: &str) -> Result<Principal, Status> {
        let who = self.principal(req).await?;
        moderated_room(&who, room)?;
        Ok(who)
    }

    /// A recording the token may see, by id (field `id`), its file, and
    /// who asked.
    async fn visible_recording<T>(
        &self,
        req: &Request<T>,
        id: &str,
    ) -> Result<(Principal, control::RecordingInfo, std::path::PathBuf), Status> {
        let who = self.principal(req).await?;
        // Room names plus "-" and a time; never a path.
        if !plain_name(id, 96) || id.starts_with('.') {
            return Err(Status::invalid_argument(
                "id: a recording id (letters, digits, '-', '_' or '.')",
            ));
        }
        let (info, path) = self
            .live()?
            .recording(id)
            .await
            .ok_or_else(|| Status::not_found(format!("no recording {id}")))?;
        if !who.may_view(&info.room) {
            return Err(Status::permission_denied(format!(
                "this token may not see {}",
                info.room
            )));
        }
        Ok((who, info, path))
    }

    fn publish(&self, room: &str, event: pb::conference_event::Event) {
        let _ = self.events.send(pb::ConferenceEvent {
            conference: room.to_owned(),
            at_ms: now_ms(),
            event: Some(event),
        });
    }
}

/// A file as a stream of chunks of at most 64 KiB, read ahead by a task of
/// its own (a slow client holds back only its own stream).
fn file_chunks(
    mut file: tokio::fs::File,
) -> impl tokio_stream::Stream<Item = Result<pb::RecordingChunk, Status>> {
    use tokio::io::AsyncReadExt;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            let mut data = vec![0u8; 64 * 1024];
            match file.read(&mut data).await {
                Ok(0) => break,
                Ok(n) => {
                    data.truncate(n);
                    if tx.send(Ok(pb::RecordingChunk { data })).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx
                        .send(Err(Status::internal(format!("reading: {e}"))))
                        .await;
                    break;
                }
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
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

/// The realm the stored HA1 values are for: the one confab's digest
/// challenges name.
pub const SIP_REALM: &str = "confab";

/// A SIP user name: the user part of a SIP URI, unescaped characters only.
fn check_user_name(name: &str) -> Result<(), Status> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.!~*'()+".contains(c))
    {
        return Err(Status::invalid_argument(
            "name: 1 to 64 letters, digits or -_.!~*'()+",
        ));
    }
    Ok(())
}

/// The HA1 values for a valid user name and password.
fn user_credentials(name: &str, password: &str) -> Result<Credentials, Status> {
    check_user_name(name)?;
    if !(8..=256).contains(&password.len()) {
        return Err(Status::invalid_argument("password: 8 to 256 bytes"));
    }
    Ok(Credentials::from_password(name, SIP_REALM, password))
}

fn user_to_pb(u: &crate::store::UserRow) -> pb::User {
    pb::User {
        name: u.name.clone(),
        realm: u.realm.clone(),
        created_at: u.created_at,
        updated_at: u.updated_at,
    }
}

/// 1 to `max` letters, digits, '-', '_' or '.'.
fn plain_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

fn check_name(name: &str) -> Result<(), Status> {
    if !plain_name(name, 64) {
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
    convert::floor_policy_from_pb(c.floor_policy)?;
    if c.watchers.len() > 100 || c.watchers.iter().any(|w| w.is_empty() || w.len() > 256) {
        return Err(Status::invalid_argument(
            "watchers: at most 100 entries of 1 to 256 bytes",
        ));
    }
    Ok(())
}

/// The wire form of a stored room (PINs never leave the server).
pub fn to_pb(r: &Room) -> pb::Conference {
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
        floor_policy: convert::floor_policy(r.floor_policy) as i32,
        auto_create: Some(r.auto_create),
        participant_count: 0,
        ad_hoc: false,
        members_only: r.members_only,
        srtp: convert::srtp_mode(r.srtp) as i32,
        record: r.record,
    }
}

/// A room a caller made by dialling in: the server's defaults, no stored settings.
fn ad_hoc(name: &str, participants: u32) -> pb::Conference {
    pb::Conference {
        name: name.to_owned(),
        participant_count: participants,
        ad_hoc: true,
        auto_create: Some(true),
        ..Default::default()
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
        self.admin(&req, "creating conferences").await?;
        let r = req.into_inner();
        let c = r
            .conference
            .ok_or_else(|| Status::invalid_argument("conference: required"))?;
        check_name(&c.name)?;
        check_fields(&c)?;
        let room = if r.blueprint.is_empty() {
            Room {
                name: c.name.clone(),
                subject: c.subject.clone(),
                locked: c.locked,
                max_participants: c.max_participants,
                pin: non_empty(&c.pin),
                moderator_pin: non_empty(&c.moderator_pin),
                watchers: c.watchers.clone(),
                mute_on_entry: c.mute_on_entry,
                talkers_mixed: c.talkers_mixed,
                floor_policy: convert::floor_policy_from_pb(c.floor_policy)?,
                auto_create: c.auto_create.unwrap_or(true),
                members_only: c.members_only,
                srtp: convert::srtp_mode_from_pb(c.srtp)?,
                record: c.record,
                created_at: 0,
            }
        } else {
            check_name(&r.blueprint)
                .map_err(|_| Status::invalid_argument("blueprint: a valid blueprint name"))?;
            let bp = self
                .store
                .blueprint(&r.blueprint)
                .await
                .map_err(|e| match e {
                    StoreError::NotFound => {
                        Status::not_found(format!("no blueprint {}", r.blueprint))
                    }
                    other => internal(other),
                })?;
            Room {
                name: c.name.clone(),
                subject: non_empty(&c.subject).unwrap_or(bp.room.subject),
                pin: non_empty(&c.pin),
                moderator_pin: non_empty(&c.moderator_pin),
                auto_create: c.auto_create.unwrap_or(bp.room.auto_create),
                members_only: c.members_only || bp.room.members_only,
                srtp: convert::srtp_mode_from_pb(c.srtp)?.or(bp.room.srtp),
                record: c.record || bp.room.record,
                ..bp.room
            }
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
        let live = self.live_count(&name).await;
        match self.store.room(&name).await {
            Ok(r) => Ok(Response::new(pb::Conference {
                participant_count: live.unwrap_or(0),
                ..to_pb(&r)
            })),
            Err(StoreError::NotFound) => match live {
                Some(n) => Ok(Response::new(ad_hoc(&name, n))),
                None => Err(Status::not_found(format!("no conference {name}"))),
            },
            Err(e) => Err(internal(e)),
        }
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
        let stored = self
            .store
            .rooms(&r.page_token, size)
            .await
            .map_err(internal)?;
        // Stored rooms and the rooms callers made, merged by name. The page
        // holds the first `size` names after the token of either kind: the
        // stored page is the first `size` stored names, so none is skipped.
        let mut live: std::collections::HashMap<String, u32> = self
            .live_rooms()
            .await
            .into_iter()
            .filter(|l| l.name > r.page_token)
            .map(|l| (l.name, count(l.participants)))
            .collect();
        let mut page: Vec<pb::Conference> = stored
            .iter()
            .map(|room| pb::Conference {
                participant_count: live.remove(&room.name).unwrap_or(0),
                ..to_pb(room)
            })
            .collect();
        page.extend(live.into_iter().map(|(name, n)| ad_hoc(&name, n)));
        page.sort_by(|a, b| a.name.cmp(&b.name));
        page.truncate(size as usize);
        let next = if page.len() as u32 == size {
            page.last().map(|c| c.name.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        let conferences = page.into_iter().filter(|c| who.may_view(&c.name)).collect();
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
                "members_only" => room.members_only = c.members_only,
                "record" => room.record = c.record,
                "srtp" => room.srtp = convert::srtp_mode_from_pb(c.srtp)?,
                "floor_policy" => {
                    room.floor_policy = convert::floor_policy_from_pb(c.floor_policy)?
                }
                "auto_create" => {
                    room.auto_create = c.auto_create.ok_or_else(|| {
                        Status::invalid_argument("auto_create: set it when update_mask names it")
                    })?
                }
                other => {
                    return Err(Status::invalid_argument(format!(
                        "update_mask: unknown or read-only field {other:?}"
                    )))
                }
            }
        }
        self.store.update_room(&room).await.map_err(internal)?;
        self.tell(PolicyChange::Upsert(room.clone()));
        self.publish(
            &room.name,
            pb::conference_event::Event::ConferenceUpdated(to_pb(&room)),
        );
        Ok(Response::new(to_pb(&room)))
    }

    async fn drain(
        &self,
        req: Request<pb::DrainRequest>,
    ) -> Result<Response<pb::DrainResponse>, Status> {
        self.admin(&req, "draining the server").await?;
        tracing::info!("drain asked for through the API");
        self.drain.notify_one();
        Ok(Response::new(pb::DrainResponse {}))
    }

    async fn delete_conference(
        &self,
        req: Request<pb::DeleteConferenceRequest>,
    ) -> Result<Response<pb::DeleteConferenceResponse>, Status> {
        self.admin(&req, "deleting conferences").await?;
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
        self.admin(&req, "creating tokens").await?;
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

    async fn create_user(
        &self,
        req: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let who = self.admin(&req, "creating users").await?;
        let r = req.into_inner();
        let creds = user_credentials(&r.name, &r.password)?;
        let row = self
            .store
            .create_user(&r.name, SIP_REALM, &creds)
            .await
            .map_err(|e| match e {
                StoreError::AlreadyExists => {
                    Status::already_exists(format!("user {} exists", r.name))
                }
                other => internal(other),
            })?;
        tracing::info!(user = %r.name, by = %who.id, "user created");
        self.tell(PolicyChange::User(r.name.clone(), creds));
        Ok(Response::new(user_to_pb(&row)))
    }

    async fn list_users(
        &self,
        req: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        self.admin(&req, "listing users").await?;
        let users = self
            .store
            .users()
            .await
            .map_err(internal)?
            .iter()
            .map(user_to_pb)
            .collect();
        Ok(Response::new(pb::ListUsersResponse { users }))
    }

    async fn set_user_password(
        &self,
        req: Request<pb::SetUserPasswordRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let who = self.admin(&req, "setting passwords").await?;
        let r = req.into_inner();
        let creds = user_credentials(&r.name, &r.password)?;
        let row = self
            .store
            .set_user_credentials(&r.name, SIP_REALM, &creds)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => Status::not_found(format!("no user {}", r.name)),
                other => internal(other),
            })?;
        tracing::info!(user = %r.name, by = %who.id, "password set");
        self.tell(PolicyChange::User(r.name.clone(), creds));
        Ok(Response::new(user_to_pb(&row)))
    }

    async fn delete_user(
        &self,
        req: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<pb::DeleteUserResponse>, Status> {
        let who = self.admin(&req, "deleting users").await?;
        let name = req.into_inner().name;
        check_user_name(&name)?;
        self.store.delete_user(&name).await.map_err(|e| match e {
            StoreError::NotFound => Status::not_found(format!("no user {name}")),
            other => internal(other),
        })?;
        tracing::info!(user = %name, by = %who.id, "user deleted");
        self.tell(PolicyChange::UserRemoved(name));
        Ok(Response::new(pb::DeleteUserResponse {}))
    }

    async fn list_tokens(
        &self,
        req: Request<pb::ListTokensRequest>,
    ) -> Result<Response<pb::ListTokensResponse>, Status> {
        self.admin(&req, "listing tokens").await?;
        let tokens = self
            .store
            .tokens()
            .await
            .map_err(internal)?
            .into_iter()
            .map(|t| pb::TokenInfo {
                id: t.id,
                role: role_to_pb(t.role) as i32,
                rooms: t.rooms,
                description: t.description,
                created_at: t.created_at,
            })
            .collect();
        Ok(Response::new(pb::ListTokensResponse { tokens }))
    }

    async fn delete_token(
        &self,
        req: Request<pb::DeleteTokenRequest>,
    ) -> Result<Response<pb::DeleteTokenResponse>, Status> {
        let who = self.admin(&req, "revoking tokens").await?;
        let id = req.into_inner().id;
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Status::invalid_argument("id: a token id (hex)"));
        }
        let all = self.store.tokens().await.map_err(internal)?;
        let Some(target) = all.iter().find(|t| t.id == id) else {
            return Err(Status::not_found(format!("no token {id}")));
        };
        let admins = all.iter().filter(|t| t.role == Role::Admin).count();
        if target.role == Role::Admin && admins == 1 {
            return Err(Status::failed_precondition(
                "the last admin token cannot be revoked; create another admin token first",
            ));
        }
        self.store.delete_token(&id).await.map_err(|e| match e {
            StoreError::NotFound => Status::not_found(format!("no token {id}")),
            other => internal(other),
        })?;
        self.principals.forget(&id);
        tracing::info!(token = %id, by = %who.id, "token revoked");
        Ok(Response::new(pb::DeleteTokenResponse {}))
    }

    async fn list_participants(
        &self,
        req: Request<pb::ListParticipantsRequest>,
    ) -> Result<Response<pb::ListParticipantsResponse>, Status> {
        let room = req.get_ref().conference.clone();
        self.viewer_of(&req, &room).await?;
        let participants = self
            .live()?
            .participants(&room)
            .await
            .ok_or_else(|| Status::not_found(format!("no conference {room}")))?
            .into_iter()
            .map(convert::participant)
            .collect();
        Ok(Response::new(pb::ListParticipantsResponse { participants }))
    }

    async fn get_participant(
        &self,
        req: Request<pb::GetParticipantRequest>,
    ) -> Result<Response<pb::Participant>, Status> {
        let r = req.get_ref().clone();
        self.viewer_of(&req, &r.conference).await?;
        check_participant_id(&r.id)?;
        let all = self
            .live()?
            .participants(&r.conference)
            .await
            .ok_or_else(|| Status::not_found(format!("no conference {}", r.conference)))?;
        all.into_iter()
            .find(|p| p.id == r.id)
            .map(|p| Response::new(convert::participant(p)))
            .ok_or_else(|| {
                Status::not_found(format!("no participant {} in {}", r.id, r.conference))
            })
    }

    async fn update_participant(
        &self,
        req: Request<pb::UpdateParticipantRequest>,
    ) -> Result<Response<pb::Participant>, Status> {
        let room = req.get_ref().conference.clone();
        self.moderator_of(&req, &room).await?;
        let r = req.into_inner();
        let p = r
            .participant
            .ok_or_else(|| Status::invalid_argument("participant: required"))?;
        check_participant_id(&p.id)?;
        let mask = r
            .update_mask
            .ok_or_else(|| Status::invalid_argument("update_mask: required"))?;
        if mask.paths.is_empty() {
            return Err(Status::invalid_argument(
                "update_mask: name at least one field",
            ));
        }
        let mut change = ParticipantUpdate::default();
        for path in &mask.paths {
            match path.as_str() {
                "muted" => change.muted = Some(p.muted),
                "deaf" => change.deaf = Some(p.deaf),
                "role" => {
                    change.role = Some(convert::role_from_pb(p.role).ok_or_else(|| {
                        Status::invalid_argument(
                            "role: PARTICIPANT_ROLE_MODERATOR, _PARTICIPANT or _LISTENER",
                        )
                    })?)
                }
                "input_gain_db" => change.input_gain_db = Some(check_gain("input_gain_db", p.input_gain_db)?),
                "output_gain_db" => change.output_gain_db = Some(check_gain("output_gain_db", p.output_gain_db)?),
                other => {
                    return Err(Status::invalid_argument(format!(
                        "update_mask: unknown or read-only field {other:?} (muted, deaf, role, input_gain_db, output_gain_db)"
                    )))
                }
            }
        }
        let updated = self
            .live()?
            .update(&room, &p.id, change)
            .await
            .ok_or_else(|| Status::not_found(format!("no participant {} in {room}", p.id)))?;
        Ok(Response::new(convert::participant(updated)))
    }

    async fn remove_participant(
        &self,
        req: Request<pb::RemoveParticipantRequest>,
    ) -> Result<Response<pb::RemoveParticipantResponse>, Status> {
        let r = req.get_ref().clone();
        self.moderator_of(&req, &r.conference).await?;
        check_participant_id(&r.id)?;
        if !self.live()?.remove(&r.conference, &r.id).await {
            return Err(Status::not_found(format!(
                "no participant {} in {}",
                r.id, r.conference
            )));
        }
        Ok(Response::new(pb::RemoveParticipantResponse {}))
    }

    async fn dial_out(
        &self,
        req: Request<pb::DialOutRequest>,
    ) -> Result<Response<pb::Participant>, Status> {
        let r = req.get_ref().clone();
        self.moderator_of(&req, &r.conference).await?;
        if r.uri.is_empty() || r.uri.len() > 256 || !r.uri.starts_with("sip:") {
            return Err(Status::invalid_argument(
                "uri: a sip: URI of at most 256 bytes",
            ));
        }
        let id = self
            .live()?
            .dial_out(&r.conference, &r.uri)
            .await
            .map_err(|e| convert::status(e, &r.conference, ""))?;
        Ok(Response::new(pb::Participant {
            id,
            uri: r.uri,
            status: "dialing-out".into(),
            role: pb::ParticipantRole::Participant as i32,
            ..Default::default()
        }))
    }

    async fn mute_all(
        &self,
        req: Request<pb::MuteAllRequest>,
    ) -> Result<Response<pb::MuteAllResponse>, Status> {
        let r = req.get_ref().clone();
        self.moderator_of(&req, &r.conference).await?;
        let changed = self
            .live()?
            .mute_all(&r.conference, r.muted)
            .await
            .ok_or_else(|| Status::not_found(format!("no conference {}", r.conference)))?;
        let changed = count(changed);
        Ok(Response::new(pb::MuteAllResponse { changed }))
    }

    async fn list_blueprints(
        &self,
        req: Request<pb::ListBlueprintsRequest>,
    ) -> Result<Response<pb::ListBlueprintsResponse>, Status> {
        self.principal(&req).await?;
        let blueprints = self
            .store
            .blueprints()
            .await
            .map_err(internal)?
            .iter()
            .map(blueprint_to_pb)
            .collect();
        Ok(Response::new(pb::ListBlueprintsResponse { blueprints }))
    }

    async fn get_blueprint(
        &self,
        req: Request<pb::GetBlueprintRequest>,
    ) -> Result<Response<pb::Blueprint>, Status> {
        self.principal(&req).await?;
        let name = req.into_inner().name;
        check_name(&name)?;
        match self.store.blueprint(&name).await {
            Ok(b) => Ok(Response::new(blueprint_to_pb(&b))),
            Err(StoreError::NotFound) => Err(Status::not_found(format!("no blueprint {name}"))),
            Err(e) => Err(internal(e)),
        }
    }

    async fn get_floor(
        &self,
        req: Request<pb::GetFloorRequest>,
    ) -> Result<Response<pb::Floor>, Status> {
        let room = req.get_ref().conference.clone();
        self.viewer_of(&req, &room).await?;
        self.live()?
            .floor_info(&room)
            .await
            .map(|f| Response::new(convert::floor(f)))
            .ok_or_else(|| Status::not_found(format!("no conference {room}")))
    }

    async fn request_floor(
        &self,
        req: Request<pb::FloorRequest>,
    ) -> Result<Response<pb::Floor>, Status> {
        self.floor(req, FloorAction::Request).await
    }

    async fn release_floor(
        &self,
        req: Request<pb::FloorRequest>,
    ) -> Result<Response<pb::Floor>, Status> {
        self.floor(req, FloorAction::Release).await
    }

    async fn grant_floor(
        &self,
        req: Request<pb::FloorRequest>,
    ) -> Result<Response<pb::Floor>, Status> {
        self.floor(req, FloorAction::Grant).await
    }

    async fn deny_floor(
        &self,
        req: Request<pb::FloorRequest>,
    ) -> Result<Response<pb::Floor>, Status> {
        self.floor(req, FloorAction::Deny).await
    }

    async fn list_raised_hands(
        &self,
        req: Request<pb::ListRaisedHandsRequest>,
    ) -> Result<Response<pb::RaisedHands>, Status> {
        let room = req.get_ref().conference.clone();
        self.viewer_of(&req, &room).await?;
        self.live()?
            .raised_hands(&room)
            .await
            .map(|h| Response::new(convert::hands(h)))
            .ok_or_else(|| Status::not_found(format!("no conference {room}")))
    }

    async fn raise_hand(
        &self,
        req: Request<pb::HandRequest>,
    ) -> Result<Response<pb::RaisedHands>, Status> {
        self.hand(req, |participant| HandAction::Raise { participant })
            .await
    }

    async fn lower_hand(
        &self,
        req: Request<pb::HandRequest>,
    ) -> Result<Response<pb::RaisedHands>, Status> {
        self.hand(req, |participant| HandAction::Lower { participant })
            .await
    }

    async fn lower_all_hands(
        &self,
        req: Request<pb::LowerAllHandsRequest>,
    ) -> Result<Response<pb::RaisedHands>, Status> {
        let room = req.get_ref().conference.clone();
        self.moderator_of(&req, &room).await?;
        self.live()?
            .hand(&room, HandAction::LowerAll)
            .await
            .map(|h| Response::new(convert::hands(h)))
            .map_err(|e| convert::status(e, &room, ""))
    }

    async fn start_recording(
        &self,
        req: Request<pb::StartRecordingRequest>,
    ) -> Result<Response<pb::Recording>, Status> {
        let room = req.get_ref().conference.clone();
        self.moderator_of(&req, &room).await?;
        let info = self
            .live()?
            .start_recording(&room)
            .await
            .map_err(|e| convert::status(e, &room, ""))?;
        Ok(Response::new(convert::recording(info)))
    }

    async fn stop_recording(
        &self,
        req: Request<pb::StopRecordingRequest>,
    ) -> Result<Response<pb::Recording>, Status> {
        let room = req.get_ref().conference.clone();
        self.moderator_of(&req, &room).await?;
        let info = self
            .live()?
            .stop_recording(&room)
            .await
            .map_err(|e| convert::status(e, &room, ""))?;
        Ok(Response::new(convert::recording(info)))
    }

    async fn list_recordings(
        &self,
        req: Request<pb::ListRecordingsRequest>,
    ) -> Result<Response<pb::ListRecordingsResponse>, Status> {
        let room = req.get_ref().conference.clone();
        let who = if room.is_empty() {
            self.principal(&req).await?
        } else {
            self.viewer_of(&req, &room).await?
        };
        let recordings = self
            .live()?
            .recordings()
            .await
            .into_iter()
            .filter(|r| (room.is_empty() || r.room == room) && who.may_view(&r.room))
            .map(convert::recording)
            .collect();
        Ok(Response::new(pb::ListRecordingsResponse { recordings }))
    }

    async fn get_recording(
        &self,
        req: Request<pb::GetRecordingRequest>,
    ) -> Result<Response<pb::Recording>, Status> {
        let (_, info, _) = self.visible_recording(&req, &req.get_ref().id).await?;
        Ok(Response::new(convert::recording(info)))
    }

    type FetchRecordingStream =
        Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::RecordingChunk, Status>> + Send>>;

    async fn fetch_recording(
        &self,
        req: Request<pb::FetchRecordingRequest>,
    ) -> Result<Response<Self::FetchRecordingStream>, Status> {
        let (_, info, path) = self.visible_recording(&req, &req.get_ref().id).await?;
        if info.ended_at_ms.is_none() {
            return Err(Status::failed_precondition(format!(
                "recording {} is still going on",
                info.id
            )));
        }
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| Status::not_found(format!("recording {}: {e}", info.id)))?;
        Ok(Response::new(Box::pin(file_chunks(file))))
    }

    async fn delete_recording(
        &self,
        req: Request<pb::DeleteRecordingRequest>,
    ) -> Result<Response<pb::DeleteRecordingResponse>, Status> {
        let (who, info, _) = self.visible_recording(&req, &req.get_ref().id).await?;
        // The room name comes from the recording, not the request: only
        // the right to moderate it is checked.
        if !who.may_moderate(&info.room) {
            return Err(Status::permission_denied(format!(
                "this token may not moderate {}",
                info.room
            )));
        }
        self.live()?
            .delete_recording(&info.id)
            .await
            .map_err(|e| convert::status(e, &info.room, ""))?;
        Ok(Response::new(pb::DeleteRecordingResponse {}))
    }

    type WatchConferenceStream =
        Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::ConferenceEvent, Status>> + Send>>;

    async fn watch_conference(
        &self,
        req: Request<pb::WatchConferenceRequest>,
    ) -> Result<Response<Self::WatchConferenceStream>, Status> {
        let room = req.get_ref().conference.clone();
        self.viewer_of(&req, &room).await?;
        // Subscribe first: a change racing the snapshot then shows twice,
        // never not at all; every event carries whole state, so twice is harmless.
        let mut events = self.events.subscribe();
        let snapshot = self
            .live()?
            .snapshot(&room)
            .await
            .ok_or_else(|| Status::not_found(format!("no conference {room}")))?;
        let participants: Vec<pb::Participant> = snapshot
            .participants
            .into_iter()
            .map(convert::participant)
            .collect();
        let floor = convert::floor(snapshot.floor);
        let hands = convert::hands(snapshot.hands);
        let count = participants.len() as u32;
        let conference = match self.store.room(&room).await {
            Ok(r) => pb::Conference {
                participant_count: count,
                ..to_pb(&r)
            },
            // A room the focus made on the fly has no stored policy.
            Err(StoreError::NotFound) => ad_hoc(&room, count),
            Err(e) => return Err(internal(e)),
        };
        let first = pb::ConferenceEvent {
            conference: room.clone(),
            at_ms: now_ms(),
            event: Some(pb::conference_event::Event::Snapshot(pb::Snapshot {
                conference: Some(conference),
                participants,
                floor: Some(floor),
                hands: Some(hands),
            })),
        };
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            if tx.send(Ok(first)).await.is_err() {
                return;
            }
            loop {
                let ev = tokio::select! {
                    _ = tx.closed() => return,
                    ev = events.recv() => ev,
                };
                match ev {
                    Ok(ev) if ev.conference == room => {
                        let last =
                            matches!(ev.event, Some(pb::conference_event::Event::Deleted(_)));
                        if tx.send(Ok(ev)).await.is_err() || last {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        let _ = tx
                            .send(Err(Status::resource_exhausted(format!(
                                "this watcher fell {n} events behind; watch again for a fresh snapshot"
                            ))))
                            .await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        let _ = tx
                            .send(Err(Status::unavailable("the server is stopping")))
                            .await;
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}

impl ConferenceService {
    /// The token moderates `room`, and `participant` (field `participant`)
    /// is a well-formed id.
    async fn moderator_of_participant<T>(
        &self,
        req: &Request<T>,
        room: &str,
        participant: &str,
    ) -> Result<(), Status> {
        self.moderator_of(req, room).await?;
        check_participant_id(participant)
            .map_err(|_| Status::invalid_argument("participant: 1 to 64 letters or digits"))
    }

    async fn floor(
        &self,
        req: Request<pb::FloorRequest>,
        op: FloorAction,
    ) -> Result<Response<pb::Floor>, Status> {
        let r = req.get_ref().clone();
        self.moderator_of_participant(&req, &r.conference, &r.participant)
            .await?;
        self.live()?
            .floor(&r.conference, &r.participant, op)
            .await
            .map(|f| Response::new(convert::floor(f)))
            .map_err(|e| convert::status(e, &r.conference, &r.participant))
    }

    async fn hand(
        &self,
        req: Request<pb::HandRequest>,
        action: impl FnOnce(String) -> HandAction,
    ) -> Result<Response<pb::RaisedHands>, Status> {
        let r = req.get_ref().clone();
        self.moderator_of_participant(&req, &r.conference, &r.participant)
            .await?;
        self.live()?
            .hand(&r.conference, action(r.participant.clone()))
            .await
            .map(|h| Response::new(convert::hands(h)))
            .map_err(|e| convert::status(e, &r.conference, &r.participant))
    }
}

/// A count for a `uint32` field (saturating: no room holds 4 billion).
fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn role_to_pb(r: Role) -> pb::Role {
    match r {
        Role::Admin => pb::Role::Admin,
        Role::Moderator => pb::Role::Moderator,
        Role::Viewer => pb::Role::Viewer,
    }
}

fn blueprint_to_pb(b: &crate::store::Blueprint) -> pb::Blueprint {
    pb::Blueprint {
        name: b.name.clone(),
        description: b.description.clone(),
        settings: Some(to_pb(&b.room)),
    }
}

fn check_gain(field: &str, db: f32) -> Result<f32, Status> {
    if !db.is_finite() || !(-60.0..=24.0).contains(&db) {
        return Err(Status::invalid_argument(format!("{field}: -60 to 24 dB")));
    }
    Ok(db)
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
