//! The durable policy store: rooms, users, API tokens and registered
//! contacts, in SQLite (a file in the data directory, the default) or
//! PostgreSQL (`--database-url postgres://…`, which several nodes share),
//! through sqlx's `Any` driver so that one set of queries and one set of
//! migrations serve both. The SQL is what both understand: `$N`
//! parameters, and flags as 0/1 integers (the migrations' `INTEGER`).
//! SQLite writes are synchronous (WAL, `synchronous=FULL`): a call returns
//! after its data is on disk, so a `kill -9` loses nothing.
//!
//! On PostgreSQL each change of a room or user is also announced with
//! `NOTIFY` ([`CHANGES_CHANNEL`]), so that the other nodes bring their
//! focus up to date ([`Store::listen`]).

use std::path::Path;

use sha2::{Digest, Sha256};
use sip_auth::Credentials;
use sqlx::any::{AnyPoolOptions, AnyQueryResult, AnyRow};
use sqlx::{AnyPool, Executor, Row};
use thiserror::Error;

/// Store failures.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The row already exists.
    #[error("already exists")]
    AlreadyExists,
    /// No such row.
    #[error("not found")]
    NotFound,
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Writing the admin token file failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The database URL names neither SQLite nor PostgreSQL.
    #[error("unsupported database URL scheme {0:?}: use sqlite:// or postgres://")]
    Scheme(String),
}

/// A room's policy as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    /// Room name.
    pub name: String,
    /// Subject.
    pub subject: String,
    /// Locked: nobody new may join.
    pub locked: bool,
    /// Most participants (0: server default).
    pub max_participants: u32,
    /// Entry PIN.
    pub pin: Option<String>,
    /// Moderator PIN.
    pub moderator_pin: Option<String>,
    /// Watchers besides participants.
    pub watchers: Vec<String>,
    /// Participants join muted.
    pub mute_on_entry: bool,
    /// Loudest talkers mixed (0: server default).
    pub talkers_mixed: u32,
    /// How the floor is given.
    pub floor_policy: FloorPolicy,
    /// The room starts with its first caller (false: with its first moderator).
    pub auto_create: bool,
    /// Only users who authenticate may call or watch (with `--auth rooms`).
    pub members_only: bool,
    /// SRTP for its calls (None: the server's `--srtp`).
    pub srtp: Option<SrtpMode>,
    /// Recorded from its first call.
    pub record: bool,
    /// Unix seconds.
    pub created_at: i64,
}

impl Default for Room {
    fn default() -> Self {
        Self {
            name: String::new(),
            subject: String::new(),
            locked: false,
            max_participants: 0,
            pin: None,
            moderator_pin: None,
            watchers: Vec::new(),
            mute_on_entry: false,
            talkers_mixed: 0,
            floor_policy: FloorPolicy::None,
            auto_create: true,
            members_only: false,
            srtp: None,
            record: false,
            created_at: 0,
        }
    }
}

pub use control::{FloorPolicy, SrtpMode};

/// A room template.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Blueprint {
    /// Its name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// The room it makes (name, PINs and created_at unset).
    pub room: Room,
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything.
    Admin,
    /// Its rooms.
    Moderator,
    /// Read only.
    Viewer,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Moderator => "moderator",
            Role::Viewer => "viewer",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Role::Admin),
            "moderator" => Some(Role::Moderator),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// A SIP user as stored.
#[derive(Debug, Clone)]
pub struct UserRow {
    /// The user name (the user part of their SIP URI, and the digest username).
    pub name: String,
    /// The realm the HA1 values are for.
    pub realm: String,
    /// The HA1 values.
    pub credentials: Credentials,
    /// Seconds since the epoch.
    pub created_at: i64,
    /// When the password last changed.
    pub updated_at: i64,
}

fn user_row(r: &AnyRow) -> UserRow {
    UserRow {
        name: r.get("name"),
        realm: r.get("realm"),
        credentials: Credentials {
            ha1_md5: r.get("ha1_md5"),
            ha1_sha256: r.get("ha1_sha256"),
        },
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}

/// A stored token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// Its id.
    pub id: String,
    /// Its role.
    pub role: Role,
    /// Rooms a moderator token moderates.
    pub rooms: Vec<String>,
    /// What it is for.
    pub description: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// The holder of a valid token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Token id.
    pub id: String,
    /// Its role.
    pub role: Role,
    /// Rooms a moderator moderates.
    pub rooms: Vec<String>,
}

