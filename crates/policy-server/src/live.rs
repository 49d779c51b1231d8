//! The policy server's view of live calls, provided by whoever runs the
//! focus (the `confab` binary), so this crate does not depend on it.

use crate::pb;

/// Live participants of rooms.
#[tonic::async_trait]
pub trait Live: Send + Sync + 'static {
    /// The participants of a room; None when there is no such room.
    async fn participants(&self, room: &str) -> Option<Vec<pb::Participant>>;
    /// Mutes or unmutes (muted-via-focus); None when there is no such participant.
    async fn set_muted(&self, room: &str, id: &str, on: bool) -> Option<pb::Participant>;
    /// Removes a participant (BYE); false when there is no such participant.
    async fn remove(&self, room: &str, id: &str) -> bool;
}
