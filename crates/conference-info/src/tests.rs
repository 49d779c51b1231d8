use super::*;

const FULL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" xmlns:x="urn:example:ext"
                 entity="sip:room@127.0.0.1" state="full" version="1" x:flavour="vanilla">
  <conference-description>
    <display-text>Test room</display-text>
    <subject>RFC 4575 &amp; friends</subject>
    <keywords>alpha beta</keywords>
    <conf-uris><entry><uri>sip:room@127.0.0.1</uri><purpose>participation</purpose></entry></conf-uris>
    <maximum-user-count>10</maximum-user-count>
    <available-media><entry label="1"><type>audio</type><status>sendrecv</status></entry></available-media>
  </conference-description>
  <conference-state><user-count>2</user-count><active>true</active><locked>false</locked><x:queue><x:item n="1"/><x:item n="2"/></x:queue></conference-state>
  <users>
    <user entity="sip:alice@127.0.0.1" state="full">
      <display-text>Alice</display-text>
      <roles><entry>participant</entry></roles>
      <endpoint entity="sip:alice@127.0.0.1:5081">
        <status>connected</status>
        <joining-method>dialed-in</joining-method>
        <joining-info><when>2024-01-01T12:00:00Z</when></joining-info>
        <media id="1"><type>audio</type><src-id>305419896</src-id><status>sendrecv</status></media>
        <call-info><sip><call-id>abc</call-id><from-tag>ft</from-tag><to-tag>tt</to-tag></sip></call-info>
      </endpoint>
      <x:mood>happy</x:mood>
    </user>
    <user entity="sip:bob@127.0.0.1">
      <endpoint entity="sip:bob@127.0.0.1:5082"><status>muted-via-focus</status></endpoint>
    </user>
  </users>
</conference-info>"#;

#[test]
fn parses_every_part_and_keeps_foreign_content() {
    let c = ConferenceInfo::parse(FULL).unwrap();
    assert_eq!(c.entity, "sip:room@127.0.0.1");
    assert_eq!(c.version, Some(1));
    let d = c.description.as_ref().unwrap();
    assert_eq!(d.subject.as_deref(), Some("RFC 4575 & friends"));
    assert_eq!(d.keywords, vec!["alpha", "beta"]);
    assert_eq!(d.maximum_user_count, Some(10));
    assert_eq!(d.available_media[0].status, Some(MediaStatus::SendRecv));
    assert_eq!(c.conference_state.as_ref().unwrap().locked, Some(false));
    let alice = c.user("sip:alice@127.0.0.1").unwrap();
    assert_eq!(alice.roles, vec!["participant"]);
    let ep = &alice.endpoints[0];
    assert_eq!(ep.status, Some(EndpointStatus::Connected));
    assert_eq!(ep.joining_method, Some(JoiningMethod::DialedIn));
    assert_eq!(ep.media[0].src_id.as_deref(), Some("305419896"));
    assert_eq!(ep.call_info.as_ref().unwrap().to_tag, "tt");
    assert_eq!(alice.extensions[0].name, "mood");
    assert_eq!(c.other_attrs[0].1, "flavour");
    assert_eq!(
        c.user("sip:bob@127.0.0.1").unwrap().endpoints[0].status,
        Some(EndpointStatus::MutedViaFocus)
    );
}

#[test]
fn writes_and_reads_back_the_same() {
    let c = ConferenceInfo::parse(FULL).unwrap();
    let xml = c.to_xml();
    let again = ConferenceInfo::parse(&xml).unwrap();
    assert_eq!(again, c);
    assert!(
        xml.contains("urn:example:ext"),
        "foreign namespace kept: {xml}"
    );
    assert!(xml.contains("RFC 4575 &amp; friends"));
    // Nested foreign elements: the namespace is declared once, by the outer one.
    assert!(
        xml.contains(
            r#"<x:queue xmlns:x="urn:example:ext"><x:item n="1"/><x:item n="2"/></x:queue>"#
        ),
        "{xml}"
    );
}

