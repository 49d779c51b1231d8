//! # conference-info: RFC 4575 documents
//!
//! [`ConferenceInfo`] is the RFC 4575 §5 model; [`ConferenceInfo::parse`]
//! reads a document with quick-xml (elements and attributes of other
//! namespaces are kept, not dropped) and [`ConferenceInfo::to_xml`] writes
//! one in the schema's element order. A subscriber (or a cascaded focus)
//! keeps one full document and [`ConferenceInfo::apply`]s each NOTIFY's
//! document to it.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub)]

mod dom;
mod model;
mod partial;
mod read;
mod write;

pub use dom::{Element, NS};
pub use model::*;
pub use partial::ApplyError;

use thiserror::Error;

/// Why a document could not be read.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// Not well-formed XML.
    #[error("XML: {0}")]
    Xml(String),
    /// Well-formed but not a valid conference-info document.
    #[error("invalid conference-info: {0}")]
    Invalid(String),
}

impl ConferenceInfo {
    /// Parses a document.
    pub fn parse(xml: &str) -> Result<Self, Error> {
        read::conference(&dom::parse(xml)?)
    }

    /// Writes the document.
    pub fn to_xml(&self) -> String {
        write::to_xml(self)
    }

    /// A user by entity.
    pub fn user(&self, entity: &str) -> Option<&User> {
        self.users
            .as_ref()?
            .users
            .iter()
            .find(|u| u.entity.as_deref() == Some(entity))
    }
}

#[cfg(test)]
mod tests;
