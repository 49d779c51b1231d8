//! # confabctl: moderate confab rooms from a shell
//!
//! A clap CLI over the gRPC conference control API (`proto/confab/v1`):
//! list, show, create and delete rooms, lock them, mute, unmute and kick
//! participants, call someone in, run the floor, and watch a room live.
//! Every command takes `--json`; otherwise it prints tables for people.
//! [`run`] is the whole program, so tests drive it in-process.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod render;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use confab_proto as pb;
use confab_proto::conference_control_client::ConferenceControlClient;
use prost_types::FieldMask;
use serde_json::{json, Value};
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "confabctl",
    version,
    about = "Moderate confab conference rooms over gRPC"
)]
pub struct Cli {
    /// The server's gRPC address.
    #[arg(
        long,
        global = true,
        env = "CONFAB_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    server: String,
    /// API token (default: the contents of --token-file).
    #[arg(long, global = true, env = "CONFAB_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// File holding the API token.
    #[arg(long, global = true, default_value = "confab-data/admin.token")]
    token_file: PathBuf,
    /// PEM CA certificate to trust, for a server with TLS (https://).
    #[arg(long, global = true)]
    ca: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

/// How a room's floor is given.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum FloorPolicyArg {
    None,
    ModeratorGranted,
    FirstCome,
}

/// Whether a room's calls use SRTP.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum SrtpArg {
    Off,
    Optional,
    Required,
}

/// What to do with a hand.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum HandActionArg {
    Raise,
    Lower,
}

/// Floor actions.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum FloorActionArg {
    Request,
    Release,
    Grant,
    Deny,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Lists the rooms.
    Rooms,
    /// A room's settings, participants, floor and raised hands.
    Show { room: String },
    /// Creates a room.
    Create {
        room: String,
        /// Start from this blueprint (see `blueprints`).
        #[arg(long)]
        blueprint: Option<String>,
        #[arg(long)]
        subject: Option<String>,
        /// Entry PIN (4 to 16 digits), keyed with DTMF then #.
        #[arg(long)]
        pin: Option<String>,
        /// PIN that makes the caller a moderator.
        #[arg(long)]
        moderator_pin: Option<String>,
        /// Most participants.
        #[arg(long)]
        max: Option<u32>,
        /// Participants join muted.
        #[arg(long)]
        mute_on_entry: bool,
        /// Nobody may join until unlocked.
        #[arg(long)]
        locked: bool,
        /// The room starts with its first moderator; callers before that wait.
        #[arg(long)]
        wait_for_moderator: bool,
        #[arg(long, value_enum)]
        floor: Option<FloorPolicyArg>,
        /// Only users who authenticate may call or watch (with `--auth rooms`).
        #[arg(long)]
        members_only: bool,
        /// SRTP for its calls (default: the server's `--srtp`).
        #[arg(long, value_enum)]
        srtp: Option<SrtpArg>,
        /// Record the room from its first call.
        #[arg(long)]
        record: bool,
    },
    /// Deletes a room (its calls end with BYE).
    Delete { room: String },
    /// Locks a room: nobody new may join.
    Lock { room: String },
    /// Unlocks a room.
    Unlock { room: String },
    /// Mutes a participant (id or URI), or everyone but moderators with `all`.
    Mute { room: String, who: String },
    /// Unmutes a participant, or everyone with `all`.
    Unmute { room: String, who: String },
    /// Removes a participant (BYE).
    Kick { room: String, who: String },
    /// Drains the server: new calls get 503, calls in progress go on until
    /// they end or its drain timeout passes; then it exits (as on SIGTERM).
    Drain,
    /// Calls a SIP URI into the room.
    Dial { room: String, uri: String },
    /// Shows the floor, or requests, releases, grants or denies it for a participant.
    Floor {
        room: String,
        #[arg(value_enum)]
        action: Option<FloorActionArg>,
        who: Option<String>,
    },
    /// Shows the raised hands in order, or raises or lowers one (`lower all`: every hand).
    Hands {
        room: String,
        #[arg(value_enum)]
        action: Option<HandActionArg>,
        who: Option<String>,
    },
    /// Prints the room's events as they happen, one line each.
    Watch {
        room: String,
        /// Stop after this many events (the snapshot counts).
        #[arg(long)]
        count: Option<u64>,
    },
    /// Lists the room templates.
    Blueprints,
    /// API tokens (admin): list, create, revoke.
    Token {
        #[command(subcommand)]
        action: TokenCmd,
    },
    /// SIP users for digest authentication (admin): list, add, set a
    /// password, remove. Only HA1 values are stored.
    User {
        #[command(subcommand)]
        action: UserCmd,
    },
    /// Recordings of rooms' mix (Ogg Opus): start, stop, list, show, fetch,
    /// delete. Everyone in the room hears a tone when it starts and stops.
    Record {
        #[command(subcommand)]
        action: RecordCmd,
    },
}

