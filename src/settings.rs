//! Every setting of the `confab` binary, from three layers: the built-in
//! defaults, a TOML file (`--config`), then `CONFAB_*` variables and flags.
//! One struct serves all three: a flag `--rtp-ports`, a key `rtp-ports` and
//! a variable `CONFAB_RTP_PORTS` are the same setting, and a layer above
//! replaces a key of the layer below whole (a `--room` flag replaces the
//! file's rooms). Every field is optional so that a layer says only what
//! it sets; [`Settings::defaults`] fills in the rest.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// `--auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthArg {
    /// From is believed.
    Off,
    /// Members-only rooms and REGISTER are challenged.
    Rooms,
    /// Everything from outside is challenged.
    Required,
}

/// `--srtp`, and a static room's `srtp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SrtpArg {
    /// RTP/SAVP offers get 488.
    Off,
    /// Either.
    Optional,
    /// RTP/AVP offers get 488.
    Required,
}

impl From<SrtpArg> for control::SrtpMode {
    fn from(a: SrtpArg) -> Self {
        match a {
            SrtpArg::Off => control::SrtpMode::Off,
            SrtpArg::Optional => control::SrtpMode::Optional,
            SrtpArg::Required => control::SrtpMode::Required,
        }
    }
}

/// A static room's floor policy, by its name in the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FloorArg {
    /// No floor control.
    None,
    /// Requests wait for a moderator.
    ModeratorGranted,
    /// A free floor goes to the first request.
    FirstCome,
}

impl From<FloorArg> for control::FloorPolicy {
    fn from(a: FloorArg) -> Self {
        match a {
            FloorArg::None => control::FloorPolicy::None,
            FloorArg::ModeratorGranted => control::FloorPolicy::ModeratorGranted,
            FloorArg::FirstCome => control::FloorPolicy::FirstCome,
        }
    }
}

/// A room that always exists, with the policy the file gives it. `--room
/// NAME` and `room = ["a", "b"]` name rooms only; `[[room]]` tables give
/// policies too. A setting left out keeps what the API last set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StaticRoom {
    /// The user part of `sip:NAME@host`.
    pub name: String,
    /// Subject shown to subscribers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Entry PIN (DTMF, then #).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
    /// PIN that makes the caller a moderator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moderator_pin: Option<String>,
    /// Nobody new may join.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked: Option<bool>,
    /// Most participants (0: the server's `max-room-size`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_participants: Option<u32>,
    /// Participants join muted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mute_on_entry: Option<bool>,
    /// AORs that may subscribe besides participants.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watchers: Option<Vec<String>>,
    /// Loudest talkers mixed (0: the default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub talkers_mixed: Option<u32>,
    /// `none`, `moderator-granted` or `first-come`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor: Option<FloorArg>,
    /// The room starts with its first moderator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_for_moderator: Option<bool>,
    /// Only users who authenticate may call or watch (with `auth = "rooms"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members_only: Option<bool>,
    /// `off`, `optional` or `required` (left out: the server's `srtp`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub srtp: Option<SrtpArg>,
    /// Recorded from its first call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<bool>,
}

/// One entry of the `room` list: a name, or a table read as a
/// [`StaticRoom`]. Written by hand rather than as an untagged enum so that
/// an unknown key in a table is reported by its name.
struct RoomEntry(StaticRoom);

impl<'de> Deserialize<'de> for RoomEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entry;
        impl<'de> serde::de::Visitor<'de> for Entry {
            type Value = RoomEntry;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a room name, or a table with `name` and the room's policy")
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<RoomEntry, E> {
                Ok(RoomEntry(StaticRoom {
                    name: name.to_owned(),
                    ..Default::default()
                }))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<RoomEntry, A::Error> {
                StaticRoom::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(RoomEntry)
            }
        }
        d.deserialize_any(Entry)
    }
}

/// The `room` list, each entry a name or a table.
fn room_entries<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<StaticRoom>>, D::Error> {
    let entries = Option::<Vec<RoomEntry>>::deserialize(d)?;
    Ok(entries.map(|v| v.into_iter().map(|e| e.0).collect()))
}