impl Principal {
    /// May this principal change `room`?
    pub fn may_moderate(&self, room: &str) -> bool {
        self.role == Role::Admin
            || (self.role == Role::Moderator && self.rooms.iter().any(|r| r == room))
    }
    /// May this principal see `room`?
    pub fn may_view(&self, room: &str) -> bool {
        self.role != Role::Moderator || self.may_moderate(room)
    }
}

/// The SHA-256 of a token, hex.
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A new random token: 32 bytes, hex.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// NotFound when a statement touched no row.
fn found(res: &AnyQueryResult) -> Result<(), StoreError> {
    if res.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A file of this node's.
    Sqlite,
    /// A server that several nodes may share.
    Postgres,
}

/// The channel on which a PostgreSQL store announces changes.
pub const CHANGES_CHANNEL: &str = "confab_policy";

/// What another node changed, as announced on [`CHANGES_CHANNEL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    /// A room was created, changed or deleted.
    Room(String),
    /// A SIP user was created, given a new password or deleted.
    User(String),
    /// A token was revoked.
    Token(String),
}

impl Changed {
    fn kind_and_key(&self) -> (&'static str, &str) {
        match self {
            Changed::Room(k) => ("room", k),
            Changed::User(k) => ("user", k),
            Changed::Token(k) => ("token", k),
        }
    }
    /// The payload is "NODE KIND KEY": the node that made the change, so
    /// that it can skip its own.
    fn payload(&self, node: &str) -> String {
        let (kind, key) = self.kind_and_key();
        format!("{node} {kind} {key}")
    }
    fn parse(payload: &str) -> Option<(&str, Self)> {
        let mut parts = payload.splitn(3, ' ');
        let (node, kind, key) = (parts.next()?, parts.next()?, parts.next()?.to_owned());
        let changed = match kind {
            "room" => Changed::Room(key),
            "user" => Changed::User(key),
            "token" => Changed::Token(key),
            _ => return None,
        };
        Some((node, changed))
    }
}

/// The store.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    url: String,
    /// This process's name in change announcements.
    node: String,
}

fn join(v: &[String]) -> String {
    v.join("\n")
}
fn split(s: &str) -> Vec<String> {
    s.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}
/// A 0/1 column as a flag (INTEGER on both databases).
fn flag(r: &AnyRow, column: &str) -> bool {
    r.get::<i64, _>(column) != 0
}