#[derive(Debug, Subcommand)]
enum RecordCmd {
    /// Starts recording a room with calls.
    Start { room: String },
    /// Stops recording a room.
    Stop { room: String },
    /// Lists recordings, newest first (of one room with --room).
    List {
        #[arg(long)]
        room: Option<String>,
    },
    /// Shows one recording.
    Show { id: String },
    /// Writes a finished recording's Ogg Opus file to FILE (`-`: stdout).
    Fetch { id: String, file: PathBuf },
    /// Deletes a finished recording.
    Delete { id: String },
}

#[derive(Debug, Subcommand)]
enum UserCmd {
    /// Lists users (names and realm; never a password).
    List,
    /// Adds a user; the password is read from stdin unless given.
    Add {
        name: String,
        /// The password (visible to other local users in the process
        /// list: prefer stdin).
        #[arg(long)]
        password: Option<String>,
    },
    /// Sets a user's password (read from stdin unless given).
    Passwd {
        name: String,
        #[arg(long)]
        password: Option<String>,
    },
    /// Removes a user.
    Remove { name: String },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RoleArg {
    Admin,
    Moderator,
    Viewer,
}

#[derive(Debug, Subcommand)]
enum TokenCmd {
    /// Lists tokens (ids, roles, rooms; never the secrets).
    List,
    /// Creates a token and prints it once.
    Create {
        #[arg(long, value_enum)]
        role: RoleArg,
        /// A room a moderator token moderates (repeatable).
        #[arg(long = "room")]
        rooms: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Revokes a token by id.
    Revoke { id: String },
}

type Client =
    ConferenceControlClient<tonic::service::interceptor::InterceptedService<Channel, Auth>>;

/// Adds the bearer token to every call.
#[derive(Clone)]
pub struct Auth(MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

async fn connect(cli: &Cli) -> anyhow::Result<Client> {
    let token = match &cli.token {
        Some(t) => t.clone(),
        None => std::fs::read_to_string(&cli.token_file)
            .with_context(|| {
                format!(
                    "no --token and cannot read {} (the server writes its first admin token there)",
                    cli.token_file.display()
                )
            })?
            .trim()
            .to_owned(),
    };
    let auth = MetadataValue::try_from(format!("Bearer {token}"))
        .context("the token is not valid header text")?;
    let mut endpoint = Endpoint::from_shared(cli.server.clone())
        .with_context(|| format!("--server {}: not a URL", cli.server))?;
    if let Some(ca) = &cli.ca {
        let pem = std::fs::read(ca).with_context(|| format!("--ca {}", ca.display()))?;
        endpoint = endpoint
            .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)))?;
    }
    let channel = endpoint
        .connect()
        .await
        .with_context(|| format!("cannot reach {}", cli.server))?;
    Ok(ConferenceControlClient::with_interceptor(
        channel,
        Auth(auth),
    ))
}

fn status(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", s.code(), s.message())
}