impl std::str::FromStr for StaticRoom {
    type Err = std::convert::Infallible;
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Ok(StaticRoom {
            name: name.to_owned(),
            ..Default::default()
        })
    }
}

/// confab: a centralized SIP conferencing server.
///
/// Every flag is also a key of the `--config` file (the same name without
/// the dashes in front) and a `CONFAB_*` variable; flags and variables win
/// over the file. `--print-config` shows the result.
#[derive(Debug, Clone, Default, PartialEq, clap::Parser, Serialize, Deserialize)]
#[command(version, about)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// A TOML file with any of these settings (see confab.example.toml).
    #[arg(long, env = "CONFAB_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Print the effective settings as TOML and exit.
    #[arg(long)]
    #[serde(skip)]
    pub print_config: bool,

    /// Address for SIP over UDP and TCP [default: 0.0.0.0:5060].
    #[arg(long, env = "CONFAB_SIP_LISTEN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sip_listen: Option<SocketAddr>,
    /// Address for SIP over TLS [default: port 5061 of --sip-listen's IP
    /// when --sip-tls-cert is given].
    #[arg(long, env = "CONFAB_SIP_TLS_LISTEN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sip_tls_listen: Option<SocketAddr>,
    /// PEM certificate chain for SIP over TLS (with --sip-tls-key); read
    /// again on SIGHUP.
    #[arg(long, env = "CONFAB_SIP_TLS_CERT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sip_tls_cert: Option<PathBuf>,
    /// PEM private key for --sip-tls-cert.
    #[arg(long, env = "CONFAB_SIP_TLS_KEY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sip_tls_key: Option<PathBuf>,
    /// PEM CA certificates trusted besides the system's roots when confab
    /// calls out over TLS (a private CA).
    #[arg(long, env = "CONFAB_SIP_TLS_CA")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sip_tls_ca: Option<PathBuf>,
    /// Disable SIP over TCP [default: false].
    #[arg(long, env = "CONFAB_NO_TCP", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_tcp: Option<bool>,
    /// Largest SIP message accepted, in bytes; larger ones get 513 or are
    /// dropped [default: 65536].
    #[arg(long, env = "CONFAB_MAX_MESSAGE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_message: Option<usize>,
    /// Seconds after which an idle TCP connection is closed [default: 300].
    #[arg(long, env = "CONFAB_TCP_IDLE_SECS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_idle_secs: Option<u64>,
    /// Most TCP connections from one IP address [default: 64].
    #[arg(long, env = "CONFAB_MAX_TCP_PER_IP")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tcp_per_ip: Option<usize>,
    /// Sustained SIP messages per second accepted from one IP address;
    /// live on SIGHUP [default: 2000].
    #[arg(long, env = "CONFAB_RATE_PER_SOURCE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_per_source: Option<f64>,
    /// Transaction timer T1 in milliseconds [default: 500].
    #[arg(long, env = "CONFAB_T1_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub t1_ms: Option<u64>,
    /// First and last RTP port (even start) [default: 20000-29999].
    #[arg(long, env = "CONFAB_RTP_PORTS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtp_ports: Option<String>,
    /// IP to put in SDP and Contact when listening on 0.0.0.0.
    #[arg(long, env = "CONFAB_ADVERTISE_IP")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertise_ip: Option<IpAddr>,
    /// Only the static rooms (--room) exist: none is made on first call
    /// [default: false].
    #[arg(long, env = "CONFAB_NO_AUTO_CREATE", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_auto_create: Option<bool>,
    /// A room that always exists (repeatable); the file may give its policy
    /// too, as [[room]] tables. Live on SIGHUP.
    #[arg(long = "room", env = "CONFAB_ROOM", value_delimiter = ',')]
    #[serde(
        rename = "room",
        default,
        deserialize_with = "room_entries",
        skip_serializing_if = "Option::is_none"
    )]
    pub rooms: Option<Vec<StaticRoom>>,
    /// Most participants per room [default: 64].
    #[arg(long, env = "CONFAB_MAX_ROOM_SIZE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_room_size: Option<usize>,
    /// Most simultaneous calls from one IP address, beyond which 503; live
    /// on SIGHUP [default: 200].
    #[arg(long, env = "CONFAB_MAX_CALLS_PER_SOURCE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_calls_per_source: Option<usize>,
    /// Milliseconds to ring (180) before answering [default: 0].
    #[arg(long, env = "CONFAB_ANSWER_DELAY_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer_delay_ms: Option<u64>,
    /// Smallest session interval accepted (RFC 4028 Min-SE), seconds [default: 90].
    #[arg(long, env = "CONFAB_MIN_SE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_se: Option<u32>,
    /// Seconds without RTP after which a call is ended [default: 30].
    #[arg(long, env = "CONFAB_RTP_TIMEOUT_SECS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtp_timeout_secs: Option<u64>,
    /// An AOR allowed to subscribe to any room's conference state besides
    /// its participants (repeatable; `*` allows anyone).
    #[arg(long = "watcher", env = "CONFAB_WATCHER", value_delimiter = ',')]
    #[serde(rename = "watcher", skip_serializing_if = "Option::is_none")]
    pub watchers: Option<Vec<String>>,
    /// Shortest subscription accepted, seconds (423 below) [default: 60].
    #[arg(long, env = "CONFAB_SUBSCRIPTION_MIN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_min: Option<u32>,
    /// Changes closer together than this many ms are coalesced into one
    /// NOTIFY [default: 200].
    #[arg(long, env = "CONFAB_NOTIFY_MIN_INTERVAL_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify_min_interval_ms: Option<u64>,
    /// Who must authenticate (digest, RFC 7616/8760) against the users of
    /// the API: `off` (From is believed), `rooms` (rooms marked
    /// members-only, and every REGISTER), `required` (every INVITE,
    /// SUBSCRIBE, REFER, MESSAGE and REGISTER from outside) [default: off].
    #[arg(long, value_enum, env = "CONFAB_AUTH")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthArg>,
    /// Digest algorithms offered, most preferred first: `md5`, `sha-256`.
    /// MD5 alone by default, because phones older than RFC 8760 fail on a
    /// SHA-256 challenge instead of trying the next (SIPp 3.6, baresip
    /// 1.0) [default: md5].
    #[arg(long, value_delimiter = ',', env = "CONFAB_AUTH_ALGORITHMS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_algorithms: Option<Vec<String>>,
    /// Failed authentications from one address within a minute after which
    /// it is ignored for --auth-lockout-secs; live on SIGHUP [default: 10].
    #[arg(long, env = "CONFAB_AUTH_MAX_FAILURES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_max_failures: Option<u32>,
    /// Seconds an address that failed too often is ignored; live on SIGHUP
    /// [default: 600].
    #[arg(long, env = "CONFAB_AUTH_LOCKOUT_SECS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_lockout_secs: Option<u64>,
    /// A pattern dial-outs (API and REFER) may go to besides registered
    /// users, `*` matching anything, e.g. `sip:*@10.1.2.*` (repeatable;
    /// none: registered users only).
    #[arg(
        long = "dial-out-allow",
        env = "CONFAB_DIAL_OUT_ALLOW",
        value_delimiter = ','
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dial_out_allow: Option<Vec<String>>,
    /// Dial-outs one room may place per minute; live on SIGHUP [default: 30].
    #[arg(long, env = "CONFAB_DIAL_OUT_PER_MINUTE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dial_out_per_minute: Option<u32>,
    /// Shortest registration accepted, seconds (423 below) [default: 60].
    #[arg(long, env = "CONFAB_REGISTER_MIN_EXPIRES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub register_min_expires: Option<u32>,
    /// Longest registration granted, seconds [default: 7200].
    #[arg(long, env = "CONFAB_REGISTER_MAX_EXPIRES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub register_max_expires: Option<u32>,
    /// SRTP with SDES keys (RFC 4568) for calls: `off` (RTP/SAVP offers get
    /// 488), `optional` (either), `required` (RTP/AVP offers get 488); a
    /// room may set its own [default: optional].
    #[arg(long, value_enum, env = "CONFAB_SRTP")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub srtp: Option<SrtpArg>,
    /// Take SDES keys over UDP and TCP too, where anyone on the path can
    /// read them [default: false: only over TLS].
    #[arg(long, env = "CONFAB_SRTP_SDES_IN_CLEAR", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub srtp_sdes_in_clear: Option<bool>,
    /// The Server and User-Agent header confab sends (empty: none)
    /// [default: confab/VERSION].
    #[arg(long, env = "CONFAB_SERVER_HEADER")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_header: Option<String>,
    /// Address for the gRPC conference control API [default: 127.0.0.1:50051].
    #[arg(long, env = "CONFAB_GRPC_LISTEN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_listen: Option<SocketAddr>,
    /// Directory for the policy database and the first admin token
    /// [default: confab-data].
    #[arg(long, env = "CONFAB_DATA_DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// The policy store on a PostgreSQL server (postgres://USER:PASSWORD@HOST/DB),
    /// which several nodes may share, instead of SQLite in --data-dir.
    #[arg(long, env = "CONFAB_DATABASE_URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// PEM certificate chain: serve the gRPC API over TLS (with --grpc-tls-key).
    #[arg(long, env = "CONFAB_GRPC_TLS_CERT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_tls_cert: Option<PathBuf>,
    /// PEM private key for --grpc-tls-cert.
    #[arg(long, env = "CONFAB_GRPC_TLS_KEY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_tls_key: Option<PathBuf>,
    /// gRPC requests per second each API token may make (twice that in a
    /// burst); live on SIGHUP [default: 1000].
    #[arg(long, env = "CONFAB_GRPC_RATE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_rate: Option<f64>,
    /// Mixer threads; rooms are spread over them [default: one per core].
    #[arg(long, env = "CONFAB_MIXER_THREADS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mixer_threads: Option<usize>,
    /// RTP receive threads; participants are spread over them [default:
    /// one per core].
    #[arg(long, env = "CONFAB_RTP_RX_THREADS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtp_rx_threads: Option<usize>,
    /// Participants on a mixer thread from which the receive threads send
    /// its RTP for it, spreading a big room's sends over them (0: always)
    /// [default: 1000].
    #[arg(long, env = "CONFAB_RTP_SEND_OFFLOAD_FROM")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtp_send_offload_from: Option<usize>,
    /// Seconds a drain (SIGTERM, or `Drain` in the API) waits for calls to
    /// end before it ends the rest with BYE [default: 3600].
    #[arg(long, env = "CONFAB_DRAIN_TIMEOUT_SECS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain_timeout_secs: Option<u64>,
    /// Call detail records, one JSON line per call: a file to append to,
    /// or `-` for stdout [default: none].
    #[arg(long, env = "CONFAB_CDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cdr: Option<String>,
    /// Where Prometheus scrapes `/metrics` (default: no endpoint; the
    /// example file has 127.0.0.1:9464).
    #[arg(long, env = "CONFAB_METRICS_LISTEN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
    /// Log filter (tracing EnvFilter syntax; RUST_LOG overrides it); live on
    /// SIGHUP [default: info].
    #[arg(long, env = "CONFAB_LOG")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
}

