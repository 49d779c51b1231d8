//! Who is asking: digest authentication of requests from outside (RFC 3261
//! §22, RFC 7616, RFC 8760), against users the policy server pushes, and
//! addresses that keep failing ignored for a while (what Kamailio's pike
//! and fail2ban do for a proxy).
//!
//! The gate is sans-IO like the rest of the focus: it reads a request and
//! the time, and says pass (with the identity), challenge, or ignore. A
//! challenge is the same 401 whatever the reason (unknown user, wrong
//! password, replay, a room that does not exist), so that a scanner learns
//! nothing from it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use sip::{HeaderName, Request};
use sip_auth::{Algorithm, Authorization, Credentials, NonceIssuer, Refusal, Verdict};

/// Which requests must authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// None: identity is what From says (a lab network).
    #[default]
    Off,
    /// Rooms decide: a room's policy may admit only users who
    /// authenticate; callers who offer credentials are checked anyway.
    Rooms,
    /// Every INVITE, SUBSCRIBE, REFER, MESSAGE and REGISTER from outside.
    Required,
}

/// Digest and lockout settings.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Which requests must authenticate.
    pub mode: AuthMode,
    /// The protection space; users' HA1 values are computed for it.
    pub realm: String,
    /// How long a nonce is good for (then `stale=true`).
    pub nonce_ttl: Duration,
    /// Failed answers from one address, within `failure_window`, after
    /// which it is ignored for `lockout`.
    pub max_failures: u32,
    /// See `max_failures`.
    pub failure_window: Duration,
    /// How long an address that failed too often is ignored.
    pub lockout: Duration,
    /// Algorithms offered, one challenge each, most preferred first (RFC
    /// 8760 §2.4). MD5 alone by default: phones older than RFC 8760 fail on
    /// a SHA-256 challenge instead of trying the next one (SIPp 3.6 reads
    /// only the first; baresip 1.0 on libre 1.1 gives up if any is not
    /// MD5). Where every phone knows SHA-256 (liblinphone does), offer it
    /// first.
    pub algorithms: Vec<Algorithm>,
    /// The key that MACs nonces; random per process when None (nodes
    /// behind one proxy share one, so that each accepts the other's nonces).
    pub key: Option<[u8; 32]>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            mode: AuthMode::Off,
            realm: "confab".into(),
            nonce_ttl: Duration::from_secs(300),
            max_failures: 10,
            failure_window: Duration::from_secs(60),
            lockout: Duration::from_secs(600),
            algorithms: vec![Algorithm::Md5],
            key: None,
        }
    }
}

/// Who sent a request: its address of record, and the user it
/// authenticated as (None: anonymous, From taken at its word).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) aor: String,
    pub(crate) user: Option<String>,
}

impl Identity {
    /// Identity by From alone.
    pub(crate) fn from_header(req: &Request) -> Self {
        Self {
            aor: req
                .headers
                .get(&HeaderName::FROM)
                .map(crate::conference_doc::aor)
                .unwrap_or_default(),
            user: None,
        }
    }

    /// `user` authenticated: the AOR is theirs at the domain From names,
    /// whatever user From claims.
    fn authenticated(req: &Request, user: &str) -> Self {
        let from = Self::from_header(req).aor;
        let domain = from
            .rsplit_once('@')
            .map(|(_, d)| d.to_owned())
            .unwrap_or_default();
        Self {
            aor: format!("sip:{user}@{domain}"),
            user: Some(user.to_owned()),
        }
    }
}

/// What the gate says of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Check {
    /// Go on, as this identity.
    Pass(Identity),
    /// Answer 401 with a fresh challenge (`stale`: the nonce had expired).
    Challenge { stale: bool },
}

/// Counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AuthStats {
    /// Requests that authenticated.
    pub passed: u64,
    /// 401s sent.
    pub challenged: u64,
    /// Answers refused (wrong password, unknown user, replay, forged nonce).
    pub refused: u64,
    /// Answers with an expired nonce (challenged again with `stale=true`).
    pub stale: u64,
    /// Addresses locked out after too many failures.
    pub lockouts: u64,
    /// Messages ignored from locked-out addresses.
    pub ignored: u64,
}

/// Failures of one address.
#[derive(Debug, Clone, Copy)]
struct Failures {
    since: Instant,
    count: u32,
    locked_until: Option<Instant>,
}

/// Addresses tracked at most; beyond it the stalest go first.
const MAX_TRACKED_ADDRESSES: usize = 65_536;
/// Answered nonces remembered for replay checks.
const MAX_TRACKED_NONCES: usize = 100_000;

/// The gate.
pub(crate) struct Gate {
    config: AuthConfig,
    issuer: NonceIssuer,
    users: HashMap<String, Credentials>,
    failures: HashMap<IpAddr, Failures>,
    /// Nonces carry wall-clock seconds (so that nodes sharing a key agree);
    /// this maps the monotonic clock onto them.
    epoch: (Instant, u64),
    pub(crate) stats: AuthStats,
}

impl Gate {
    pub(crate) fn new(config: AuthConfig, key: [u8; 32], epoch: (Instant, u64)) -> Self {
        Self {
            issuer: NonceIssuer::new(
                &key,
                config.realm.clone(),
                config.nonce_ttl,
                MAX_TRACKED_NONCES,
            ),
            config,
            users: HashMap::new(),
            failures: HashMap::new(),
            epoch,
            stats: AuthStats::default(),
        }
    }