/// Runs confabctl with `args` (the first is the program name), writing to `out`.
pub async fn run<I, T>(args: I, out: &mut dyn Write) -> anyhow::Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => {
            // --help and --version are answers, not errors.
            write!(out, "{e}")?;
            return Ok(());
        }
        Err(e) => bail!("{e}"),
    };
    let mut c = connect(&cli).await?;
    let json = cli.json;
    match &cli.command {
        Command::Rooms => {
            let mut all = Vec::new();
            let mut token = String::new();
            loop {
                let page = c
                    .list_conferences(pb::ListConferencesRequest {
                        page_size: 500,
                        page_token: token,
                    })
                    .await
                    .map_err(status)?
                    .into_inner();
                all.extend(page.conferences);
                if page.next_page_token.is_empty() {
                    break;
                }
                token = page.next_page_token;
            }
            if json {
                emit(
                    out,
                    &Value::Array(all.iter().map(render::conference).collect()),
                )?;
            } else {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|r| {
                        vec![
                            r.name.clone(),
                            if r.locked { "locked" } else { "open" }.into(),
                            if r.has_pin { "yes" } else { "no" }.into(),
                            render::floor_policy_name(r.floor_policy).into(),
                            r.participant_count.to_string(),
                            if r.ad_hoc { "dial-in" } else { "stored" }.into(),
                            r.subject.clone(),
                        ]
                    })
                    .collect();
                write!(
                    out,
                    "{}",
                    render::table(
                        &["ROOM", "STATE", "PIN", "FLOOR", "PEOPLE", "MADE BY", "SUBJECT"],
                        &rows
                    )
                )?;
            }
        }
        Command::Show { room } => {
            let conf = c
                .get_conference(pb::GetConferenceRequest { name: room.clone() })
                .await
                .map_err(status)?
                .into_inner();
            let people = c
                .list_participants(pb::ListParticipantsRequest {
                    conference: room.clone(),
                })
                .await
                .map(|r| r.into_inner().participants)
                .or_else(|s| match s.code() {
                    // A stored room nobody has called yet.
                    tonic::Code::NotFound => Ok(Vec::new()),
                    _ => Err(status(s)),
                })?;
            let floor = c
                .get_floor(pb::GetFloorRequest {
                    conference: room.clone(),
                })
                .await
                .ok()
                .map(|r| r.into_inner());
            let hands = c
                .list_raised_hands(pb::ListRaisedHandsRequest {
                    conference: room.clone(),
                })
                .await
                .map(|r| r.into_inner())
                .unwrap_or_default();
            if json {
                emit(
                    out,
                    &json!({
                        "conference": render::conference(&conf),
                        "participants": people.iter().map(render::participant).collect::<Vec<_>>(),
                        "floor": floor.as_ref().map(render::floor),
                        "hands": render::hands(&hands),
                    }),
                )?;
            } else {
                writeln!(
                    out,
                    "{}  {}{}  pin={}  floor={}  max={}  subject={:?}",
                    conf.name,
                    if conf.ad_hoc {
                        "(made by a dial-in)  "
                    } else {
                        ""
                    },
                    if conf.locked { "locked" } else { "open" },
                    if conf.has_pin { "yes" } else { "no" },
                    render::floor_policy_name(conf.floor_policy),
                    conf.max_participants,
                    conf.subject
                )?;
                if let Some(f) = floor.filter(|f| !f.holder.is_empty() || !f.queue.is_empty()) {
                    writeln!(
                        out,
                        "floor: holder={} queue=[{}]",
                        f.holder,
                        f.queue.join(",")
                    )?;
                }
                if !hands.participants.is_empty() {
                    writeln!(out, "{}", render::hands_line(&hands, &people))?;
                }
                write!(out, "{}", render::participants_table(&people))?;
            }
        }
        Command::Create {
            room,
            blueprint,
            subject,
            pin,
            moderator_pin,
            max,
            mute_on_entry,
            locked,
            wait_for_moderator,
            floor,
            members_only,
            srtp,
            record,
        } => {
            let conf = pb::Conference {
                name: room.clone(),
                subject: subject.clone().unwrap_or_default(),
                locked: *locked,
                max_participants: max.unwrap_or(0),
                pin: pin.clone().unwrap_or_default(),
                moderator_pin: moderator_pin.clone().unwrap_or_default(),
                mute_on_entry: *mute_on_entry,
                floor_policy: floor.map(floor_pb).unwrap_or(pb::FloorPolicy::None) as i32,
                auto_create: wait_for_moderator.then_some(false),
                members_only: *members_only,
                srtp: srtp.map(srtp_pb).unwrap_or(pb::SrtpMode::Unspecified) as i32,
                record: *record,
                ..Default::default()
            };
            let made = c
                .create_conference(pb::CreateConferenceRequest {
                    conference: Some(conf),
                    blueprint: blueprint.clone().unwrap_or_default(),
                })
                .await
                .map_err(status)?
                .into_inner();
            done(
                out,
                json,
                render::conference(&made),
                &format!("created {}", made.name),
            )?;
        }
        Command::Drain => {
            c.drain(pb::DrainRequest {}).await.map_err(status)?;
            done(
                out,
                json,
                json!({"draining": true}),
                "draining: new calls are refused; the server exits when its calls have ended",
            )?;
        }
        Command::Delete { room } => {
            c.delete_conference(pb::DeleteConferenceRequest { name: room.clone() })
                .await
                .map_err(status)?;
            done(
                out,
                json,
                json!({"deleted": room}),
                &format!("deleted {room}"),
            )?;
        }
        Command::Lock { room } | Command::Unlock { room } => {
            let lock = matches!(cli.command, Command::Lock { .. });
            let updated = c
                .update_conference(pb::UpdateConferenceRequest {
                    conference: Some(pb::Conference {
                        name: room.clone(),
                        locked: lock,
                        ..Default::default()
                    }),
                    update_mask: Some(mask(&["locked"])),
                })
                .await
                .map_err(status)?
                .into_inner();
            let word = if lock { "locked" } else { "unlocked" };
            done(
                out,
                json,
                render::conference(&updated),
                &format!("{word} {room}"),
            )?;
        }
        Command::Mute { room, who } | Command::Unmute { room, who } => {
            let on = matches!(cli.command, Command::Mute { .. });
            let word = if on { "muted" } else { "unmuted" };
            if who == "all" {
                let n = c
                    .mute_all(pb::MuteAllRequest {
                        conference: room.clone(),
                        muted: on,
                    })
                    .await
                    .map_err(status)?
                    .into_inner()
                    .changed;
                done(
                    out,
                    json,
                    json!({"changed": n}),
                    &format!("{word} {n} participant(s)"),
                )?;
            } else {
                let id = resolve(&mut c, room, who).await?;
                let p = c
                    .update_participant(pb::UpdateParticipantRequest {
                        conference: room.clone(),
                        participant: Some(pb::Participant {
                            id,
                            muted: on,
                            ..Default::default()
                        }),
                        update_mask: Some(mask(&["muted"])),
                    })
                    .await
                    .map_err(status)?
                    .into_inner();
                done(
                    out,
                    json,
                    render::participant(&p),
                    &format!("{word} {} ({})", p.id, p.uri),
                )?;
            }
        }
        Command::Kick { room, who } => {
            let id = resolve(&mut c, room, who).await?;
            c.remove_participant(pb::RemoveParticipantRequest {
                conference: room.clone(),
                id: id.clone(),
            })
            .await
            .map_err(status)?;
            done(out, json, json!({"removed": id}), &format!("removed {id}"))?;
        }
        Command::Dial { room, uri } => {
            let p = c
                .dial_out(pb::DialOutRequest {
                    conference: room.clone(),
                    uri: uri.clone(),
                })
                .await
                .map_err(status)?
                .into_inner();
            done(
                out,
                json,
                render::participant(&p),
                &format!("dialing {} as {}", p.uri, p.id),
            )?;
        }
        Command::Floor { room, action, who } => {
            let f = match (action, who) {
                (None, _) => c
                    .get_floor(pb::GetFloorRequest {
                        conference: room.clone(),
                    })
                    .await
                    .map_err(status)?
                    .into_inner(),
                (Some(_), None) => bail!("floor {room} ACTION needs WHO"),
                (Some(a), Some(who)) => {
                    let id = resolve(&mut c, room, who).await?;
                    let req = pb::FloorRequest {
                        conference: room.clone(),
                        participant: id,
                    };
                    match a {
                        FloorActionArg::Request => c.request_floor(req).await,
                        FloorActionArg::Release => c.release_floor(req).await,
                        FloorActionArg::Grant => c.grant_floor(req).await,
                        FloorActionArg::Deny => c.deny_floor(req).await,
                    }
                    .map_err(status)?
                    .into_inner()
                }
            };
            let line = format!(
                "floor ({}): holder={} queue=[{}]",
                render::floor_policy_name(f.policy),
                if f.holder.is_empty() { "-" } else { &f.holder },
                f.queue.join(",")
            );
            done(out, json, render::floor(&f), &line)?;
        }
        Command::Hands { room, action, who } => {
            let hands = match (action, who.as_deref()) {
                (None, _) => c
                    .list_raised_hands(pb::ListRaisedHandsRequest {
                        conference: room.clone(),
                    })
                    .await
                    .map_err(status)?
                    .into_inner(),
                (Some(_), None) => bail!("hands {room} ACTION needs WHO (or `lower all`)"),
                (Some(HandActionArg::Lower), Some("all")) => c
                    .lower_all_hands(pb::LowerAllHandsRequest {
                        conference: room.clone(),
                    })
                    .await
                    .map_err(status)?
                    .into_inner(),
                (Some(a), Some(who)) => {
                    let req = pb::HandRequest {
                        conference: room.clone(),
                        participant: resolve(&mut c, room, who).await?,
                    };
                    match a {
                        HandActionArg::Raise => c.raise_hand(req).await,
                        HandActionArg::Lower => c.lower_hand(req).await,
                    }
                    .map_err(status)?
                    .into_inner()
                }
            };
            done(
                out,
                json,
                render::hands(&hands),
                &render::hands_line(&hands, &[]),
            )?;
        }
        Command::Watch { room, count } => {
            let mut stream = c
                .watch_conference(pb::WatchConferenceRequest {
                    conference: room.clone(),
                })
                .await
                .map_err(status)?
                .into_inner();
            let mut seen = 0u64;
            while count.is_none_or(|n| seen < n) {
                let Some(ev) = stream.message().await.map_err(status)? else {
                    break;
                };
                if json {
                    writeln!(out, "{}", render::event(&ev))?;
                } else {
                    writeln!(out, "{}", render::event_line(&ev))?;
                }
                out.flush()?;
                seen += 1;
            }
        }
        Command::Token { action } => token(&mut c, out, json, action).await?,
        Command::User { action } => user(&mut c, out, json, action).await?,
        Command::Record { action } => record(&mut c, out, json, action).await?,
        Command::Blueprints => {
            let all = c
                .list_blueprints(pb::ListBlueprintsRequest {})
                .await
                .map_err(status)?
                .into_inner()
                .blueprints;
            if json {
                emit(
                    out,
                    &Value::Array(all.iter().map(render::blueprint).collect()),
                )?;
            } else {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|b| vec![b.name.clone(), b.description.clone()])
                    .collect();
                write!(
                    out,
                    "{}",
                    render::table(&["BLUEPRINT", "DESCRIPTION"], &rows)
                )?;
            }
        }
    }
    Ok(())
}

