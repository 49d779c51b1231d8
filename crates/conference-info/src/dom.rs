//! A small namespace-aware XML tree: what quick-xml reads is built into
//! [`Element`]s, which the model is then read from. Elements of other
//! namespaces are kept whole and written back as they came.

use std::fmt::Write as _;

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

use crate::Error;

/// The RFC 4575 namespace.
pub const NS: &str = "urn:ietf:params:xml:ns:conference-info";

/// One XML element with its resolved namespace.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// Namespace URI ("" when unbound).
    pub ns: String,
    /// Local name.
    pub name: String,
    /// Prefix as written (kept so foreign elements print as they came).
    pub prefix: Option<String>,
    /// Attributes: (namespace, local name, prefix, value); xmlns declarations are not kept.
    pub attrs: Vec<(String, String, Option<String>, String)>,
    /// Child elements in order.
    pub children: Vec<Element>,
    /// Concatenated text content.
    pub text: String,
}

impl Element {
    /// Children in the conference-info namespace with this local name.
    pub(crate) fn kids<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children
            .iter()
            .filter(move |c| c.ns == NS && c.name == name)
    }
    pub(crate) fn kid(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.ns == NS && c.name == name)
    }
    pub(crate) fn kid_text(&self, name: &str) -> Option<String> {
        self.kid(name).map(|e| e.text.trim().to_owned())
    }
    /// An unqualified attribute's value.
    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.0.is_empty() && a.1 == name)
            .map(|a| a.3.as_str())
    }
    /// Children from other namespaces (kept as extensions).
    pub(crate) fn foreign(&self) -> Vec<Element> {
        self.children
            .iter()
            .filter(|c| c.ns != NS)
            .cloned()
            .collect()
    }
    /// Attributes from other namespaces.
    pub(crate) fn foreign_attrs(&self) -> Vec<(String, String, Option<String>, String)> {
        self.attrs
            .iter()
            .filter(|a| !a.0.is_empty())
            .cloned()
            .collect()
    }

    /// Writes a foreign element back out, declaring its namespace.
    pub(crate) fn write(&self, out: &mut String) {
        self.write_in(out, None);
    }

    /// Writes it inside a parent that declared `scope` (prefix, namespace):
    /// a child of the same binding does not declare it again.
    fn write_in(&self, out: &mut String, scope: Option<(&Option<String>, &str)>) {
        let qname = match &self.prefix {
            Some(p) => format!("{p}:{}", self.name),
            None => self.name.clone(),
        };
        let _ = write!(out, "<{qname}");
        let declared = scope.is_some_and(|(p, ns)| *p == self.prefix && ns == self.ns);
        match &self.prefix {
            _ if declared => {}
            Some(p) => {
                let _ = write!(out, " xmlns:{p}=\"{}\"", escape(&self.ns));
            }
            None => {
                let _ = write!(out, " xmlns=\"{}\"", escape(&self.ns));
            }
        }
        for (ns, name, prefix, value) in &self.attrs {
            match prefix {
                Some(p) => {
                    let _ = write!(
                        out,
                        " xmlns:{p}=\"{}\" {p}:{name}=\"{}\"",
                        escape(ns),
                        escape(value)
                    );
                }
                None => {
                    let _ = write!(out, " {name}=\"{}\"", escape(value));
                }
            }
        }
        if self.children.is_empty() && self.text.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        out.push_str(&escape(&self.text));
        for c in &self.children {
            c.write_in(out, Some((&self.prefix, &self.ns)));
        }
        let _ = write!(out, "</{qname}>");
    }
}

/// Escapes text and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c => o.push(c),
        }
    }
    o
}

fn resolved(r: &ResolveResult<'_>) -> Result<String, Error> {
    match r {
        // The reader hands the declaration's raw value: entities in it
        // (`&apos;`) are resolved here, as for any other attribute, or the
        // name would be escaped twice when the document is written back.
        ResolveResult::Bound(ns) => {
            quick_xml::escape::unescape(&String::from_utf8_lossy(ns.as_ref()))
                .map(|u| u.into_owned())
                .map_err(|e| Error::Xml(e.to_string()))
        }
        ResolveResult::Unbound => Ok(String::new()),
        ResolveResult::Unknown(p) => Err(Error::Xml(format!(
            "unknown namespace prefix {}",
            String::from_utf8_lossy(p)
        ))),
    }
}

/// Parses a document into its root element.
pub(crate) fn parse(xml: &str) -> Result<Element, Error> {
    let mut reader = NsReader::from_str(xml);
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    loop {
        let (ns, ev) = reader
            .read_resolved_event()
            .map_err(|e| Error::Xml(e.to_string()))?;
        match ev {
            Event::Start(ref s) | Event::Empty(ref s) => {
                let is_empty = matches!(ev, Event::Empty(_));
                let qname = s.name();
                let mut el = Element {
                    ns: resolved(&ns)?,
                    name: String::from_utf8_lossy(qname.local_name().as_ref()).into_owned(),
                    prefix: qname
                        .prefix()
                        .map(|p| String::from_utf8_lossy(p.as_ref()).into_owned()),
                    ..Element::default()
                };
                for a in s.attributes() {
                    let a = a.map_err(|e| Error::Xml(e.to_string()))?;
                    let key = a.key;
                    if key.as_ref() == b"xmlns" || key.as_ref().starts_with(b"xmlns:") {
                        continue;
                    }
                    let (ans, local) = reader.resolve_attribute(key);
                    let value = a
                        .unescape_value()
                        .map_err(|e| Error::Xml(e.to_string()))?
                        .into_owned();
                    el.attrs.push((
                        resolved(&ans)?,
                        String::from_utf8_lossy(local.as_ref()).into_owned(),
                        key.prefix()
                            .map(|p| String::from_utf8_lossy(p.as_ref()).into_owned()),
                        value,
                    ));
                }
                if is_empty {
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(el),
                        None => root = Some(el),
                    }
                } else {
                    if stack.len() > 64 {
                        return Err(Error::Xml("document nested too deeply".into()));
                    }
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let el = stack
                    .pop()
                    .ok_or_else(|| Error::Xml("unbalanced end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                if let Some(cur) = stack.last_mut() {
                    cur.text
                        .push_str(&t.xml_content().map_err(|e| Error::Xml(e.to_string()))?);
                }
            }
            Event::CData(t) => {
                if let Some(cur) = stack.last_mut() {
                    cur.text.push_str(&String::from_utf8_lossy(&t.into_inner()));
                }
            }
            Event::GeneralRef(r) => {
                let c = if r.is_char_ref() {
                    r.resolve_char_ref()
                        .map_err(|e| Error::Xml(e.to_string()))?
                } else {
                    match r.as_ref() {
                        b"lt" => Some('<'),
                        b"gt" => Some('>'),
                        b"amp" => Some('&'),
                        b"quot" => Some('"'),
                        b"apos" => Some('\''),
                        other => {
                            return Err(Error::Xml(format!(
                                "unknown entity &{};",
                                String::from_utf8_lossy(other)
                            )))
                        }
                    }
                };
                if let (Some(cur), Some(c)) = (stack.last_mut(), c) {
                    cur.text.push(c);
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(Error::Xml("document ends inside an element".into()));
    }
    root.ok_or_else(|| Error::Xml("no root element".into()))
}
