//! The RFC 4575 §5 document model. Every element the RFC defines is a
//! field; elements and attributes from other namespaces ride along in
//! `extensions` and `other_attrs` so nothing a peer sent is dropped.

use crate::dom::Element;

/// `state` of a document or list (RFC 4575 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum State {
    /// The whole thing.
    #[default]
    Full,
    /// Only what changed.
    Partial,
    /// Removed.
    Deleted,
}

impl State {
    pub(crate) fn parse(s: Option<&str>) -> Result<Self, crate::Error> {
        match s {
            None | Some("full") => Ok(State::Full),
            Some("partial") => Ok(State::Partial),
            Some("deleted") => Ok(State::Deleted),
            Some(o) => Err(crate::Error::Invalid(format!("state {o:?}"))),
        }
    }
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Full => "full",
            State::Partial => "partial",
            State::Deleted => "deleted",
        }
    }
}

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $(#[doc = $text] $variant),* }
        impl $name {
            /// The XML value.
            pub fn as_str(self) -> &'static str { match self { $($name::$variant => $text),* } }
            pub(crate) fn parse(s: &str) -> Result<Self, crate::Error> {
                match s.trim() { $($text => Ok($name::$variant),)* o => Err(crate::Error::Invalid(format!("{} {o:?}", stringify!($name)))) }
            }
        }
    };
}

string_enum!(
    /// An endpoint's status (RFC 4575 §5.7.2).
    EndpointStatus {
        Pending = "pending", DialingOut = "dialing-out", DialingIn = "dialing-in", Alerting = "alerting", OnHold = "on-hold",
        Connected = "connected", MutedViaFocus = "muted-via-focus", Disconnecting = "disconnecting", Disconnected = "disconnected",
    }
);
string_enum!(
    /// How an endpoint joined (§5.7.3).
    JoiningMethod { DialedIn = "dialed-in", DialedOut = "dialed-out", FocusOwner = "focus-owner" }
);
string_enum!(
    /// How an endpoint left (§5.7.5).
    DisconnectionMethod { Departed = "departed", Booted = "booted", Failed = "failed", Busy = "busy" }
);
string_enum!(
    /// A media stream's direction (§5.7.7).
    MediaStatus { RecvOnly = "recvonly", SendOnly = "sendonly", SendRecv = "sendrecv", Inactive = "inactive" }
);

/// Foreign attributes: (namespace, name, prefix, value).
pub type OtherAttrs = Vec<(String, String, Option<String>, String)>;

/// `execution-type`: when, why and by whom.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Execution {
    /// xs:dateTime.
    pub when: Option<String>,
    /// Free text.
    pub reason: Option<String>,
    /// A URI.
    pub by: Option<String>,
}

/// One URI entry (`uri-type`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UriEntry {
    /// The URI.
    pub uri: String,
    /// Display text.
    pub display_text: Option<String>,
    /// Purpose (`participation`, `streaming`, …).
    pub purpose: Option<String>,
    /// When it last changed.
    pub modified: Option<Execution>,
    /// Foreign elements.
    pub extensions: Vec<Element>,
}

/// A URI list (`uris-type`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Uris {
    /// Full or partial.
    pub state: State,
    /// Entries, keyed by URI for partial updates.
    pub entries: Vec<UriEntry>,
}

/// One available medium of the conference.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Medium {
    /// Required label.
    pub label: String,
    /// Display text.
    pub display_text: Option<String>,
    /// `audio`, `video`, …
    pub media_type: String,
    /// Direction.
    pub status: Option<MediaStatus>,
}

/// `conference-description`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Description {
    /// Display text.
    pub display_text: Option<String>,
    /// Subject.
    pub subject: Option<String>,
    /// Free text.
    pub free_text: Option<String>,
    /// Keywords.
    pub keywords: Vec<String>,
    /// URIs to join the conference.
    pub conf_uris: Option<Uris>,
    /// Auxiliary service URIs.
    pub service_uris: Option<Uris>,
    /// Most users.
    pub maximum_user_count: Option<u32>,
    /// Media types the conference offers.
    pub available_media: Vec<Medium>,
    /// Foreign elements.
    pub extensions: Vec<Element>,
}