async fn token(
    c: &mut Client,
    out: &mut dyn Write,
    json: bool,
    action: &TokenCmd,
) -> anyhow::Result<()> {
    match action {
        TokenCmd::List => {
            let all = c
                .list_tokens(pb::ListTokensRequest {})
                .await
                .map_err(status)?
                .into_inner()
                .tokens;
            if json {
                emit(out, &Value::Array(all.iter().map(render::token).collect()))?;
            } else {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|t| {
                        vec![
                            t.id.clone(),
                            render::token_role_name(t.role).into(),
                            t.rooms.join(","),
                            t.description.clone(),
                        ]
                    })
                    .collect();
                write!(
                    out,
                    "{}",
                    render::table(&["ID", "ROLE", "ROOMS", "DESCRIPTION"], &rows)
                )?;
            }
        }
        TokenCmd::Create {
            role,
            rooms,
            description,
        } => {
            let role = match role {
                RoleArg::Admin => pb::Role::Admin,
                RoleArg::Moderator => pb::Role::Moderator,
                RoleArg::Viewer => pb::Role::Viewer,
            };
            let made = c
                .create_token(pb::CreateTokenRequest {
                    role: role as i32,
                    rooms: rooms.clone(),
                    description: description.clone(),
                })
                .await
                .map_err(status)?
                .into_inner();
            done(
                out,
                json,
                json!({"id": made.id, "token": made.token}),
                &format!(
                    "token {} (id {}): keep it, it is not shown again",
                    made.token, made.id
                ),
            )?;
        }
        TokenCmd::Revoke { id } => {
            c.delete_token(pb::DeleteTokenRequest { id: id.clone() })
                .await
                .map_err(status)?;
            done(out, json, json!({"revoked": id}), &format!("revoked {id}"))?;
        }
    }
    Ok(())
}