    pub(crate) fn mode(&self) -> AuthMode {
        self.config.mode
    }

    /// New lockout limits; addresses locked now stay locked until their time.
    pub(crate) fn set_lockout(&mut self, max_failures: u32, lockout: Duration) {
        self.config.max_failures = max_failures;
        self.config.lockout = lockout;
    }

    pub(crate) fn set_user(&mut self, name: String, credentials: Credentials) {
        self.users.insert(name, credentials);
    }

    pub(crate) fn remove_user(&mut self, name: &str) {
        self.users.remove(name);
    }

    /// Wall-clock seconds at `now`.
    pub(crate) fn seconds(&self, now: Instant) -> u64 {
        self.epoch.1 + now.saturating_duration_since(self.epoch.0).as_secs()
    }

    /// True when messages from `ip` are to be ignored.
    pub(crate) fn ignores(&mut self, now: Instant, ip: IpAddr) -> bool {
        let locked = self
            .failures
            .get(&ip)
            .and_then(|f| f.locked_until)
            .is_some_and(|until| until > now);
        if locked {
            self.stats.ignored += 1;
        }
        locked
    }

    /// Checks a request's credentials. `required`: whether it must
    /// authenticate; when not, a request without credentials passes
    /// as anonymous (one with credentials is still checked).
    pub(crate) fn check(
        &mut self,
        now: Instant,
        req: &Request,
        ip: IpAddr,
        required: bool,
    ) -> Check {
        let header = req
            .headers
            .get(&HeaderName::AUTHORIZATION)
            .or_else(|| req.headers.get(&HeaderName::PROXY_AUTHORIZATION));
        let Some(value) = header else {
            return if required {
                Check::Challenge { stale: false }
            } else {
                Check::Pass(Identity::from_header(req))
            };
        };
        let auth = match Authorization::parse(value) {
            Ok(a) => a,
            Err(e) => {
                tracing::info!(%ip, error = %e, "unreadable Authorization");
                self.fail(now, ip, Refusal::Forged);
                return Check::Challenge { stale: false };
            }
        };
        if !self.config.algorithms.contains(&auth.algorithm) {
            tracing::info!(%ip, algorithm = auth.algorithm.name(), "answer with an algorithm not offered");
            self.fail(now, ip, Refusal::BadResponse);
            return Check::Challenge { stale: false };
        }
        let secs = self.seconds(now);
        let method = req.method.as_str();
        match self
            .issuer
            .verify(&auth, method, self.users.get(&auth.username), secs)
        {
            Verdict::Ok => {
                self.stats.passed += 1;
                Check::Pass(Identity::authenticated(req, &auth.username))
            }
            Verdict::Stale => {
                self.stats.stale += 1;
                Check::Challenge { stale: true }
            }
            Verdict::Refused(why) => {
                tracing::info!(%ip, user = %auth.username, reason = ?why, "authentication refused");
                self.fail(now, ip, why);
                Check::Challenge { stale: false }
            }
        }
    }

    /// The `WWW-Authenticate` headers of a 401, one per algorithm offered,
    /// in order of preference.
    pub(crate) fn challenge(&mut self, now: Instant, stale: bool) -> Vec<(HeaderName, String)> {
        self.stats.challenged += 1;
        let secs = self.seconds(now);
        let algorithms = self.config.algorithms.clone();
        algorithms
            .into_iter()
            .map(|alg| {
                let c = self.issuer.challenge(secs, alg, stale);
                (HeaderName::WWW_AUTHENTICATE, c.to_header())
            })
            .collect()
    }

    fn fail(&mut self, now: Instant, ip: IpAddr, why: Refusal) {
        self.stats.refused += 1;
        tracing::trace!(?why, "counted as a failure");
        if !self.failures.contains_key(&ip) && self.failures.len() >= MAX_TRACKED_ADDRESSES {
            self.forget_stale(now);
        }
        let window = self.config.failure_window;
        let f = self.failures.entry(ip).or_insert(Failures {
            since: now,
            count: 0,
            locked_until: None,
        });
        if now.saturating_duration_since(f.since) > window {
            f.since = now;
            f.count = 0;
        }
        f.count += 1;
        if f.count >= self.config.max_failures && f.locked_until.is_none_or(|t| t <= now) {
            f.locked_until = Some(now + self.config.lockout);
            self.stats.lockouts += 1;
            tracing::warn!(%ip, failures = f.count, lockout_s = self.config.lockout.as_secs(), "too many authentication failures: address ignored");
        }
    }

    /// Drops addresses whose window and lockout are over; if none are,
    /// the oldest half.
    fn forget_stale(&mut self, now: Instant) {
        let window = self.config.failure_window;
        self.failures.retain(|_, f| {
            f.locked_until.is_some_and(|t| t > now)
                || now.saturating_duration_since(f.since) <= window
        });
        if self.failures.len() >= MAX_TRACKED_ADDRESSES {
            let mut ages: Vec<Instant> = self.failures.values().map(|f| f.since).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            self.failures.retain(|_, f| f.since > cut);
        }
    }

    /// Once a second: forgets what is over.
    pub(crate) fn tidy(&mut self, now: Instant) {
        if !self.failures.is_empty() {
            let window = self.config.failure_window;
            self.failures.retain(|_, f| {
                f.locked_until.is_some_and(|t| t > now)
                    || now.saturating_duration_since(f.since) <= window
            });
            sip::transaction::shrink_map(&mut self.failures);
        }
    }
}
