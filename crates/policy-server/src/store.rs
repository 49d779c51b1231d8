//! The durable policy store: rooms and API tokens in SQLite (through sqlx,
//! so PostgreSQL is a later configuration change), with versioned
//! migrations. Writes are synchronous (WAL, `synchronous=FULL`): a call
//! returns after its data is on disk, so a `kill -9` loses nothing.

use std::path::Path;
use std::str::FromStr;

use sha2::{Digest, Sha256};
use sip_auth::Credentials;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Row;
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

fn user_row(r: &sqlx::sqlite::SqliteRow) -> UserRow {
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
fn found(res: &sqlx::sqlite::SqliteQueryResult) -> Result<(), StoreError> {
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

/// The store.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
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

impl Store {
    /// Opens (creating it if needed) the database at `path` and migrates it.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let url = format!("sqlite://{}", path.display());
        let opts = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool })
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
        sqlx::query("INSERT INTO tokens (id, hash, role, rooms, description, created_at) VALUES (?, ?, ?, ?, ?, ?)")
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
        let res = sqlx::query("DELETE FROM tokens WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        found(&res)?;
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
            "INSERT INTO users (name, realm, ha1_md5, ha1_sha256, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
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
            Ok(_) => Ok(UserRow {
                name: name.to_owned(),
                realm: realm.to_owned(),
                credentials: creds.clone(),
                created_at: now,
                updated_at: now,
            }),
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
            "SELECT name, realm, ha1_md5, ha1_sha256, created_at, updated_at FROM users WHERE name = ?",
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
            "UPDATE users SET realm = ?, ha1_md5 = ?, ha1_sha256 = ?, updated_at = ? WHERE name = ?",
        )
        .bind(realm)
        .bind(&creds.ha1_md5)
        .bind(&creds.ha1_sha256)
        .bind(now_secs())
        .bind(name)
        .execute(&self.pool)
        .await?;
        found(&res)?;
        self.user(name).await
    }

    /// Deletes a user.
    pub async fn delete_user(&self, name: &str) -> Result<(), StoreError> {
        let res = sqlx::query("DELETE FROM users WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await?;
        found(&res)?;
        Ok(())
    }

    /// The principal a presented token stands for.
    pub async fn principal(&self, token: &str) -> Result<Option<Principal>, StoreError> {
        let row = sqlx::query("SELECT id, role, rooms FROM tokens WHERE hash = ?")
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
            "INSERT INTO rooms (name, subject, locked, max_participants, pin, moderator_pin, watchers, mute_on_entry, talkers_mixed, floor_policy, auto_create, members_only, srtp, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&room.name)
        .bind(&room.subject)
        .bind(room.locked)
        .bind(room.max_participants as i64)
        .bind(&room.pin)
        .bind(&room.moderator_pin)
        .bind(join(&room.watchers))
        .bind(room.mute_on_entry)
        .bind(room.talkers_mixed as i64)
        .bind(room.floor_policy.as_str())
        .bind(room.auto_create)
        .bind(room.members_only)
        .bind(room.srtp.map(SrtpMode::as_str))
        .bind(room.created_at)
        .execute(&self.pool)
        .await;
        match res {
            Ok(_) => Ok(room),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::AlreadyExists)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn row_to_room(r: &sqlx::sqlite::SqliteRow) -> Room {
        Room {
            name: r.get("name"),
            subject: r.get("subject"),
            locked: r.get("locked"),
            max_participants: r.get::<i64, _>("max_participants") as u32,
            pin: r.get("pin"),
            moderator_pin: r.get("moderator_pin"),
            watchers: split(&r.get::<String, _>("watchers")),
            mute_on_entry: r.get("mute_on_entry"),
            talkers_mixed: r.get::<i64, _>("talkers_mixed") as u32,
            floor_policy: FloorPolicy::parse(r.get::<String, _>("floor_policy").as_str()),
            auto_create: r.get("auto_create"),
            members_only: r.get("members_only"),
            srtp: r
                .get::<Option<String>, _>("srtp")
                .and_then(|s| SrtpMode::parse(&s)),
            created_at: r.get("created_at"),
        }
    }

    fn row_to_blueprint(r: &sqlx::sqlite::SqliteRow) -> Blueprint {
        Blueprint {
            name: r.get("name"),
            description: r.get("description"),
            room: Room {
                subject: r.get("subject"),
                locked: r.get("locked"),
                max_participants: r.get::<i64, _>("max_participants") as u32,
                watchers: split(&r.get::<String, _>("watchers")),
                mute_on_entry: r.get("mute_on_entry"),
                talkers_mixed: r.get::<i64, _>("talkers_mixed") as u32,
                floor_policy: FloorPolicy::parse(r.get::<String, _>("floor_policy").as_str()),
                auto_create: r.get("auto_create"),
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
        let row = sqlx::query("SELECT * FROM blueprints WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref()
            .map(Self::row_to_blueprint)
            .ok_or(StoreError::NotFound)
    }

    /// A room by name.
    pub async fn room(&self, name: &str) -> Result<Room, StoreError> {
        let row = sqlx::query("SELECT * FROM rooms WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref()
            .map(Self::row_to_room)
            .ok_or(StoreError::NotFound)
    }

    /// Rooms in name order, after `after`, at most `limit`.
    pub async fn rooms(&self, after: &str, limit: u32) -> Result<Vec<Room>, StoreError> {
        let rows = sqlx::query("SELECT * FROM rooms WHERE name > ? ORDER BY name LIMIT ?")
            .bind(after)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(Self::row_to_room).collect())
    }

    /// Replaces a room's policy (the name stays).
    pub async fn update_room(&self, room: &Room) -> Result<(), StoreError> {
        let res = sqlx::query(
            "UPDATE rooms SET subject = ?, locked = ?, max_participants = ?, pin = ?, moderator_pin = ?, watchers = ?, mute_on_entry = ?, talkers_mixed = ?, floor_policy = ?, auto_create = ?, members_only = ?, srtp = ? \
             WHERE name = ?",
        )
        .bind(&room.subject)
        .bind(room.locked)
        .bind(room.max_participants as i64)
        .bind(&room.pin)
        .bind(&room.moderator_pin)
        .bind(join(&room.watchers))
        .bind(room.mute_on_entry)
        .bind(room.talkers_mixed as i64)
        .bind(room.floor_policy.as_str())
        .bind(room.auto_create)
        .bind(room.members_only)
        .bind(room.srtp.map(SrtpMode::as_str))
        .bind(&room.name)
        .execute(&self.pool)
        .await?;
        found(&res)?;
        Ok(())
    }

    /// Deletes a room.
    pub async fn delete_room(&self, name: &str) -> Result<(), StoreError> {
        let res = sqlx::query("DELETE FROM rooms WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await?;
        found(&res)?;
        Ok(())
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
            sqlx::query("DELETE FROM bindings WHERE aor = ?")
                .bind(aor)
                .execute(&mut *tx)
                .await?;
            for b in rows {
                sqlx::query(
                    "INSERT INTO bindings (aor, contact, expires_at, q, call_id, cseq, path, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
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
        sqlx::query("DELETE FROM bindings WHERE expires_at <= ?")
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
