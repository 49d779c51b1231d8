//! From the model to XML, in the schema's element order.

use std::fmt::Write as _;

use crate::dom::{escape, Element, NS};
use crate::model::*;

struct W(String);

impl W {
    fn text(&mut self, name: &str, v: &Option<String>) {
        if let Some(v) = v {
            let _ = write!(self.0, "<{name}>{}</{name}>", escape(v));
        }
    }
    fn raw(&mut self, name: &str, v: impl std::fmt::Display) {
        let _ = write!(self.0, "<{name}>{v}</{name}>");
    }
    fn ext(&mut self, e: &[Element]) {
        for x in e {
            x.write(&mut self.0);
        }
    }
    fn other_attrs(&mut self, attrs: &OtherAttrs) {
        for (ns, name, prefix, value) in attrs {
            let p = prefix.clone().unwrap_or_else(|| "x".into());
            let _ = write!(
                self.0,
                " xmlns:{p}=\"{}\" {p}:{name}=\"{}\"",
                escape(ns),
                escape(value)
            );
        }
    }
    fn state_attr(&mut self, s: State) {
        if s != State::Full {
            let _ = write!(self.0, " state=\"{}\"", s.as_str());
        }
    }
    fn execution(&mut self, name: &str, e: &Option<Execution>) {
        if let Some(e) = e {
            let _ = write!(self.0, "<{name}>");
            self.text("when", &e.when);
            self.text("reason", &e.reason);
            self.text("by", &e.by);
            let _ = write!(self.0, "</{name}>");
        }
    }
    fn uris(&mut self, name: &str, u: &Option<Uris>) {
        let Some(u) = u else { return };
        let _ = write!(self.0, "<{name}");
        self.state_attr(u.state);
        self.0.push('>');
        for en in &u.entries {
            self.0.push_str("<entry>");
            self.raw("uri", escape(&en.uri));
            self.text("display-text", &en.display_text);
            self.text("purpose", &en.purpose);
            self.execution("modified", &en.modified);
            self.ext(&en.extensions);
            self.0.push_str("</entry>");
        }
        let _ = write!(self.0, "</{name}>");
    }
    fn media(&mut self, m: &Media) {
        let _ = write!(self.0, "<media id=\"{}\">", escape(&m.id));
        self.text("display-text", &m.display_text);
        self.text("type", &m.media_type);
        self.text("label", &m.label);
        self.text("src-id", &m.src_id);
        if let Some(s) = m.status {
            self.raw("status", s.as_str());
        }
        self.ext(&m.extensions);
        self.0.push_str("</media>");
    }
    fn endpoint(&mut self, e: &Endpoint) {
        self.0.push_str("<endpoint");
        if let Some(en) = &e.entity {
            let _ = write!(self.0, " entity=\"{}\"", escape(en));
        }
        self.state_attr(e.state);
        self.other_attrs(&e.other_attrs);
        self.0.push('>');
        self.text("display-text", &e.display_text);
        self.execution("referred", &e.referred);
        if let Some(s) = e.status {
            self.raw("status", s.as_str());
        }
        if let Some(j) = e.joining_method {
            self.raw("joining-method", j.as_str());
        }
        self.execution("joining-info", &e.joining_info);
        if let Some(d) = e.disconnection_method {
            self.raw("disconnection-method", d.as_str());
        }
        self.execution("disconnection-info", &e.disconnection_info);
        for m in &e.media {
            self.media(m);
        }
        if let Some(c) = &e.call_info {
            self.0.push_str("<call-info><sip>");
            self.text("display-text", &c.display_text);
            self.raw("call-id", escape(&c.call_id));
            self.raw("from-tag", escape(&c.from_tag));
            self.raw("to-tag", escape(&c.to_tag));
            self.0.push_str("</sip></call-info>");
        }
        self.ext(&e.extensions);
        self.0.push_str("</endpoint>");
    }
    fn user(&mut self, u: &User) {
        self.0.push_str("<user");
        if let Some(en) = &u.entity {
            let _ = write!(self.0, " entity=\"{}\"", escape(en));
        }
        self.state_attr(u.state);
        self.other_attrs(&u.other_attrs);
        self.0.push('>');
        self.text("display-text", &u.display_text);
        self.uris("associated-aors", &u.associated_aors);
        if !u.roles.is_empty() {
            self.0.push_str("<roles>");
            for r in &u.roles {
                self.raw("entry", escape(r));
            }
            self.0.push_str("</roles>");
        }
        if !u.languages.is_empty() {
            self.raw("languages", escape(&u.languages.join(" ")));
        }
        self.text("cascaded-focus", &u.cascaded_focus);
        for e in &u.endpoints {
            self.endpoint(e);
        }
        self.ext(&u.extensions);
        self.0.push_str("</user>");
    }
    fn conference(&mut self, c: &ConferenceInfo, element: &str, root: bool) {
        let _ = write!(self.0, "<{element}");
        if root {
            let _ = write!(self.0, " xmlns=\"{NS}\"");
        }
        let _ = write!(
            self.0,
            " entity=\"{}\" state=\"{}\"",
            escape(&c.entity),
            c.state.as_str()
        );
        if let Some(v) = c.version {
            let _ = write!(self.0, " version=\"{v}\"");
        }
        self.other_attrs(&c.other_attrs);
        self.0.push('>');
        if let Some(d) = &c.description {
            self.0.push_str("<conference-description>");
            self.text("display-text", &d.display_text);
            self.text("subject", &d.subject);
            self.text("free-text", &d.free_text);
            if !d.keywords.is_empty() {
                self.raw("keywords", escape(&d.keywords.join(" ")));
            }
            self.uris("conf-uris", &d.conf_uris);
            self.uris("service-uris", &d.service_uris);
            if let Some(m) = d.maximum_user_count {
                self.raw("maximum-user-count", m);
            }
            if !d.available_media.is_empty() {
                self.0.push_str("<available-media>");
                for m in &d.available_media {
                    let _ = write!(self.0, "<entry label=\"{}\">", escape(&m.label));
                    self.text("display-text", &m.display_text);
                    self.raw("type", escape(&m.media_type));
                    if let Some(s) = m.status {
                        self.raw("status", s.as_str());
                    }
                    self.0.push_str("</entry>");
                }
                self.0.push_str("</available-media>");
            }
            self.ext(&d.extensions);
            self.0.push_str("</conference-description>");
        }
        if let Some(h) = &c.host_info {
            self.0.push_str("<host-info>");
            self.text("display-text", &h.display_text);
            self.text("web-page", &h.web_page);
            self.uris("uris", &h.uris);
            self.ext(&h.extensions);
            self.0.push_str("</host-info>");
        }
        if let Some(s) = &c.conference_state {
            self.0.push_str("<conference-state>");
            if let Some(n) = s.user_count {
                self.raw("user-count", n);
            }
            if let Some(a) = s.active {
                self.raw("active", a);
            }
            if let Some(l) = s.locked {
                self.raw("locked", l);
            }
            self.ext(&s.extensions);
            self.0.push_str("</conference-state>");
        }
        if let Some(u) = &c.users {
            self.0.push_str("<users");
            self.state_attr(u.state);
            self.0.push('>');
            for user in &u.users {
                self.user(user);
            }
            self.ext(&u.extensions);
            self.0.push_str("</users>");
        }
        self.uris("sidebars-by-ref", &c.sidebars_by_ref);
        if let Some(s) = &c.sidebars_by_val {
            self.0.push_str("<sidebars-by-val");
            self.state_attr(c.sidebars_by_val_state);
            self.0.push('>');
            for e in s {
                self.conference(e, "entry", false);
            }
            self.0.push_str("</sidebars-by-val>");
        }
        self.ext(&c.extensions);
        let _ = write!(self.0, "</{element}>");
    }
}

pub(crate) fn to_xml(c: &ConferenceInfo) -> String {
    let mut w = W(String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"));
    w.conference(c, "conference-info", true);
    w.0
}