async fn user(
    c: &mut Client,
    out: &mut dyn Write,
    json: bool,
    action: &UserCmd,
) -> anyhow::Result<()> {
    match action {
        UserCmd::List => {
            let all = c
                .list_users(pb::ListUsersRequest {})
                .await
                .map_err(status)?
                .into_inner()
                .users;
            if json {
                emit(out, &Value::Array(all.iter().map(render::user).collect()))?;
            } else {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|u| vec![u.name.clone(), u.realm.clone()])
                    .collect();
                write!(out, "{}", render::table(&["NAME", "REALM"], &rows))?;
            }
        }
        UserCmd::Add { name, password } => {
            let password = password_or_stdin(password.as_deref())?;
            let u = c
                .create_user(pb::CreateUserRequest {
                    name: name.clone(),
                    password,
                })
                .await
                .map_err(status)?
                .into_inner();
            done(
                out,
                json,
                render::user(&u),
                &format!("added user {}", u.name),
            )?;
        }
        UserCmd::Passwd { name, password } => {
            let password = password_or_stdin(password.as_deref())?;
            let u = c
                .set_user_password(pb::SetUserPasswordRequest {
                    name: name.clone(),
                    password,
                })
                .await
                .map_err(status)?
                .into_inner();
            done(
                out,
                json,
                render::user(&u),
                &format!("password set for {}", u.name),
            )?;
        }
        UserCmd::Remove { name } => {
            c.delete_user(pb::DeleteUserRequest { name: name.clone() })
                .await
                .map_err(status)?;
            done(
                out,
                json,
                json!({"removed": name}),
                &format!("removed user {name}"),
            )?;
        }
    }
    Ok(())
}

