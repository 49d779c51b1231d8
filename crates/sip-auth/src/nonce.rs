//! Nonces that carry their issue time and a MAC, and the checks of an
//! answer: realm, a nonce we issued, the response, expiry, replay.

use std::collections::HashMap;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::credentials::{Algorithm, Credentials};
use crate::header::{Authorization, Challenge};

/// Bytes of MAC a nonce carries (128 bits).
const MAC_LEN: usize = 16;
/// Nonce-counts below the highest seen that are still accepted once, out
/// of order.
const WINDOW: u32 = 64;

/// What became of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Authenticated.
    Ok,
    /// Right credentials, expired nonce: challenge again with `stale=true`.
    Stale,
    /// Refused: challenge again (the same 401 whatever the reason, so that
    /// a scanner learns nothing from it).
    Refused(Refusal),
}

/// Why an answer was refused (for logs and counters, not for the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Another realm.
    Realm,
    /// A nonce we did not issue (or altered).
    Forged,
    /// No such user.
    UnknownUser,
    /// The response does not match the user's credentials.
    BadResponse,
    /// A nonce-count already used with this nonce.
    Replay,
}

/// The uses seen of one nonce.
#[derive(Debug, Clone, Copy)]
struct Uses {
    issued: u64,
    serial: u64,
    highest: u32,
    /// Bit i: nonce-count `highest - i` was used.
    seen: u64,
}

/// Issues challenges and checks the answers to them. Nonces need no state
/// until answered: the issue time and a MAC over it are in the nonce.
pub struct NonceIssuer {
    mac: Hmac<Sha256>,
    realm: String,
    ttl: u64,
    issued: u64,
    uses: HashMap<String, Uses>,
    max_tracked: usize,
    /// Nonces up to this serial were forgotten to bound memory: an answer
    /// to one of them is stale (so a replay of it cannot pass unseen).
    forgotten_upto: u64,
}

impl NonceIssuer {
    /// An issuer for `realm` with a secret `key` (random, per process or
    /// shared by nodes behind one proxy); nonces live `ttl`; at most
    /// `max_tracked` answered nonces are remembered for replay checks.
    pub fn new(
        key: &[u8; 32],
        realm: impl Into<String>,
        ttl: Duration,
        max_tracked: usize,
    ) -> Self {
        Self {
            mac: Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable_key()),
            realm: realm.into(),
            ttl: ttl.as_secs().max(1),
            issued: 0,
            uses: HashMap::new(),
            max_tracked: max_tracked.max(1),
            forgotten_upto: 0,
        }
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// A fresh challenge at `now` (seconds since the epoch).
    pub fn challenge(&mut self, now: u64, algorithm: Algorithm, stale: bool) -> Challenge {
        self.issued = self.issued.wrapping_add(1);
        let mut raw = [0u8; 16 + MAC_LEN];
        raw[..8].copy_from_slice(&now.to_be_bytes());
        raw[8..16].copy_from_slice(&self.issued.to_be_bytes());
        let tag = self.tag(&raw[..16]);
        raw[16..].copy_from_slice(&tag[..MAC_LEN]);
        Challenge {
            realm: self.realm.clone(),
            nonce: URL_SAFE_NO_PAD.encode(raw),
            algorithm,
            stale,
        }
    }

    fn tag(&self, body: &[u8]) -> [u8; 32] {
        let mut m = self.mac.clone();
        m.update(body);
        m.update(self.realm.as_bytes());
        m.finalize().into_bytes().into()
    }

