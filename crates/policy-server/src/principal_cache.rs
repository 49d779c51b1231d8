//! Valid tokens seen recently, so a call does not read the database to
//! learn who is calling. Entries are dropped at once when this node, or
//! another node sharing a PostgreSQL store (by its announcement), revokes
//! the token; and they live at most [`TTL`] in any case, which bounds a
//! revocation whose announcement was lost.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::store::Principal;

/// How long a looked-up principal is trusted without asking the store.
pub const TTL: Duration = Duration::from_secs(10);
/// Most tokens kept; beyond it the cache starts over.
const MAX: usize = 10_000;

/// Principals by token hash.
#[derive(Default)]
pub struct PrincipalCache {
    entries: Mutex<HashMap<String, (Principal, Instant)>>,
}

impl PrincipalCache {
    /// The principal of a token hash, if cached and fresh at `now`.
    pub fn get(&self, hash: &str, now: Instant) -> Option<Principal> {
        let entries = self.entries.lock().ok()?;
        let (p, at) = entries.get(hash)?;
        (now.saturating_duration_since(*at) < TTL).then(|| p.clone())
    }

    /// Remembers a principal looked up at `now`.
    pub fn put(&self, hash: String, p: Principal, now: Instant) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX {
                entries.clear();
            }
            entries.insert(hash, (p, now));
        }
    }

    /// Forgets every entry of token `id` (it was revoked).
    pub fn forget(&self, id: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, (p, _)| p.id != id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Role;

    #[test]
    fn fresh_entries_are_served_stale_and_revoked_ones_are_not() {
        let c = PrincipalCache::default();
        let t0 = Instant::now();
        let p = Principal {
            id: "abc".into(),
            role: Role::Viewer,
            rooms: vec![],
        };
        c.put("h1".into(), p.clone(), t0);
        assert_eq!(c.get("h1", t0 + Duration::from_secs(1)), Some(p));
        assert_eq!(c.get("h1", t0 + TTL), None);
        c.put("h1".into(), c.get("h1", t0).unwrap(), t0);
        c.forget("abc");
        assert_eq!(c.get("h1", t0), None);
    }
}