async fn record(
    c: &mut Client,
    out: &mut dyn Write,
    json: bool,
    action: &RecordCmd,
) -> anyhow::Result<()> {
    match action {
        RecordCmd::Start { room } | RecordCmd::Stop { room } => {
            let start = matches!(action, RecordCmd::Start { .. });
            let r = if start {
                c.start_recording(pb::StartRecordingRequest {
                    conference: room.clone(),
                })
                .await
            } else {
                c.stop_recording(pb::StopRecordingRequest {
                    conference: room.clone(),
                })
                .await
            }
            .map_err(status)?
            .into_inner();
            let word = if start {
                "recording"
            } else {
                "stopped recording"
            };
            done(
                out,
                json,
                render::recording(&r),
                &format!("{word} {room}: {}", r.id),
            )?;
        }
        RecordCmd::List { room } => {
            let all = c
                .list_recordings(pb::ListRecordingsRequest {
                    conference: room.clone().unwrap_or_default(),
                })
                .await
                .map_err(status)?
                .into_inner()
                .recordings;
            if json {
                emit(
                    out,
                    &Value::Array(all.iter().map(render::recording).collect()),
                )?;
            } else {
                let rows: Vec<Vec<String>> = all.iter().map(render::recording_row).collect();
                write!(
                    out,
                    "{}",
                    render::table(
                        &["ID", "ROOM", "STATE", "LENGTH", "BYTES", "DROPPED"],
                        &rows
                    )
                )?;
            }
        }
        RecordCmd::Show { id } => {
            let r = c
                .get_recording(pb::GetRecordingRequest { id: id.clone() })
                .await
                .map_err(status)?
                .into_inner();
            let line = render::recording_row(&r).join("  ");
            done(out, json, render::recording(&r), &line)?;
        }
        RecordCmd::Fetch { id, file } => {
            let mut stream = c
                .fetch_recording(pb::FetchRecordingRequest { id: id.clone() })
                .await
                .map_err(status)?
                .into_inner();
            let to_stdout = file.as_os_str() == "-";
            let mut sink: Box<dyn Write> = if to_stdout {
                Box::new(std::io::stdout())
            } else {
                Box::new(
                    std::fs::File::create(file)
                        .with_context(|| format!("cannot write {}", file.display()))?,
                )
            };
            let mut bytes = 0u64;
            while let Some(chunk) = stream.message().await.map_err(status)? {
                sink.write_all(&chunk.data)?;
                bytes += chunk.data.len() as u64;
            }
            sink.flush()?;
            if !to_stdout {
                done(
                    out,
                    json,
                    json!({"id": id, "file": file, "bytes": bytes}),
                    &format!("wrote {bytes} bytes to {}", file.display()),
                )?;
            }
        }
        RecordCmd::Delete { id } => {
            c.delete_recording(pb::DeleteRecordingRequest { id: id.clone() })
                .await
                .map_err(status)?;
            done(
                out,
                json,
                json!({"deleted": id}),
                &format!("deleted recording {id}"),
            )?;
        }
    }
    Ok(())
}

