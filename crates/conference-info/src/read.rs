//! From the XML tree to the model.

use crate::dom::{Element, NS};
use crate::model::*;
use crate::Error;

fn parse_num<T: std::str::FromStr>(s: Option<String>, what: &str) -> Result<Option<T>, Error> {
    s.map(|v| {
        v.parse()
            .map_err(|_| Error::Invalid(format!("{what} {v:?}")))
    })
    .transpose()
}

fn parse_bool(s: Option<String>, what: &str) -> Result<Option<bool>, Error> {
    match s.as_deref() {
        None => Ok(None),
        Some("true") | Some("1") => Ok(Some(true)),
        Some("false") | Some("0") => Ok(Some(false)),
        Some(o) => Err(Error::Invalid(format!("{what} {o:?}"))),
    }
}

fn execution(e: Option<&Element>) -> Option<Execution> {
    e.map(|e| Execution {
        when: e.kid_text("when"),
        reason: e.kid_text("reason"),
        by: e.kid_text("by"),
    })
}

fn uris(e: Option<&Element>) -> Result<Option<Uris>, Error> {
    let Some(e) = e else { return Ok(None) };
    let entries = e
        .kids("entry")
        .map(|en| {
            Ok(UriEntry {
                uri: en
                    .kid_text("uri")
                    .ok_or_else(|| Error::Invalid("URI entry without <uri>".into()))?,
                display_text: en.kid_text("display-text"),
                purpose: en.kid_text("purpose"),
                modified: execution(en.kid("modified")),
                extensions: en.foreign(),
            })
        })
        .collect::<Result<_, Error>>()?;
    Ok(Some(Uris {
        state: State::parse(e.attr("state"))?,
        entries,
    }))
}

fn media(e: &Element) -> Result<Media, Error> {
    Ok(Media {
        id: e
            .attr("id")
            .ok_or_else(|| Error::Invalid("media without id".into()))?
            .to_owned(),
        display_text: e.kid_text("display-text"),
        media_type: e.kid_text("type"),
        label: e.kid_text("label"),
        src_id: e.kid_text("src-id"),
        status: e
            .kid_text("status")
            .map(|s| MediaStatus::parse(&s))
            .transpose()?,
        extensions: e.foreign(),
    })
}

fn endpoint(e: &Element) -> Result<Endpoint, Error> {
    let call_info = e
        .kid("call-info")
        .and_then(|c| c.kid("sip"))
        .map(|sip| SipDialogId {
            display_text: sip.kid_text("display-text"),
            call_id: sip.kid_text("call-id").unwrap_or_default(),
            from_tag: sip.kid_text("from-tag").unwrap_or_default(),
            to_tag: sip.kid_text("to-tag").unwrap_or_default(),
        });
    Ok(Endpoint {
        entity: e.attr("entity").map(str::to_owned),
        state: State::parse(e.attr("state"))?,
        display_text: e.kid_text("display-text"),
        referred: execution(e.kid("referred")),
        status: e
            .kid_text("status")
            .map(|s| EndpointStatus::parse(&s))
            .transpose()?,
        joining_method: e
            .kid_text("joining-method")
            .map(|s| JoiningMethod::parse(&s))
            .transpose()?,
        joining_info: execution(e.kid("joining-info")),
        disconnection_method: e
            .kid_text("disconnection-method")
            .map(|s| DisconnectionMethod::parse(&s))
            .transpose()?,
        disconnection_info: execution(e.kid("disconnection-info")),
        media: e.kids("media").map(media).collect::<Result<_, _>>()?,
        call_info,
        extensions: e.foreign(),
        other_attrs: e.foreign_attrs(),
    })
}

