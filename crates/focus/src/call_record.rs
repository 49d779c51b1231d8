//! A call detail record per call, for billing and troubleshooting: the
//! core knows the room, the caller, the times, the cause and the codec;
//! the media edge adds what the media server counted for the call's leg
//! (packets, loss, and the jitter the phone reported in RTCP) before the
//! leg closes, and hands the record on to whoever writes them.

use std::time::Instant;

/// One ended call.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    /// The room.
    pub room: String,
    /// Who: the authenticated address of record, else From's.
    pub caller: String,
    /// The dialog's Call-ID.
    pub call_id: String,
    /// True when the focus placed the call (dial-out, REFER).
    pub dialed_out: bool,
    /// When the call was connected.
    pub started: Instant,
    /// When it ended.
    pub ended: Instant,
    /// Why it ended: "remote BYE", "cancelled", or the Reason we sent.
    pub cause: &'static str,
    /// The negotiated codec (None before media was agreed).
    pub codec: Option<&'static str>,
    /// Media was SRTP.
    pub srtp: bool,
    /// What the media server counted (None: the call had no media leg).
    pub media: Option<MediaCounts>,
}

/// A call's media counters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MediaCounts {
    /// RTP packets received from the phone.
    pub packets_in: u64,
    /// RTP packets sent to it.
    pub packets_out: u64,
    /// Packets of the phone's stream that never came.
    pub lost: u64,
    /// The phone's last report of our stream's loss (RTCP fraction lost, %).
    pub peer_loss_percent: f64,
    /// The phone's last report of our stream's jitter (RTCP, RTP units).
    pub peer_jitter: u64,
}