    /// The issue time and serial of a nonce we issued, None for any other.
    fn issued_at(&self, nonce: &str) -> Option<(u64, u64)> {
        let raw = URL_SAFE_NO_PAD.decode(nonce).ok()?;
        if raw.len() != 16 + MAC_LEN {
            return None;
        }
        let mut m = self.mac.clone();
        m.update(&raw[..16]);
        m.update(self.realm.as_bytes());
        m.verify_truncated_left(&raw[16..]).ok()?;
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&raw[..8]);
        let mut serial = [0u8; 8];
        serial.copy_from_slice(&raw[8..16]);
        Some((u64::from_be_bytes(ts), u64::from_be_bytes(serial)))
    }

    /// Checks an answer to `method` at `now`; `credentials` are the user's
    /// (None: no such user).
    pub fn verify(
        &mut self,
        auth: &Authorization,
        method: &str,
        credentials: Option<&Credentials>,
        now: u64,
    ) -> Verdict {
        if auth.realm != self.realm {
            return Verdict::Refused(Refusal::Realm);
        }
        let Some((issued, serial)) = self.issued_at(&auth.nonce) else {
            return Verdict::Refused(Refusal::Forged);
        };
        let Some(creds) = credentials else {
            return Verdict::Refused(Refusal::UnknownUser);
        };
        let expected = auth.expected_response(method, creds.ha1(auth.algorithm));
        if !constant_time_eq(expected.as_bytes(), auth.response.as_bytes()) {
            return Verdict::Refused(Refusal::BadResponse);
        }
        if now > issued.saturating_add(self.ttl) || issued > now.saturating_add(60) {
            return Verdict::Stale;
        }
        if serial <= self.forgotten_upto && !self.uses.contains_key(&auth.nonce) {
            return Verdict::Stale;
        }
        self.check_count(&auth.nonce, issued, serial, auth.nc, now)
    }

    fn check_count(&mut self, nonce: &str, issued: u64, serial: u64, nc: u32, now: u64) -> Verdict {
        if !self.uses.contains_key(nonce) && self.uses.len() >= self.max_tracked {
            self.make_room(now);
        }
        let u = self.uses.entry(nonce.to_string()).or_insert(Uses {
            issued,
            serial,
            highest: 0,
            seen: 0,
        });
        if nc == 0 {
            return Verdict::Refused(Refusal::Replay);
        }
        if nc > u.highest {
            let shift = nc - u.highest;
            u.seen = if shift >= WINDOW { 0 } else { u.seen << shift };
            u.seen |= 1;
            u.highest = nc;
            return Verdict::Ok;
        }
        let back = u.highest - nc;
        if back >= WINDOW || u.seen & (1 << back) != 0 {
            return Verdict::Refused(Refusal::Replay);
        }
        u.seen |= 1 << back;
        Verdict::Ok
    }

    /// Forgets expired nonces; if that is not enough, the older half,
    /// whose later answers are then stale (the client asks for a fresh
    /// nonce without asking its user). Memory stays bounded under any load
    /// and a forgotten nonce cannot be replayed.
    fn make_room(&mut self, now: u64) {
        let ttl = self.ttl;
        self.uses.retain(|_, u| now <= u.issued.saturating_add(ttl));
        if self.uses.len() < self.max_tracked {
            return;
        }
        let mut serials: Vec<u64> = self.uses.values().map(|u| u.serial).collect();
        let mid = serials.len() / 2;
        let (_, cut, _) = serials.select_nth_unstable(mid);
        let cut = *cut;
        self.uses.retain(|_, u| u.serial > cut);
        self.forgotten_upto = self.forgotten_upto.max(cut);
    }

    /// Nonces remembered for replay checks.
    pub fn tracked(&self) -> usize {
        self.uses.len()
    }
}