/// Why the settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or names a key that does not exist, or
    /// gives one a value of the wrong kind. The message names the key and
    /// shows the line.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// toml's message, with the line and a caret under the key.
        message: String,
    },
    /// The layers do not combine (a flag's value does not fit the key).
    #[error("settings: {0}")]
    Merge(String),
}

impl Settings {
    /// The built-in defaults: every setting that has one.
    pub fn defaults() -> Self {
        Settings {
            config: None,
            print_config: false,
            sip_listen: Some(([0, 0, 0, 0], 5060).into()),
            sip_tls_listen: None,
            sip_tls_cert: None,
            sip_tls_key: None,
            sip_tls_ca: None,
            no_tcp: Some(false),
            max_message: Some(65536),
            tcp_idle_secs: Some(300),
            max_tcp_per_ip: Some(64),
            rate_per_source: Some(2000.0),
            t1_ms: Some(500),
            rtp_ports: Some("20000-29999".into()),
            advertise_ip: None,
            no_auto_create: Some(false),
            rooms: Some(Vec::new()),
            max_room_size: Some(64),
            max_calls_per_source: Some(200),
            answer_delay_ms: Some(0),
            min_se: Some(90),
            rtp_timeout_secs: Some(30),
            watchers: Some(Vec::new()),
            subscription_min: Some(60),
            notify_min_interval_ms: Some(200),
            auth: Some(AuthArg::Off),
            auth_algorithms: Some(vec!["md5".into()]),
            auth_max_failures: Some(10),
            auth_lockout_secs: Some(600),
            dial_out_allow: Some(Vec::new()),
            dial_out_per_minute: Some(30),
            register_min_expires: Some(60),
            register_max_expires: Some(7200),
            srtp: Some(SrtpArg::Optional),
            srtp_sdes_in_clear: Some(false),
            server_header: None,
            grpc_listen: Some(([127, 0, 0, 1], 50051).into()),
            data_dir: Some("confab-data".into()),
            database_url: None,
            grpc_tls_cert: None,
            grpc_tls_key: None,
            grpc_rate: Some(1000.0),
            mixer_threads: None,
            rtp_rx_threads: None,
            // Where the media server's measurement put it.
            rtp_send_offload_from: Some(media_server::MediaConfig::default().offload_sends_from),
            metrics_listen: None,
            cdr: None,
            drain_timeout_secs: Some(3600),
            log: Some("info".into()),
        }
    }

