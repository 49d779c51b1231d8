//! How confabctl prints what the API returns: JSON objects for `--json`
//! (one per line for streams), aligned tables otherwise.

use confab_proto as pb;
use serde_json::{json, Value};

/// A participant role's name.
pub fn role_name(v: i32) -> &'static str {
    match pb::ParticipantRole::try_from(v) {
        Ok(pb::ParticipantRole::Moderator) => "moderator",
        Ok(pb::ParticipantRole::Listener) => "listener",
        Ok(pb::ParticipantRole::Participant) => "participant",
        _ => "unspecified",
    }
}

/// A token role's name.
pub fn token_role_name(v: i32) -> &'static str {
    match pb::Role::try_from(v) {
        Ok(pb::Role::Admin) => "admin",
        Ok(pb::Role::Moderator) => "moderator",
        Ok(pb::Role::Viewer) => "viewer",
        _ => "unspecified",
    }
}

/// A token (never its secret) as JSON.
pub fn token(t: &pb::TokenInfo) -> Value {
    json!({
        "id": t.id,
        "role": token_role_name(t.role),
        "rooms": t.rooms,
        "description": t.description,
        "created_at": t.created_at,
    })
}

/// A SIP user (never a password or HA1) as JSON.
pub fn user(u: &pb::User) -> Value {
    json!({
        "name": u.name,
        "realm": u.realm,
        "created_at": u.created_at,
        "updated_at": u.updated_at,
    })
}

/// A floor policy's name.
pub fn floor_policy_name(v: i32) -> &'static str {
    match pb::FloorPolicy::try_from(v) {
        Ok(pb::FloorPolicy::ModeratorGranted) => "moderator-granted",
        Ok(pb::FloorPolicy::FirstCome) => "first-come",
        _ => "none",
    }
}

/// A room's SRTP mode by name ("server" when it follows the server's).
fn srtp_name(v: i32) -> &'static str {
    match pb::SrtpMode::try_from(v) {
        Ok(pb::SrtpMode::Off) => "off",
        Ok(pb::SrtpMode::Optional) => "optional",
        Ok(pb::SrtpMode::Required) => "required",
        _ => "server",
    }
}

/// A conference as JSON.
pub fn conference(c: &pb::Conference) -> Value {
    json!({
        "name": c.name,
        "subject": c.subject,
        "locked": c.locked,
        "max_participants": c.max_participants,
        "has_pin": c.has_pin,
        "has_moderator_pin": c.has_moderator_pin,
        "watchers": c.watchers,
        "mute_on_entry": c.mute_on_entry,
        "talkers_mixed": c.talkers_mixed,
        "floor_policy": floor_policy_name(c.floor_policy),
        "auto_create": c.auto_create.unwrap_or(true),
        "created_at": c.created_at,
        "participant_count": c.participant_count,
        "ad_hoc": c.ad_hoc,
        "members_only": c.members_only,
        "srtp": srtp_name(c.srtp),
        "record": c.record,
    })
}

/// A recording as JSON.
pub fn recording(r: &pb::Recording) -> Value {
    json!({
        "id": r.id,
        "conference": r.conference,
        "started_at_ms": r.started_at_ms,
        "ended_at_ms": (r.ended_at_ms != 0).then_some(r.ended_at_ms),
        "active": r.active,
        "duration_ms": r.duration_ms,
        "bytes": r.bytes,
        "dropped_frames": r.dropped_frames,
    })
}

/// A recording as a table row: id, room, state, length, bytes, dropped.
pub fn recording_row(r: &pb::Recording) -> Vec<String> {
    let secs = r.duration_ms / 1000;
    vec![
        r.id.clone(),
        r.conference.clone(),
        if r.active { "recording" } else { "done" }.into(),
        format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60),
        r.bytes.to_string(),
        r.dropped_frames.to_string(),
    ]
}

/// A participant as JSON.
pub fn participant(p: &pb::Participant) -> Value {
    json!({
        "id": p.id,
        "uri": p.uri,
        "display_name": p.display_name,
        "status": p.status,
        "muted": p.muted,
        "deaf": p.deaf,
        "role": role_name(p.role),
        "input_gain_db": p.input_gain_db,
        "output_gain_db": p.output_gain_db,
    })
}

/// A floor as JSON.
pub fn floor(f: &pb::Floor) -> Value {
    json!({
        "policy": floor_policy_name(f.policy),
        "holder": (!f.holder.is_empty()).then_some(&f.holder),
        "queue": f.queue,
    })
}

/// Raised hands as JSON: participant ids, first raised first.
pub fn hands(h: &pb::RaisedHands) -> Value {
    json!(h.participants)
}