/// HMAC takes a key of any length; this cannot happen.
fn unreachable_key() -> Hmac<Sha256> {
    unreachable!("HMAC accepts keys of any length")
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];
    const T0: u64 = 1_800_000_000;

    fn answer(c: &Challenge, user: &str, password: &str, method: &str, nc: u32) -> Authorization {
        let creds = Credentials::from_password(user, &c.realm, password);
        let mut a = Authorization {
            username: user.into(),
            realm: c.realm.clone(),
            nonce: c.nonce.clone(),
            uri: "sip:room@confab.example".into(),
            response: String::new(),
            algorithm: c.algorithm,
            cnonce: "0a4f113b".into(),
            nc,
        };
        a.response = a.expected_response(method, creds.ha1(c.algorithm));
        a
    }

    fn issuer() -> NonceIssuer {
        NonceIssuer::new(&KEY, "confab", Duration::from_secs(300), 1000)
    }

    #[test]
    fn a_right_answer_passes_once_per_nonce_count() {
        let mut n = issuer();
        let alice = Credentials::from_password("alice", "confab", "s3cret");
        for alg in [Algorithm::Sha256, Algorithm::Md5] {
            let c = n.challenge(T0, alg, false);
            let a1 = answer(&c, "alice", "s3cret", "INVITE", 1);
            assert_eq!(n.verify(&a1, "INVITE", Some(&alice), T0 + 1), Verdict::Ok);
            assert_eq!(
                n.verify(&a1, "INVITE", Some(&alice), T0 + 2),
                Verdict::Refused(Refusal::Replay)
            );
            let a3 = answer(&c, "alice", "s3cret", "SUBSCRIBE", 3);
            assert_eq!(
                n.verify(&a3, "SUBSCRIBE", Some(&alice), T0 + 2),
                Verdict::Ok
            );
            // Out of order, once.
            let a2 = answer(&c, "alice", "s3cret", "MESSAGE", 2);
            assert_eq!(n.verify(&a2, "MESSAGE", Some(&alice), T0 + 3), Verdict::Ok);
            assert_eq!(
                n.verify(&a2, "MESSAGE", Some(&alice), T0 + 3),
                Verdict::Refused(Refusal::Replay)
            );
        }
    }

    #[test]
    fn wrong_password_method_user_realm_or_forged_nonce_are_refused() {
        let mut n = issuer();
        let alice = Credentials::from_password("alice", "confab", "s3cret");
        let c = n.challenge(T0, Algorithm::Sha256, false);
        let wrong = answer(&c, "alice", "guess", "INVITE", 1);
        assert_eq!(
            n.verify(&wrong, "INVITE", Some(&alice), T0),
            Verdict::Refused(Refusal::BadResponse)
        );
        let a = answer(&c, "alice", "s3cret", "INVITE", 1);
        assert_eq!(
            n.verify(&a, "BYE", Some(&alice), T0),
            Verdict::Refused(Refusal::BadResponse),
            "the response covers the method"
        );
        assert_eq!(
            n.verify(&a, "INVITE", None, T0),
            Verdict::Refused(Refusal::UnknownUser)
        );
        let mut other_realm = a.clone();
        other_realm.realm = "elsewhere".into();
        assert_eq!(
            n.verify(&other_realm, "INVITE", Some(&alice), T0),
            Verdict::Refused(Refusal::Realm)
        );
        // A nonce of our form from another key, and a tampered one.
        let mut stranger = NonceIssuer::new(&[9; 32], "confab", Duration::from_secs(300), 10);
        let theirs = stranger.challenge(T0, Algorithm::Sha256, false);
        let forged = answer(&theirs, "alice", "s3cret", "INVITE", 1);
        assert_eq!(
            n.verify(&forged, "INVITE", Some(&alice), T0),
            Verdict::Refused(Refusal::Forged)
        );
        let mut bytes = c.nonce.clone().into_bytes();
        bytes[2] = if bytes[2] == b'A' { b'B' } else { b'A' };
        let tampered = Challenge {
            nonce: String::from_utf8(bytes).expect("ascii"),
            ..c.clone()
        };
        let t = answer(&tampered, "alice", "s3cret", "INVITE", 1);
        assert_eq!(
            n.verify(&t, "INVITE", Some(&alice), T0),
            Verdict::Refused(Refusal::Forged)
        );
    }

    #[test]
    fn an_expired_nonce_with_the_right_password_is_stale() {
        let mut n = issuer();
        let alice = Credentials::from_password("alice", "confab", "s3cret");
        let c = n.challenge(T0, Algorithm::Sha256, false);
        let a = answer(&c, "alice", "s3cret", "REGISTER", 1);
        assert_eq!(
            n.verify(&a, "REGISTER", Some(&alice), T0 + 301),
            Verdict::Stale
        );
        let wrong = answer(&c, "alice", "nope", "REGISTER", 1);
        assert_eq!(
            n.verify(&wrong, "REGISTER", Some(&alice), T0 + 301),
            Verdict::Refused(Refusal::BadResponse),
            "stale only for the right password"
        );
        let again = n.challenge(T0 + 301, Algorithm::Sha256, true);
        assert!(again.to_header().ends_with("stale=true"));
        let b = answer(&again, "alice", "s3cret", "REGISTER", 1);
        assert_eq!(
            n.verify(&b, "REGISTER", Some(&alice), T0 + 302),
            Verdict::Ok
        );
    }

    #[test]
    fn remembered_nonces_are_bounded() {
        let mut n = NonceIssuer::new(&KEY, "confab", Duration::from_secs(300), 3);
        let alice = Credentials::from_password("alice", "confab", "s3cret");
        let mut used = Vec::new();
        for i in 0..3 {
            let c = n.challenge(T0 + i, Algorithm::Md5, false);
            let a = answer(&c, "alice", "s3cret", "INVITE", 1);
            assert_eq!(n.verify(&a, "INVITE", Some(&alice), T0 + i), Verdict::Ok);
            used.push(c);
        }
        // Full of live nonces: the older half is forgotten to make room.
        let c = n.challenge(T0 + 3, Algorithm::Md5, false);
        let a = answer(&c, "alice", "s3cret", "INVITE", 1);
        assert_eq!(n.verify(&a, "INVITE", Some(&alice), T0 + 10), Verdict::Ok);
        assert!(n.tracked() <= 3);
        // A forgotten nonce is stale: its replay does not pass unseen, and
        // an honest client asks for a fresh nonce.
        let replay = answer(&used[0], "alice", "s3cret", "INVITE", 1);
        assert_eq!(
            n.verify(&replay, "INVITE", Some(&alice), T0 + 10),
            Verdict::Stale
        );
        // Once the old ones expire they are forgotten.
        let c = n.challenge(T0 + 400, Algorithm::Md5, false);
        let a = answer(&c, "alice", "s3cret", "INVITE", 1);
        assert_eq!(n.verify(&a, "INVITE", Some(&alice), T0 + 400), Verdict::Ok);
        assert!(n.tracked() <= 3);
    }
}