    /// Parses a settings file's text; errors name the key and the line.
    pub fn from_toml(path: &Path, text: &str) -> Result<Self, SettingsError> {
        toml::from_str(text).map_err(|e| SettingsError::File {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// Reads a settings file.
    pub fn read(path: &Path) -> Result<Self, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(path, &text)
    }

    /// `self` with every key `over` sets replaced by `over`'s.
    pub fn overlaid(&self, over: &Settings) -> Result<Self, SettingsError> {
        let merge = |e: toml::ser::Error| SettingsError::Merge(e.to_string());
        let mut table = toml::Table::try_from(self).map_err(merge)?;
        table.extend(toml::Table::try_from(over).map_err(merge)?);
        let mut merged: Settings = table
            .try_into()
            .map_err(|e: toml::de::Error| SettingsError::Merge(e.to_string()))?;
        merged.config = over.config.clone().or_else(|| self.config.clone());
        merged.print_config = over.print_config || self.print_config;
        Ok(merged)
    }

    /// Defaults, then the file `flags` name (if any), then `flags` (which
    /// hold the variables too): what the server runs with.
    pub fn effective(flags: &Settings) -> Result<Self, SettingsError> {
        let file = match &flags.config {
            Some(path) => Self::read(path)?,
            None => Settings::default(),
        };
        Self::defaults().overlaid(&file)?.overlaid(flags)
    }

    /// The effective settings as a TOML file would write them.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot print: {e}\n"))
    }

    /// As [`Self::to_toml`], for a terminal or a log: the database
    /// password is masked, since the output is pasted into tickets.
    pub fn to_toml_redacted(&self) -> String {
        let Some(url) = &self.database_url else {
            return self.to_toml();
        };
        let masked = redact_password(url);
        if &masked == url {
            return self.to_toml();
        }
        let shown = Settings {
            database_url: Some(masked),
            ..self.clone()
        };
        format!(
            "# database-url's password is masked; the server uses the one given\n{}",
            shown.to_toml()
        )
    }

    /// Only `key` of `self` (the others unset), to overlay one key.
    pub fn only(&self, key: &str) -> Result<Settings, SettingsError> {
        let merge = |e: toml::ser::Error| SettingsError::Merge(e.to_string());
        let mut one = toml::Table::new();
        if let Some(v) = toml::Table::try_from(self).map_err(merge)?.remove(key) {
            one.insert(key.to_owned(), v);
        }
        one.try_into()
            .map_err(|e: toml::de::Error| SettingsError::Merge(e.to_string()))
    }

    /// A key's value as TOML writes it ("(unset)" when it has none).
    pub fn value(&self, key: &str) -> String {
        toml::Table::try_from(self)
            .ok()
            .and_then(|t| t.get(key).map(|v| v.to_string()))
            .unwrap_or_else(|| "(unset)".into())
    }

    /// The keys whose values differ between `self` and `new`, by name.
    pub fn changed_keys(&self, new: &Settings) -> Vec<String> {
        let (Ok(a), Ok(b)) = (toml::Table::try_from(self), toml::Table::try_from(new)) else {
            return Vec::new();
        };
        let mut keys: Vec<String> = a
            .keys()
            .chain(b.keys())
            .filter(|k| a.get(*k) != b.get(*k))
            .cloned()
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }
}

/// What stands for a password that is not shown.
const MASK: &str = "********";

/// A database URL or connection string with its password masked: the
/// userinfo's (`postgres://user:PASSWORD@host/db`), a `password=` query
/// parameter, and a `password=` key of a `key=value` string.
fn redact_password(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    if let Some(scheme_end) = url.find("://") {
        let start = scheme_end + 3;
        let authority_end = url[start..]
            .find(['/', '?', '#'])
            .map_or(url.len(), |i| start + i);
        let authority = &url[start..authority_end];
        out.push_str(&url[..start]);
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..=colon]);
                        out.push_str(MASK);
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &url[authority_end..];
    }
    // `password=` as a query parameter or a key of a key=value string.
    let mut tail = rest;
    while let Some(i) = tail.to_ascii_lowercase().find("password=") {
        let boundary = i == 0 || matches!(tail.as_bytes()[i - 1], b'?' | b'&' | b' ' | b'\t');
        let value = i + "password=".len();
        out.push_str(&tail[..value]);
        tail = &tail[value..];
        if boundary {
            let end = tail.find(['&', ' ', '\t', '#']).unwrap_or(tail.len());
            if end > 0 {
                out.push_str(MASK);
            }
            tail = &tail[end..];
        }
    }
    out.push_str(tail);
    out
}

