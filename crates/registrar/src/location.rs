//! The location service: bindings per address of record, and the
//! REGISTER rules of RFC 3261 §10.3 steps 6 to 8.

use std::collections::HashMap;

use sip::header::NameAddr;
use sip::transaction::Peer;

use crate::register::Register;

/// Registration intervals and bounds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Shorter non-zero intervals get 423 with this as Min-Expires.
    pub min_expires: u32,
    /// Longer intervals are cut to this.
    pub max_expires: u32,
    /// The interval when the request names none.
    pub default_expires: u32,
    /// Contacts one address of record may have.
    pub max_contacts: usize,
    /// Addresses of record in all.
    pub max_aors: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            min_expires: 60,
            max_expires: 7200,
            default_expires: 3600,
            max_contacts: 10,
            max_aors: 100_000,
        }
    }
}

/// One contact of an address of record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The contact, with its parameters as registered.
    pub contact: NameAddr,
    /// When it expires (seconds since the epoch).
    pub expires_at: u64,
    /// Preference, 0 to 1000 (`q=1.0` is 1000); 1000 when absent.
    pub q: u16,
    /// The Call-ID and CSeq of the REGISTER that made or refreshed it.
    pub call_id: String,
    /// See `call_id`.
    pub cseq: u32,
    /// The Path to reach it (RFC 3327), outermost first.
    pub path: Vec<String>,
    /// The flow the REGISTER came over (see [`Register::source`]).
    pub source: Option<Peer>,
}

/// What a REGISTER comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 200 OK with the address of record's current bindings.
    Ok(Vec<Binding>),
    /// 423 Interval Too Brief with this Min-Expires.
    IntervalTooBrief(u32),
    /// A Call-ID's CSeq that is not higher than the binding's: refused
    /// (RFC 3261 §10.3 step 7), answered 500 with Retry-After by convention.
    OutOfOrder,
    /// More contacts or addresses of record than the limits allow (403).
    TooMany,
}

/// The location service.
#[derive(Debug, Default)]
pub struct Location {
    limits: Limits,
    aors: HashMap<String, Vec<Binding>>,
}

impl Location {
    /// An empty location service.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            aors: HashMap::new(),
        }
    }

    /// Bindings as the store had them (after a restart); expired ones are
    /// dropped at the next look.
    pub fn restore(&mut self, aor: String, bindings: Vec<Binding>) {
        self.aors.insert(aor, bindings);
    }

    /// Applies a REGISTER at `now`.
    pub fn register(&mut self, reg: &Register, now: u64) -> Outcome {
        self.expire_aor(&reg.aor, now);
        let Some(contacts) = &reg.contacts else {
            return self.remove_all(reg);
        };
        // Step 6 and 7: every contact is checked before any is applied.
        let mut changes = Vec::with_capacity(contacts.len());
        for c in contacts {
            let asked = c
                .params
                .value("expires")
                .and_then(|e| e.parse::<u32>().ok())
                .or(reg.expires)
                .unwrap_or(self.limits.default_expires);
            if asked != 0 && asked < self.limits.min_expires {
                return Outcome::IntervalTooBrief(self.limits.min_expires);
            }
            if let Some(b) = self.find(&reg.aor, c) {
                if b.call_id == reg.call_id && reg.cseq <= b.cseq {
                    return Outcome::OutOfOrder;
                }
            }
            changes.push((c, asked.min(self.limits.max_expires)));
        }
        if !self.aors.contains_key(&reg.aor)
            && !changes.is_empty()
            && self.aors.len() >= self.limits.max_aors
        {
            return Outcome::TooMany;
        }
        let max_contacts = self.limits.max_contacts;
        let list = self.aors.entry(reg.aor.clone()).or_default();
        let mut next = list.clone();
        for (c, expires) in changes {
            next.retain(|b| b.contact.uri != c.uri);
            if expires == 0 {
                continue;
            }
            next.push(Binding {
                contact: c.clone(),
                expires_at: now + expires as u64,
                q: q_of(c),
                call_id: reg.call_id.clone(),
                cseq: reg.cseq,
                path: reg.path.clone(),
                source: reg.source,
            });
        }
        if next.len() > max_contacts {
            return Outcome::TooMany;
        }
        *list = next;
        let out = list.clone();
        if out.is_empty() {
            self.aors.remove(&reg.aor);
        }
        Outcome::Ok(out)
    }

    /// `Contact: *`: every binding goes, unless one of the same Call-ID is newer.
    fn remove_all(&mut self, reg: &Register) -> Outcome {
        if let Some(list) = self.aors.get(&reg.aor) {
            if list
                .iter()
                .any(|b| b.call_id == reg.call_id && reg.cseq <= b.cseq)
            {
                return Outcome::OutOfOrder;
            }
        }
        self.aors.remove(&reg.aor);
        Outcome::Ok(Vec::new())
    }

    fn find(&self, aor: &str, c: &NameAddr) -> Option<&Binding> {
        self.aors.get(aor)?.iter().find(|b| b.contact.uri == c.uri)
    }

    fn expire_aor(&mut self, aor: &str, now: u64) {
        if let Some(list) = self.aors.get_mut(aor) {
            list.retain(|b| b.expires_at > now);
            if list.is_empty() {
                self.aors.remove(aor);
            }
        }
    }

    /// The live bindings of `aor`, best `q` first (ties: most recent first).
    pub fn lookup(&mut self, aor: &str, now: u64) -> Vec<Binding> {
        self.expire_aor(aor, now);
        let mut out = self.aors.get(aor).cloned().unwrap_or_default();
        out.sort_by(|a, b| b.q.cmp(&a.q).then(b.expires_at.cmp(&a.expires_at)));
        out
    }

    /// Drops every expired binding; returns how many went.
    pub fn expire(&mut self, now: u64) -> usize {
        let mut gone = 0;
        self.aors.retain(|_, list| {
            let before = list.len();
            list.retain(|b| b.expires_at > now);
            gone += before - list.len();
            !list.is_empty()
        });
        gone
    }

    /// Addresses of record with a binding.
    pub fn len(&self) -> usize {
        self.aors.len()
    }

    /// True when nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.aors.is_empty()
    }
}

