//! A call: one participant's dialog with the focus (RFC 3261 §12) and its
//! media leg.

use std::time::Instant;

use crate::media::{LegId, PortToken};
use sip::dialog::Dialog;
use sip::transaction::TxId;
use sip::Request;

pub(crate) use sip::dialog::DialogId;

/// Where the call is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallState {
    /// INVITE received, not answered yet (CANCEL applies).
    Ringing,
    /// 200 sent, waiting for ACK.
    Answered,
    /// ACK received.
    Confirmed,
}

/// Session timer state (RFC 4028).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionTimer {
    pub(crate) interval: u32,
    pub(crate) we_refresh: bool,
    /// When we refresh (we_refresh) or give up (else).
    pub(crate) due: Instant,
}

pub(crate) struct Call {
    pub(crate) room: String,
    pub(crate) leg: Option<LegId>,
    pub(crate) state: CallState,
    pub(crate) invite: Request,
    pub(crate) invite_tx: TxId,
    /// The dialog: parties, CSeqs, target, route set, where requests go.
    pub(crate) dialog: Dialog,
    pub(crate) sdp_session: u64,
    pub(crate) sdp_version: u64,
    pub(crate) codec: Option<&'static str>,
    /// The reservation behind an offer we sent in a 2xx, answered in the ACK.
    pub(crate) awaiting_ack_answer: Option<PortToken>,
    /// Our RTP address as written in our SDP.
    pub(crate) local_media: std::net::SocketAddr,
    /// The 200 held back by `answer_delay`, until its timer sends it.
    pub(crate) pending_answer: Option<sip::Response>,
    pub(crate) timer: Option<SessionTimer>,
    pub(crate) rtp_seen: u64,
    pub(crate) rtp_changed: Instant,
    /// When the call was set up (for its call detail record).
    pub(crate) started: Instant,
    pub(crate) on_hold: bool,
    pub(crate) self_muted: bool,
    /// Muted by a moderator (policy server); shown as muted-via-focus.
    pub(crate) muted_by_focus: bool,
    /// The focus called this participant (REFER, dial-out).
    pub(crate) dialed_out: bool,
    /// Who asked for it (Referred-By), for the endpoint's `referred` element.
    pub(crate) referred_by: Option<String>,
    pub(crate) volume_db: f32,
    pub(crate) dtmf_star: bool,
    /// What moderators and the room's policy decided for this participant.
    pub(crate) control: Control,
    /// The address of record the caller authenticated as (None: From's,
    /// taken at its word).
    pub(crate) identity: Option<String>,
    /// SRTP: our SDES key and the remote's, as answered.
    pub(crate) srtp: Option<(sdp::Crypto, sdp::Crypto)>,
}

impl Call {
    /// Who the participant is: the authenticated address of record, else From's.
    pub(crate) fn aor(&self) -> String {
        match &self.identity {
            Some(a) => a.clone(),
            None => crate::conference_doc::aor(&self.dialog.remote_party),
        }
    }
}

pub(crate) use control::Role;

/// A caller still entering the room's PIN with DTMF: not mixed, hears
/// only prompts.
#[derive(Debug, Clone)]
pub(crate) struct PinEntry {
    pub(crate) digits: String,
    pub(crate) failures: u8,
    pub(crate) deadline: Instant,
}

/// What the mixer was last told of a leg's mute, deaf and gains (None:
/// not told yet), so that only changes are sent.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct LegApplied {
    pub(crate) mute: Option<bool>,
    pub(crate) deaf: Option<bool>,
    pub(crate) gain: Option<(f32, f32)>,
}

/// Moderator and policy state of a call, beyond its signalling.
#[derive(Debug, Clone, Default)]
pub(crate) struct Control {
    pub(crate) role: Role,
    pub(crate) deaf: bool,
    pub(crate) input_gain_db: f32,
    pub(crate) pin: Option<PinEntry>,
    /// The status watchers were last told (None: not announced yet).
    pub(crate) announced: Option<String>,
    /// Waiting for a moderator before the room starts.
    pub(crate) waiting: bool,
    /// What the mixer was last told for the leg.
    pub(crate) applied: LegApplied,
}

impl Control {
    /// Not in the room yet (PIN prompt or waiting for a moderator): not
    /// mixed, and hears only its own tones.
    pub(crate) fn in_lobby(&self) -> bool {
        self.pin.is_some() || self.waiting
    }
}