/// `host-info`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostInfo {
    /// Display text.
    pub display_text: Option<String>,
    /// A web page.
    pub web_page: Option<String>,
    /// Host URIs.
    pub uris: Option<Uris>,
    /// Foreign elements.
    pub extensions: Vec<Element>,
}

/// `conference-state`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConferenceState {
    /// Number of users.
    pub user_count: Option<u32>,
    /// Active.
    pub active: Option<bool>,
    /// Locked.
    pub locked: Option<bool>,
    /// Foreign elements.
    pub extensions: Vec<Element>,
}

/// The SIP dialog of an endpoint (`sip-dialog-id-type`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SipDialogId {
    /// Display text.
    pub display_text: Option<String>,
    /// Call-ID.
    pub call_id: String,
    /// From tag.
    pub from_tag: String,
    /// To tag.
    pub to_tag: String,
}

/// One media stream of an endpoint (`media-type`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Media {
    /// Required id.
    pub id: String,
    /// Display text.
    pub display_text: Option<String>,
    /// `audio`, …
    pub media_type: Option<String>,
    /// Label (SDP a=label).
    pub label: Option<String>,
    /// SSRC.
    pub src_id: Option<String>,
    /// Direction.
    pub status: Option<MediaStatus>,
    /// Foreign elements.
    pub extensions: Vec<Element>,
}

/// One device of a user (`endpoint-type`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Endpoint {
    /// Its URI (the key for partial updates).
    pub entity: Option<String>,
    /// Full, partial or deleted.
    pub state: State,
    /// Display text.
    pub display_text: Option<String>,
    /// Who referred it in.
    pub referred: Option<Execution>,
    /// Status.
    pub status: Option<EndpointStatus>,
    /// How it joined.
    pub joining_method: Option<JoiningMethod>,
    /// When it joined.
    pub joining_info: Option<Execution>,
    /// How it left.
    pub disconnection_method: Option<DisconnectionMethod>,
    /// When it left.
    pub disconnection_info: Option<Execution>,
    /// Streams.
    pub media: Vec<Media>,
    /// Its SIP dialog.
    pub call_info: Option<SipDialogId>,
    /// Foreign elements.
    pub extensions: Vec<Element>,
    /// Foreign attributes.
    pub other_attrs: OtherAttrs,
}

/// A user (`user-type`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct User {
    /// Its AOR (the key for partial updates).
    pub entity: Option<String>,
    /// Full, partial or deleted.
    pub state: State,
    /// Display text.
    pub display_text: Option<String>,
    /// Other AORs of the user.
    pub associated_aors: Option<Uris>,
    /// Roles (`participant`, `moderator`, …).
    pub roles: Vec<String>,
    /// Languages.
    pub languages: Vec<String>,
    /// A focus this user's endpoints are behind (cascading).
    pub cascaded_focus: Option<String>,
    /// Devices.
    pub endpoints: Vec<Endpoint>,
    /// Foreign elements.
    pub extensions: Vec<Element>,
    /// Foreign attributes.
    pub other_attrs: OtherAttrs,
}

/// `users`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Users {
    /// Full or partial.
    pub state: State,
    /// Users.
    pub users: Vec<User>,
    /// Foreign elements.
    pub extensions: Vec<Element>,
}

/// A conference-info document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConferenceInfo {
    /// The conference URI.
    pub entity: String,
    /// Full, partial or deleted.
    pub state: State,
    /// Version (RFC 4575 §5.1: one more per document sent on a subscription).
    pub version: Option<u32>,
    /// Description.
    pub description: Option<Description>,
    /// Host.
    pub host_info: Option<HostInfo>,
    /// Counters and flags.
    pub conference_state: Option<ConferenceState>,
    /// Users.
    pub users: Option<Users>,
    /// Sidebars by reference.
    pub sidebars_by_ref: Option<Uris>,
    /// Sidebars by value.
    pub sidebars_by_val: Option<Vec<ConferenceInfo>>,
    /// State of the sidebars-by-val list.
    pub sidebars_by_val_state: State,
    /// Foreign elements.
    pub extensions: Vec<Element>,
    /// Foreign attributes.
    pub other_attrs: OtherAttrs,
}