/// The given password, or the first line of stdin.
fn password_or_stdin(given: Option<&str>) -> anyhow::Result<String> {
    if let Some(p) = given {
        return Ok(p.to_owned());
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let p = line.trim_end_matches(['\r', '\n']).to_owned();
    anyhow::ensure!(!p.is_empty(), "no password on stdin");
    Ok(p)
}

fn floor_pb(f: FloorPolicyArg) -> pb::FloorPolicy {
    match f {
        FloorPolicyArg::None => pb::FloorPolicy::None,
        FloorPolicyArg::ModeratorGranted => pb::FloorPolicy::ModeratorGranted,
        FloorPolicyArg::FirstCome => pb::FloorPolicy::FirstCome,
    }
}

fn srtp_pb(m: SrtpArg) -> pb::SrtpMode {
    match m {
        SrtpArg::Off => pb::SrtpMode::Off,
        SrtpArg::Optional => pb::SrtpMode::Optional,
        SrtpArg::Required => pb::SrtpMode::Required,
    }
}

fn mask(paths: &[&str]) -> FieldMask {
    FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    }
}

fn emit(out: &mut dyn Write, v: &Value) -> anyhow::Result<()> {
    writeln!(out, "{v}")?;
    Ok(())
}

fn done(out: &mut dyn Write, json: bool, v: Value, line: &str) -> anyhow::Result<()> {
    if json {
        emit(out, &v)
    } else {
        writeln!(out, "{line}")?;
        Ok(())
    }
}

/// A participant named by id, by URI, or by the user part of its URI.
async fn resolve(c: &mut Client, room: &str, who: &str) -> anyhow::Result<String> {
    let people = c
        .list_participants(pb::ListParticipantsRequest {
            conference: room.to_owned(),
        })
        .await
        .map_err(status)?
        .into_inner()
        .participants;
    if let Some(p) = people.iter().find(|p| p.id == who) {
        return Ok(p.id.clone());
    }
    let user_of = |uri: &str| {
        uri.trim_start_matches("sips:")
            .trim_start_matches("sip:")
            .split('@')
            .next()
            .unwrap_or("")
            .to_owned()
    };
    let matches: Vec<&pb::Participant> = people
        .iter()
        .filter(|p| p.uri == who || user_of(&p.uri) == who)
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.id.clone()),
        [] => bail!("no participant {who} in {room}"),
        many => bail!(
            "{who} matches {} participants in {room}; use an id: {}",
            many.len(),
            many.iter()
                .map(|p| p.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
