//! Documents written by the conference-info crate validate against the
//! RFC 4575 schema (tests/xsd/conference-info.xsd) with xmllint (Debian
//! `libxml2-utils`). Without xmllint the test says so and passes, unless
//! `CONFAB_INTEROP=1`.

use std::process::Command;

use conference_info::*;

fn xmllint() -> bool {
    test_support::peer_tool("xmllint", "libxml2-utils")
}

/// Validates with xmllint; returns its complaint on failure.
pub fn validate(xml: &str) -> Result<(), String> {
    let path = std::env::temp_dir().join(format!("ci-{}-{}.xml", std::process::id(), xml.len()));
    std::fs::write(&path, xml).unwrap();
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/xsd/conference-info.xsd");
    let out = Command::new("xmllint")
        .args(["--noout", "--schema", schema])
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn sample() -> ConferenceInfo {
    ConferenceInfo {
        entity: "sip:room@127.0.0.1".into(),
        version: Some(1),
        description: Some(Description {
            display_text: Some("Room <1> & co".into()),
            subject: Some("Weekly".into()),
            keywords: vec!["a".into(), "b".into()],
            conf_uris: Some(Uris {
                state: State::Full,
                entries: vec![UriEntry {
                    uri: "sip:room@127.0.0.1".into(),
                    purpose: Some("participation".into()),
                    ..Default::default()
                }],
            }),
            maximum_user_count: Some(64),
            available_media: vec![Medium {
                label: "1".into(),
                media_type: "audio".into(),
                status: Some(MediaStatus::SendRecv),
                display_text: None,
            }],
            ..Default::default()
        }),
        conference_state: Some(ConferenceState {
            user_count: Some(1),
            active: Some(true),
            locked: Some(false),
            ..Default::default()
        }),
        users: Some(Users {
            state: State::Full,
            users: vec![User {
                entity: Some("sip:alice@127.0.0.1".into()),
                display_text: Some("Alice".into()),
                roles: vec!["participant".into()],
                endpoints: vec![Endpoint {
                    entity: Some("sip:alice@127.0.0.1:5070".into()),
                    status: Some(EndpointStatus::Connected),
                    joining_method: Some(JoiningMethod::DialedIn),
                    joining_info: Some(Execution {
                        when: Some("2026-11-25T10:00:00Z".into()),
                        ..Default::default()
                    }),
                    referred: Some(Execution {
                        by: Some("sip:bob@127.0.0.1".into()),
                        ..Default::default()
                    }),
                    media: vec![Media {
                        id: "1".into(),
                        media_type: Some("audio".into()),
                        src_id: Some("1234".into()),
                        status: Some(MediaStatus::SendRecv),
                        ..Default::default()
                    }],
                    call_info: Some(SipDialogId {
                        call_id: "c1".into(),
                        from_tag: "f".into(),
                        to_tag: "t".into(),
                        display_text: None,
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn written_documents_validate_against_the_rfc_4575_schema() {
    if !xmllint() {
        return;
    }
    let full = sample();
    validate(&full.to_xml()).unwrap();
    let partial = ConferenceInfo {
        state: State::Partial,
        version: Some(2),
        users: Some(Users {
            state: State::Partial,
            users: vec![User {
                entity: Some("sip:alice@127.0.0.1".into()),
                state: State::Deleted,
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..full.clone()
    };
    validate(
        &ConferenceInfo {
            description: None,
            conference_state: None,
            ..partial
        }
        .to_xml(),
    )
    .unwrap();
    // The validator does refuse what the schema forbids.
    let bad = full
        .to_xml()
        .replace("<status>connected</status>", "<status>online</status>");
    assert!(validate(&bad).is_err());
}