impl Store {
    /// Opens (creating it if needed) the SQLite database at `path` and
    /// migrates it.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Self::connect(&format!("sqlite://{}?mode=rwc", path.display())).await
    }

    /// Connects to `url` (`sqlite://FILE` or `postgres://…`) and migrates
    /// the database. Several nodes may do this at once on one PostgreSQL
    /// database: the migrations take a lock.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let scheme = url.split(':').next().unwrap_or_default();
        let backend = match scheme {
            "sqlite" => Backend::Sqlite,
            "postgres" | "postgresql" => Backend::Postgres,
            other => return Err(StoreError::Scheme(other.to_owned())),
        };
        let mut opts = AnyPoolOptions::new().max_connections(match backend {
            Backend::Sqlite => 4,
            Backend::Postgres => 8,
        });
        if backend == Backend::Sqlite {
            // Per connection: durable writes, and waiting out a writer
            // rather than failing with SQLITE_BUSY.
            opts = opts.after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                         PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
                    )
                    .await?;
                    Ok(())
                })
            });
        }
        let pool = opts.connect(url).await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        let id: [u8; 6] = rand::random();
        Ok(Self {
            pool,
            backend,
            url: url.to_owned(),
            node: id.iter().map(|b| format!("{b:02x}")).collect(),
        })
    }

    /// The database this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Tells the other nodes sharing a PostgreSQL database what changed
    /// (nothing to do on SQLite). A failure is logged, not returned: the
    /// change itself is stored.
    async fn announce(&self, changed: Changed) {
        if self.backend != Backend::Postgres {
            return;
        }
        let r = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANGES_CHANNEL)
            .bind(changed.payload(&self.node))
            .execute(&self.pool)
            .await;
        if let Err(e) = r {
            tracing::warn!(error = %e, ?changed, "could not announce a change to the other nodes");
        }
    }

    /// On first start (no token at all), creates an admin token, writes it to
    /// `token_file` with mode 0600 and returns it.
    pub async fn bootstrap_admin(&self, token_file: &Path) -> Result<Option<String>, StoreError> {
        let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM tokens")
            .fetch_one(&self.pool)
            .await?
            .get("n");
        if count > 0 {
            return Ok(None);
        }
        let token = new_token();
        self.insert_token(&token, Role::Admin, &[], "created at first start")
            .await?;
        write_secret(token_file, &token)?;
        Ok(Some(token))
    }

    /// Stores a token (hashed); returns its id.
    pub async fn insert_token(
        &self,
        token: &str,
        role: Role,
        rooms: &[String],
        description: &str,
    ) -> Result<String, StoreError> {
        let id = hash_token(token)[..16].to_owned();
        sqlx::query("INSERT INTO tokens (id, hash, role, rooms, description, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&id)
            .bind(hash_token(token))
            .bind(role.as_str())
            .bind(join(rooms))
            .bind(description)
            .bind(now_secs())
            .execute(&self.pool)
            .await?;
        Ok(id)
    }

    /// Every token, oldest first (id, role, rooms, description, created_at).
    pub async fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, role, rooms, description, created_at FROM tokens ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(TokenRow {
                    id: r.get("id"),
                    role: Role::parse(r.get::<String, _>("role").as_str())?,
                    rooms: split(&r.get::<String, _>("rooms")),
                    description: r.get("description"),
                    created_at: r.get("created_at"),
                })
            })
            .collect())
    }

    /// Deletes a token by id.
    pub async fn delete_token(&self, id: &str) -> Result<(), StoreError> {
        let res = sqlx::query("DELETE FROM tokens WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        found(&res)?;
        self.announce(Changed::Token(id.to_owned())).await;
        Ok(())
    }

    /// Adds a SIP user with its HA1 values for `realm`.
    pub async fn create_user(
        &self,
        name: &str,
        realm: &str,
        creds: &Credentials,
    ) -> Result<UserRow, StoreError> {
        let now = now_secs();
        let res = sqlx::query(
            "INSERT INTO users (name, realm, ha1_md5, ha1_sha256, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(name)
        .bind(realm)
        .bind(&creds.ha1_md5)
        .bind(&creds.ha1_sha256)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await;
        match res {
            Ok(_) => {
                self.announce(Changed::User(name.to_owned())).await;
                Ok(UserRow {
                    name: name.to_owned(),
                    realm: realm.to_owned(),
                    credentials: creds.clone(),
                    created_at: now,
                    updated_at: now,
                })
            }
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::AlreadyExists)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<UserRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, realm, ha1_md5, ha1_sha256, created_at, updated_at FROM users ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(user_row).collect())
    }

    /// One user.
    pub async fn user(&self, name: &str) -> Result<UserRow, StoreError> {
        sqlx::query(
            "SELECT name, realm, ha1_md5, ha1_sha256, created_at, updated_at FROM users WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| user_row(&r))
        .ok_or(StoreError::NotFound)
    }

    /// Replaces a user's HA1 values (a new password).
    pub async fn set_user_credentials(
        &self,
        name: &str,
        realm: &str,
        creds: &Credentials,
    ) -> Result<UserRow, StoreError> {
        let res = sqlx::query(
            "UPDATE users SET realm = $1, ha1_md5 = $2, ha1_sha256 = $3, updated_at = $4 WHERE name = $5",
        )
        .bind(realm)
        .bind(&creds.ha1_md5)
        .bind(&creds.ha1_sha256)
        .bind(now_secs())
        .bind(name)
        .execute(&self.pool)
        .await?;
        found(&res)?;
        self.announce(Changed::User(name.to_owned())).await;
        self.user(name).await
    }

    /// Deletes a user.
    pub async fn delete_user(&self, name: &str) -> Result<(), StoreError> {
        let res = sqlx::query("DELETE FROM users WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        found(&res)?;
        self.announce(Changed::User(name.to_owned())).await;
        Ok(())
    }

    /// The principal a presented token stands for.
    pub async fn principal(&self, token: &str) -> Result<Option<Principal>, StoreError> {
        let row = sqlx::query("SELECT id, role, rooms FROM tokens WHERE hash = $1")
            .bind(hash_token(token))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.and_then(|r| {
            let role = Role::parse(r.get::<String, _>("role").as_str())?;
            Some(Principal {
                id: r.get("id"),
                role,
                rooms: split(&r.get::<String, _>("rooms")),
            })
        }))
    }

    /// Creates a room.
    pub async fn create_room(&self, room: &Room) -> Result<Room, StoreError> {
        let mut room = room.clone();
        room.created_at = now_secs();
        let res = sqlx::query(
            "INSERT INTO rooms (name, subject, locked, max_participants, pin, moderator_pin, watchers, mute_on_entry, talkers_mixed, floor_policy, auto_create, members_only, srtp, record, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(&room.name)
        .bind(&room.subject)
        .bind(room.locked as i64)
        .bind(room.max_participants as i64)
        .bind(&room.pin)
        .bind(&room.moderator_pin)
        .bind(join(&room.watchers))
        .bind(room.mute_on_entry as i64)
        .bind(room.talkers_mixed as i64)
        .bind(room.floor_policy.as_str())
        .bind(room.auto_create as i64)
        .bind(room.members_only as i64)
        .bind(room.srtp.map(SrtpMode::as_str))
        .bind(room.record as i64)
        .bind(room.created_at)
        .execute(&self.pool)
        .await;
        match res {
            Ok(_) => {
                self.announce(Changed::Room(room.name.clone())).await;
                Ok(room)
            }
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::AlreadyExists)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn row_to_room(r: &AnyRow) -> Room {
        Room {
            name: r.get("name"),
            subject: r.get("subject"),
            locked: flag(r, "locked"),
            max_participants: r.get::<i64, _>("max_participants") as u32,
            pin: r.get("pin"),
            moderator_pin: r.get("moderator_pin"),
            watchers: split(&r.get::<String, _>("watchers")),
            mute_on_entry: flag(r, "mute_on_entry"),
            talkers_mixed: r.get::<i64, _>("talkers_mixed") as u32,
            floor_policy: FloorPolicy::parse(r.get::<String, _>("floor_policy").as_str()),
            auto_create: flag(r, "auto_create"),
            members_only: flag(r, "members_only"),
            srtp: r
                .get::<Option<String>, _>("srtp")
                .and_then(|s| SrtpMode::parse(&s)),
            record: flag(r, "record"),
            created_at: r.get("created_at"),
        }
    }

    fn row_to_blueprint(r: &AnyRow) -> Blueprint {
        Blueprint {
            name: r.get("name"),
            description: r.get("description"),
            room: Room {
                subject: r.get("subject"),
                locked: flag(r, "locked"),
                max_participants: r.get::<i64, _>("max_participants") as u32,
                watchers: split(&r.get::<String, _>("watchers")),
                mute_on_entry: flag(r, "mute_on_entry"),
                talkers_mixed: r.get::<i64, _>("talkers_mixed") as u32,
                floor_policy: FloorPolicy::parse(r.get::<String, _>("floor_policy").as_str()),
                auto_create: flag(r, "auto_create"),
                record: flag(r, "record"),
                ..Room::default()
            },
        }
    }

    /// Every blueprint, by name.
    pub async fn blueprints(&self) -> Result<Vec<Blueprint>, StoreError> {
        let rows = sqlx::query("SELECT * FROM blueprints ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(Self::row_to_blueprint).collect())
    }

    /// A blueprint by name.
    pub async fn blueprint(&self, name: &str) -> Result<Blueprint, StoreError> {
        let row = sqlx::query("SELECT * FROM blueprints WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref()
            .map(Self::row_to_blueprint)
            .ok_or(StoreError::NotFound)
    }

    /// A room by name.
    pub async fn room(&self, name: &str) -> Result<Room, StoreError> {
        let row = sqlx::query("SELECT * FROM rooms WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref()
            .map(Self::row_to_room)
            .ok_or(StoreError::NotFound)
    }

    /// Rooms in name order, after `after`, at most `limit`.
    pub async fn rooms(&self, after: &str, limit: u32) -> Result<Vec<Room>, StoreError> {
        let rows = sqlx::query("SELECT * FROM rooms WHERE name > $1 ORDER BY name LIMIT $2")
            .bind(after)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(Self::row_to_room).collect())
    }

    /// Replaces a room's policy (the name stays).
    pub async fn update_room(&self, room: &Room) -> Result<(), StoreError> {
        let res = sqlx::query(
            "UPDATE rooms SET subject = $1, locked = $2, max_participants = $3, pin = $4, moderator_pin = $5, watchers = $6, mute_on_entry = $7, talkers_mixed = $8, floor_policy = $9, auto_create = $10, members_only = $11, srtp = $12, record = $13 \
             WHERE name = $14",
        )
        .bind(&room.subject)
        .bind(room.locked as i64)
        .bind(room.max_participants as i64)
        .bind(&room.pin)
        .bind(&room.moderator_pin)
        .bind(join(&room.watchers))
        .bind(room.mute_on_entry as i64)
        .bind(room.talkers_mixed as i64)
        .bind(room.floor_policy.as_str())
        .bind(room.auto_create as i64)
        .bind(room.members_only as i64)
        .bind(room.srtp.map(SrtpMode::as_str))
        .bind(room.record as i64)
        .bind(&room.name)
        .execute(&self.pool)
        .await?;
        found(&res)?;
        self.announce(Changed::Room(room.name.clone())).await;
        Ok(())
    }

    /// Deletes a room.
    pub async fn delete_room(&self, name: &str) -> Result<(), StoreError> {
        let res = sqlx::query("DELETE FROM rooms WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        found(&res)?;
        self.announce(Changed::Room(name.to_owned())).await;
        Ok(())
    }
}

/// What a [`ChangeListener`] heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// Another node changed this.
    Changed(Changed),
    /// The connection to the database was lost and made again:
    /// announcements in between were missed.
    Missed,
}

/// Announcements of the other nodes sharing a PostgreSQL database.
pub struct ChangeListener {
    inner: sqlx::postgres::PgListener,
    node: String,
}

impl ChangeListener {
    /// The next change another node made. An error means the database
    /// cannot be reached now; calling again tries to reconnect.
    pub async fn next(&mut self) -> Result<Heard, StoreError> {
        loop {
            let Some(n) = self.inner.try_recv().await? else {
                return Ok(Heard::Missed);
            };
            match Changed::parse(n.payload()) {
                Some((node, _)) if node == self.node => {}
                Some((_, changed)) => return Ok(Heard::Changed(changed)),
                None => tracing::warn!(payload = n.payload(), "unknown change announcement"),
            }
        }
    }
}

impl Store {
    /// Listens to the other nodes' changes; None on SQLite, which no other
    /// node shares.
    pub async fn listen(&self) -> Result<Option<ChangeListener>, StoreError> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let mut inner = sqlx::postgres::PgListener::connect(&self.url).await?;
        inner.listen(CHANGES_CHANNEL).await?;
        Ok(Some(ChangeListener {
            inner,
            node: self.node.clone(),
        }))
    }
}

/// A registered contact as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingRow {
    /// The contact, as registered (a name-addr with its parameters).
    pub contact: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// Preference, 0 to 1000.
    pub q: u16,
    /// Call-ID of the REGISTER that made it.
    pub call_id: String,
    /// Its CSeq.
    pub cseq: u32,
    /// Path headers, outermost first.
    pub path: Vec<String>,
    /// The flow it came over ("udp:192.0.2.4:5060"), if known.
    pub source: Option<String>,
}

impl Store {
    /// Replaces the bindings of each address of record given (an empty
    /// list: it has none left), in one transaction.
    pub async fn replace_bindings(
        &self,
        changes: &[(String, Vec<BindingRow>)],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (aor, rows) in changes {
            sqlx::query("DELETE FROM bindings WHERE aor = $1")
                .bind(aor)
                .execute(&mut *tx)
                .await?;
            for b in rows {
                sqlx::query(
                    "INSERT INTO bindings (aor, contact, expires_at, q, call_id, cseq, path, source) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(aor)
                .bind(&b.contact)
                .bind(b.expires_at)
                .bind(b.q as i64)
                .bind(&b.call_id)
                .bind(b.cseq as i64)
                .bind(b.path.join("\n"))
                .bind(b.source.clone().unwrap_or_default())
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every binding that has not expired at `now` (Unix seconds), by
    /// address of record; expired ones are deleted.
    pub async fn bindings(&self, now: i64) -> Result<Vec<(String, Vec<BindingRow>)>, StoreError> {
        sqlx::query("DELETE FROM bindings WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        let rows = sqlx::query("SELECT * FROM bindings ORDER BY aor, contact")
            .fetch_all(&self.pool)
            .await?;
        let mut out: Vec<(String, Vec<BindingRow>)> = Vec::new();
        for r in &rows {
            let aor: String = r.get("aor");
            let path: String = r.get("path");
            let source: String = r.get("source");
            let row = BindingRow {
                contact: r.get("contact"),
                expires_at: r.get("expires_at"),
                q: r.get::<i64, _>("q").clamp(0, 1000) as u16,
                call_id: r.get("call_id"),
                cseq: r.get::<i64, _>("cseq").clamp(0, u32::MAX as i64) as u32,
                path: path.lines().map(str::to_owned).collect(),
                source: (!source.is_empty()).then_some(source),
            };
            match out.last_mut() {
                Some((a, list)) if *a == aor => list.push(row),
                _ => out.push((aor, vec![row])),
            }
        }
        Ok(out)
    }
}

/// Writes a secret readable by its owner only.
fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(secret.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}