#[cfg(test)]
mod redaction_tests {
    use super::*;

    #[test]
    fn the_password_is_masked_wherever_a_connection_string_puts_it() {
        let cases = [
            (
                "postgres://confab:s3cret@db.example/confab",
                "postgres://confab:********@db.example/confab",
            ),
            (
                "postgresql://u:p%40ss@h:5432/db?sslmode=require",
                "postgresql://u:********@h:5432/db?sslmode=require",
            ),
            ("postgres://u:a@b@h/db", "postgres://u:********@h/db"),
            (
                "postgres://h/db?user=u&password=s3cret&sslmode=disable",
                "postgres://h/db?user=u&password=********&sslmode=disable",
            ),
            (
                "host=h user=u password=s3cret dbname=d",
                "host=h user=u password=******** dbname=d",
            ),
            ("postgres://u@h/db", "postgres://u@h/db"),
            (
                "postgres://h/db?old_password=x",
                "postgres://h/db?old_password=x",
            ),
            ("postgres://u:@h/db", "postgres://u:********@h/db"),
        ];
        for (url, want) in cases {
            assert_eq!(redact_password(url), want, "{url}");
        }
    }

    #[test]
    fn printed_settings_mask_the_password_and_say_so() {
        let s = Settings {
            database_url: Some("postgres://confab:s3cret@db/confab".into()),
            ..Settings::defaults()
        };
        let text = s.to_toml_redacted();
        assert!(!text.contains("s3cret"), "{text}");
        assert!(
            text.contains("postgres://confab:********@db/confab"),
            "{text}"
        );
        assert!(
            text.starts_with("# database-url's password is masked"),
            "{text}"
        );
        assert_eq!(
            Settings::defaults().to_toml_redacted(),
            Settings::defaults().to_toml()
        );
    }
}