/// `q=0.5` as 500; absent or malformed is 1000 (RFC 3261 §20.10).
fn q_of(c: &NameAddr) -> u16 {
    let Some(q) = c.params.value("q") else {
        return 1000;
    };
    let (int, frac) = q.split_once('.').unwrap_or((q, ""));
    let int: u16 = match int {
        "0" => 0,
        "1" => 1000,
        _ => return 1000,
    };
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return 1000;
    }
    let mut f = 0u16;
    for (i, d) in frac.bytes().enumerate() {
        f += (d - b'0') as u16 * [100, 10, 1][i];
    }
    (int + f).min(1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sip::{parse_message, ParseLimits};

    const T0: u64 = 1_800_000_000;

    fn register(contacts: &[&str], expires: Option<u32>, call_id: &str, cseq: u32) -> Register {
        let mut raw = format!(
            "REGISTER sip:confab.example SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bK{cseq}{call_id}\r\n\
             Max-Forwards: 70\r\n\
             To: <sip:alice@confab.example>\r\n\
             From: <sip:alice@confab.example>;tag=a1\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} REGISTER\r\n\
             Path: <sip:proxy.example;lr>\r\n"
        );
        for c in contacts {
            raw.push_str(&format!("Contact: {c}\r\n"));
        }
        if let Some(e) = expires {
            raw.push_str(&format!("Expires: {e}\r\n"));
        }
        raw.push_str("Content-Length: 0\r\n\r\n");
        let msg = parse_message(raw.as_bytes(), &ParseLimits::default()).expect("parses");
        let sip::Message::Request(req) = msg else {
            panic!("a request")
        };
        Register::from_request(&req).expect("a REGISTER")
    }

    fn ok(o: Outcome) -> Vec<Binding> {
        match o {
            Outcome::Ok(b) => b,
            other => panic!("not 200: {other:?}"),
        }
    }

    #[test]
    fn contacts_are_added_refreshed_ordered_by_q_and_expire() {
        let mut loc = Location::new(Limits::default());
        let r = register(
            &[
                "<sip:alice@192.0.2.4:5060>;q=0.5",
                "<sip:alice@198.51.100.7>;expires=120",
            ],
            Some(600),
            "c1",
            1,
        );
        assert_eq!(r.aor, "sip:alice@confab.example");
        assert_eq!(r.path, ["<sip:proxy.example;lr>"]);
        let b = ok(loc.register(&r, T0));
        assert_eq!(b.len(), 2);
        let found = loc.lookup("sip:alice@confab.example", T0 + 1);
        assert_eq!(found[0].q, 1000);
        assert_eq!(found[0].expires_at, T0 + 120);
        assert_eq!(found[1].q, 500);
        assert_eq!(found[1].path, ["<sip:proxy.example;lr>"]);
        // The 120 s one lapses; the other is refreshed by a later CSeq.
        assert_eq!(loc.lookup("sip:alice@confab.example", T0 + 121).len(), 1);
        let refresh = register(&["<sip:alice@192.0.2.4:5060>;q=0.5"], Some(600), "c1", 2);
        let b = ok(loc.register(&refresh, T0 + 500));
        assert_eq!(b[0].expires_at, T0 + 1100);
        assert_eq!(loc.expire(T0 + 1101), 1);
        assert!(loc.is_empty());
    }

    #[test]
    fn ordering_brief_intervals_wildcard_and_limits() {
        let mut loc = Location::new(Limits {
            max_contacts: 2,
            ..Limits::default()
        });
        let first = register(&["<sip:alice@192.0.2.4>"], Some(600), "c1", 5);
        ok(loc.register(&first, T0));
        // Same Call-ID, CSeq not higher: refused, binding untouched.
        let replay = register(&["<sip:alice@192.0.2.4>"], Some(0), "c1", 5);
        assert_eq!(loc.register(&replay, T0 + 1), Outcome::OutOfOrder);
        // Another Call-ID (the phone rebooted) may replace it.
        let other = register(&["<sip:alice@192.0.2.4>"], Some(900), "c2", 1);
        assert_eq!(ok(loc.register(&other, T0 + 2))[0].call_id, "c2");
        let brief = register(&["<sip:alice@192.0.2.9>"], Some(10), "c3", 1);
        assert_eq!(loc.register(&brief, T0 + 3), Outcome::IntervalTooBrief(60));
        let many = register(
            &["<sip:alice@192.0.2.10>", "<sip:alice@192.0.2.11>"],
            Some(600),
            "c4",
            1,
        );
        assert_eq!(loc.register(&many, T0 + 4), Outcome::TooMany);
        // A query (no Contact) lists what there is.
        let query = register(&[], None, "c5", 1);
        assert_eq!(ok(loc.register(&query, T0 + 5)).len(), 1);
        // Contact: * with Expires: 0 removes all.
        let all = register(&["*"], Some(0), "c6", 1);
        assert!(ok(loc.register(&all, T0 + 6)).is_empty());
        assert!(loc.lookup("sip:alice@confab.example", T0 + 6).is_empty());
    }

    #[test]
    fn a_wildcard_needs_expires_zero_and_no_other_contact() {
        for (contacts, expires) in [(&["*"][..], Some(60)), (&["*", "<sip:a@b>"][..], Some(0))] {
            let mut raw = String::from(
                "REGISTER sip:confab.example SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\n\
                 To: <sip:alice@confab.example>\r\nFrom: <sip:alice@confab.example>;tag=1\r\n\
                 Call-ID: w\r\nCSeq: 1 REGISTER\r\nMax-Forwards: 70\r\n",
            );
            for c in contacts {
                raw.push_str(&format!("Contact: {c}\r\n"));
            }
            if let Some(e) = expires {
                raw.push_str(&format!("Expires: {e}\r\n"));
            }
            raw.push_str("Content-Length: 0\r\n\r\n");
            let Ok(sip::Message::Request(req)) =
                parse_message(raw.as_bytes(), &ParseLimits::default())
            else {
                panic!("parses")
            };
            assert_eq!(
                Register::from_request(&req),
                Err(crate::RegisterError::Wildcard)
            );
        }
    }

    #[test]
    fn q_values() {
        let q = |s: &str| q_of(&NameAddr::parse(&format!("<sip:a@b>;q={s}")).expect("contact"));
        assert_eq!(q("0.5"), 500);
        assert_eq!(q("1"), 1000);
        assert_eq!(q("0.001"), 1);
        assert_eq!(q("0"), 0);
        assert_eq!(q("2"), 1000);
        assert_eq!(q("0.5555"), 1000);
    }
}