fn user(e: &Element) -> Result<User, Error> {
    Ok(User {
        entity: e.attr("entity").map(str::to_owned),
        state: State::parse(e.attr("state"))?,
        display_text: e.kid_text("display-text"),
        associated_aors: uris(e.kid("associated-aors"))?,
        roles: e
            .kid("roles")
            .map(|r| r.kids("entry").map(|x| x.text.trim().to_owned()).collect())
            .unwrap_or_default(),
        languages: e
            .kid_text("languages")
            .map(|l| l.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default(),
        cascaded_focus: e.kid_text("cascaded-focus"),
        endpoints: e.kids("endpoint").map(endpoint).collect::<Result<_, _>>()?,
        extensions: e.foreign(),
        other_attrs: e.foreign_attrs(),
    })
}

/// Reads a `conference-info` element.
pub(crate) fn conference(e: &Element) -> Result<ConferenceInfo, Error> {
    if e.ns != NS || (e.name != "conference-info" && e.name != "entry") {
        return Err(Error::Invalid(format!(
            "root element {{{}}}{} is not conference-info",
            e.ns, e.name
        )));
    }
    let description = match e.kid("conference-description") {
        Some(d) => Some(Description {
            display_text: d.kid_text("display-text"),
            subject: d.kid_text("subject"),
            free_text: d.kid_text("free-text"),
            keywords: d
                .kid_text("keywords")
                .map(|k| k.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default(),
            conf_uris: uris(d.kid("conf-uris"))?,
            service_uris: uris(d.kid("service-uris"))?,
            maximum_user_count: parse_num(d.kid_text("maximum-user-count"), "maximum-user-count")?,
            available_media: d
                .kid("available-media")
                .map(|am| {
                    am.kids("entry")
                        .map(|m| {
                            Ok(Medium {
                                label: m.attr("label").unwrap_or_default().to_owned(),
                                display_text: m.kid_text("display-text"),
                                media_type: m.kid_text("type").unwrap_or_default(),
                                status: m
                                    .kid_text("status")
                                    .map(|s| MediaStatus::parse(&s))
                                    .transpose()?,
                            })
                        })
                        .collect::<Result<Vec<_>, Error>>()
                })
                .transpose()?
                .unwrap_or_default(),
            extensions: d.foreign(),
        }),
        None => None,
    };
    let host_info = match e.kid("host-info") {
        Some(h) => Some(HostInfo {
            display_text: h.kid_text("display-text"),
            web_page: h.kid_text("web-page"),
            uris: uris(h.kid("uris"))?,
            extensions: h.foreign(),
        }),
        None => None,
    };
    let conference_state = match e.kid("conference-state") {
        Some(s) => Some(ConferenceState {
            user_count: parse_num(s.kid_text("user-count"), "user-count")?,
            active: parse_bool(s.kid_text("active"), "active")?,
            locked: parse_bool(s.kid_text("locked"), "locked")?,
            extensions: s.foreign(),
        }),
        None => None,
    };
    let users = match e.kid("users") {
        Some(u) => Some(Users {
            state: State::parse(u.attr("state"))?,
            users: u.kids("user").map(user).collect::<Result<_, _>>()?,
            extensions: u.foreign(),
        }),
        None => None,
    };
    let (sidebars_by_val, sidebars_by_val_state) = match e.kid("sidebars-by-val") {
        Some(s) => (
            Some(s.kids("entry").map(conference).collect::<Result<_, _>>()?),
            State::parse(s.attr("state"))?,
        ),
        None => (None, State::Full),
    };
    Ok(ConferenceInfo {
        entity: e
            .attr("entity")
            .ok_or_else(|| Error::Invalid("conference-info without entity".into()))?
            .to_owned(),
        state: State::parse(e.attr("state"))?,
        version: parse_num(e.attr("version").map(str::to_owned), "version")?,
        description,
        host_info,
        conference_state,
        users,
        sidebars_by_ref: uris(e.kid("sidebars-by-ref"))?,
        sidebars_by_val,
        sidebars_by_val_state,
        extensions: e.foreign(),
        other_attrs: e.foreign_attrs(),
    })
}