#[test]
fn partial_updates_merge_and_versions_must_follow() {
    let mut state = ConferenceInfo::parse(FULL).unwrap();
    let p2 = r#"<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" entity="sip:room@127.0.0.1" state="partial" version="2">
      <conference-state><user-count>2</user-count></conference-state>
      <users state="partial">
        <user entity="sip:bob@127.0.0.1" state="partial">
          <endpoint entity="sip:bob@127.0.0.1:5082" state="partial"><status>on-hold</status></endpoint>
        </user>
        <user entity="sip:carol@127.0.0.1" state="full"><endpoint entity="sip:carol@127.0.0.1:5083"><status>dialing-out</status></endpoint></user>
      </users></conference-info>"#;
    state.apply(&ConferenceInfo::parse(p2).unwrap()).unwrap();
    assert_eq!(
        state.user("sip:bob@127.0.0.1").unwrap().endpoints[0].status,
        Some(EndpointStatus::OnHold)
    );
    assert!(state.user("sip:carol@127.0.0.1").is_some());
    assert_eq!(
        state.conference_state.as_ref().unwrap().locked,
        Some(false),
        "untouched fields stay"
    );
    let queue = |s: &ConferenceInfo| {
        s.conference_state.as_ref().unwrap().extensions[0]
            .children
            .len()
    };
    assert_eq!(
        queue(&state),
        2,
        "a conference-state without extensions keeps them"
    );
    let p2b = r#"<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" entity="sip:room@127.0.0.1" state="partial" version="3">
      <conference-state><x:queue xmlns:x="urn:example:ext"/></conference-state></conference-info>"#;
    state.apply(&ConferenceInfo::parse(p2b).unwrap()).unwrap();
    assert_eq!(queue(&state), 0, "one with extensions replaces them");
    let p3 = r#"<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" entity="sip:room@127.0.0.1" state="partial" version="4">
      <users state="partial"><user entity="sip:alice@127.0.0.1" state="deleted"/></users></conference-info>"#;
    let p3 = ConferenceInfo::parse(p3).unwrap();
    state.apply(&p3).unwrap();
    assert!(state.user("sip:alice@127.0.0.1").is_none());
    assert_eq!(state.apply(&p3), Err(ApplyError::Stale { have: 4, got: 4 }));
    let mut p6 = p3.clone();
    p6.version = Some(6);
    assert_eq!(state.apply(&p6), Err(ApplyError::Gap { have: 4, got: 6 }));
}

#[test]
fn bad_documents_are_errors_not_panics() {
    for bad in [
        "",
        "<conference-info",
        "<other xmlns=\"urn:x\"/>",
        "<conference-info xmlns=\"urn:ietf:params:xml:ns:conference-info\"/>",
        "<conference-info xmlns=\"urn:ietf:params:xml:ns:conference-info\" entity=\"a\" state=\"odd\"/>",
        "<conference-info xmlns=\"urn:ietf:params:xml:ns:conference-info\" entity=\"a\"><users><user><endpoint><status>online</status></endpoint></user></users></conference-info>",
        "<a:b/>",
        "<x>&bogus;</x>",
    ] {
        assert!(ConferenceInfo::parse(bad).is_err(), "{bad}");
    }
    for i in 0..FULL.len() {
        if FULL.is_char_boundary(i) {
            let _ = ConferenceInfo::parse(&FULL[..i]);
        }
    }
}

/// Found by the conference_info fuzz target: a namespace name with an
/// entity in it was kept raw and escaped again on every print.
#[test]
fn a_namespace_name_with_an_entity_prints_the_same_every_time() {
    let xml = r#"<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" xmlns:x="urn:a&apos;b" entity="sip:r@h" state="full" version="1" x:flavour="vanilla"/>"#;
    let once = ConferenceInfo::parse(xml).unwrap().to_xml();
    let twice = ConferenceInfo::parse(&once).unwrap().to_xml();
    assert_eq!(once, twice);
    assert!(once.contains("urn:a&apos;b"), "{once}");
}
