//! The policy server's view of live calls, provided by whoever runs the
//! focus (the `confab` binary), so this crate does not depend on it.

use tonic::Status;

use crate::pb;

/// A moderator's change to a participant; None leaves a field alone.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ParticipantChange {
    /// Muted-via-focus.
    pub muted: Option<bool>,
    /// Hears silence.
    pub deaf: Option<bool>,
    /// Role.
    pub role: Option<pb::ParticipantRole>,
    /// dB.
    pub input_gain_db: Option<f32>,
    /// dB.
    pub output_gain_db: Option<f32>,
}

/// A floor action (BFCP's request, release, grant, deny).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloorOp {
    /// The participant asks for the floor.
    Request,
    /// The participant gives it back or withdraws its request.
    Release,
    /// A moderator gives it the floor.
    Grant,
    /// A moderator refuses or revokes it.
    Deny,
}

/// A room with calls open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveRoom {
    /// Room name.
    pub name: String,
    /// Its calls.
    pub participants: u32,
}

/// Live participants of rooms.
#[tonic::async_trait]
pub trait Live: Send + Sync + 'static {
    /// Every room with calls open, sorted by name.
    async fn rooms(&self) -> Vec<LiveRoom>;
    /// The participants of a room; None when there is no such room.
    async fn participants(&self, room: &str) -> Option<Vec<pb::Participant>>;
    /// Participants and floor at one instant, for a new watcher.
    async fn snapshot(&self, room: &str) -> Option<(Vec<pb::Participant>, pb::Floor)>;
    /// Changes a participant; None when there is no such participant.
    async fn update(
        &self,
        room: &str,
        id: &str,
        change: ParticipantChange,
    ) -> Option<pb::Participant>;
    /// Mutes or unmutes all but moderators; how many changed (None: no room).
    async fn mute_all(&self, room: &str, on: bool) -> Option<u32>;
    /// Removes a participant (BYE); false when there is no such participant.
    async fn remove(&self, room: &str, id: &str) -> bool;
    /// Calls `uri` into `room`; the new participant's id.
    async fn dial_out(&self, room: &str, uri: &str) -> Result<String, Status>;
    /// Applies a floor action.
    async fn floor(&self, room: &str, id: &str, op: FloorOp) -> Result<pb::Floor, Status>;
    /// A room's floor; None when there is no such room.
    async fn floor_info(&self, room: &str) -> Option<pb::Floor>;
}