/// Raised hands for people, in order, with who each is when known.
pub fn hands_line(h: &pb::RaisedHands, people: &[pb::Participant]) -> String {
    if h.participants.is_empty() {
        return "hands: none raised".into();
    }
    let each: Vec<String> = h
        .participants
        .iter()
        .enumerate()
        .map(|(i, id)| match people.iter().find(|p| p.id == *id) {
            Some(p) => format!("{}. {id} ({})", i + 1, p.uri),
            None => format!("{}. {id}", i + 1),
        })
        .collect();
    format!("hands: {}", each.join("  "))
}

/// A blueprint as JSON.
pub fn blueprint(b: &pb::Blueprint) -> Value {
    json!({
        "name": b.name,
        "description": b.description,
        "settings": b.settings.as_ref().map(conference),
    })
}

/// A conference event as JSON: `{"conference", "at_ms", "type", ...}`.
pub fn event(e: &pb::ConferenceEvent) -> Value {
    use pb::conference_event::Event;
    let (kind, body) = match &e.event {
        Some(Event::Snapshot(s)) => (
            "snapshot",
            json!({
                "settings": s.conference.as_ref().map(conference),
                "participants": s.participants.iter().map(participant).collect::<Vec<_>>(),
                "floor": s.floor.as_ref().map(floor),
                "hands": s.hands.as_ref().map(hands),
            }),
        ),
        Some(Event::Joined(p)) => ("joined", participant(p)),
        Some(Event::Updated(p)) => ("updated", participant(p)),
        Some(Event::Left(p)) => ("left", participant(p)),
        Some(Event::Talking(t)) => (
            "talking",
            json!({"participant": t.participant, "talking": t.talking}),
        ),
        Some(Event::Floor(f)) => ("floor", floor(f)),
        Some(Event::Hands(h)) => ("hands", hands(h)),
        Some(Event::ConferenceUpdated(c)) => ("conference-updated", conference(c)),
        Some(Event::Deleted(_)) => ("deleted", json!({})),
        Some(Event::Recording(r)) => ("recording", json!({"on": r.on})),
        None => ("unknown", json!({})),
    };
    json!({"conference": e.conference, "at_ms": e.at_ms, "type": kind, "data": body})
}

/// One line for a conference event, for people.
pub fn event_line(e: &pb::ConferenceEvent) -> String {
    use pb::conference_event::Event;
    let what = match &e.event {
        Some(Event::Snapshot(s)) => format!(
            "snapshot: {} participant(s), floor {}, hands [{}]",
            s.participants.len(),
            s.floor
                .as_ref()
                .map(|f| floor_policy_name(f.policy))
                .unwrap_or("none"),
            s.hands
                .as_ref()
                .map(|h| h.participants.join(","))
                .unwrap_or_default()
        ),
        Some(Event::Joined(p)) => format!("joined {} {} ({})", p.id, p.uri, p.status),
        Some(Event::Updated(p)) => format!(
            "updated {} {} status={} muted={} deaf={} role={}",
            p.id,
            p.uri,
            p.status,
            p.muted,
            p.deaf,
            role_name(p.role)
        ),
        Some(Event::Left(p)) => format!("left {} {}", p.id, p.uri),
        Some(Event::Talking(t)) => format!(
            "{} {}",
            t.participant,
            if t.talking {
                "started talking"
            } else {
                "stopped talking"
            }
        ),
        Some(Event::Floor(f)) => format!(
            "floor holder={} queue=[{}]",
            if f.holder.is_empty() { "-" } else { &f.holder },
            f.queue.join(",")
        ),
        Some(Event::Hands(h)) => format!("hands [{}]", h.participants.join(",")),
        Some(Event::ConferenceUpdated(c)) => format!(
            "conference locked={} subject={:?} floor={}",
            c.locked,
            c.subject,
            floor_policy_name(c.floor_policy)
        ),
        Some(Event::Deleted(_)) => "conference deleted".into(),
        Some(Event::Recording(r)) => if r.on {
            "recording started"
        } else {
            "recording stopped"
        }
        .into(),
        None => "unknown event".into(),
    };
    format!("{} {} {}", e.at_ms, e.conference, what)
}

/// An aligned text table.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// Participants as a table.
pub fn participants_table(ps: &[pb::Participant]) -> String {
    let rows: Vec<Vec<String>> = ps
        .iter()
        .map(|p| {
            vec![
                p.id.clone(),
                p.uri.clone(),
                p.status.clone(),
                role_name(p.role).into(),
                if p.muted { "yes" } else { "no" }.into(),
                if p.deaf { "yes" } else { "no" }.into(),
            ]
        })
        .collect();
    table(&["ID", "URI", "STATUS", "ROLE", "MUTED", "DEAF"], &rows)
}
