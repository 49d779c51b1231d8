//! The policy server's view of live calls, provided by whoever runs the
//! focus (the `confab` binary), so this crate does not depend on it. It is
//! typed with the control vocabulary the focus speaks; the protobuf
//! conversions are in [`crate::convert`], once.

pub use control::{
    ControlError, FloorAction, FloorInfo, HandAction, LiveRoom, ParticipantInfo, ParticipantUpdate,
    RecordingInfo, RoomSnapshot,
};

/// Live participants of rooms.
#[tonic::async_trait]
pub trait Live: Send + Sync + 'static {
    /// Every room with calls open, sorted by name.
    async fn rooms(&self) -> Vec<LiveRoom>;
    /// The participants of a room; None when there is no such room.
    async fn participants(&self, room: &str) -> Option<Vec<ParticipantInfo>>;
    /// Participants and floor at one instant, for a new watcher.
    async fn snapshot(&self, room: &str) -> Option<RoomSnapshot>;
    /// Changes a participant; None when there is no such participant.
    async fn update(
        &self,
        room: &str,
        id: &str,
        change: ParticipantUpdate,
    ) -> Option<ParticipantInfo>;
    /// Mutes or unmutes all but moderators; how many changed (None: no room).
    async fn mute_all(&self, room: &str, on: bool) -> Option<usize>;
    /// Removes a participant (BYE); false when there is no such participant.
    async fn remove(&self, room: &str, id: &str) -> bool;
    /// Calls `uri` into `room`; the new participant's id.
    async fn dial_out(&self, room: &str, uri: &str) -> Result<String, ControlError>;
    /// Applies a floor action.
    async fn floor(
        &self,
        room: &str,
        id: &str,
        action: FloorAction,
    ) -> Result<FloorInfo, ControlError>;
    /// A room's floor; None when there is no such room.
    async fn floor_info(&self, room: &str) -> Option<FloorInfo>;
    /// Raises or lowers hands; the raised hands after it, first raised first.
    async fn hand(&self, room: &str, action: HandAction) -> Result<Vec<String>, ControlError>;
    /// A room's raised hands, first raised first; None when there is no such room.
    async fn raised_hands(&self, room: &str) -> Option<Vec<String>>;
    /// Starts recording a live room's mix.
    async fn start_recording(&self, room: &str) -> Result<RecordingInfo, ControlError>;
    /// Stops recording a room; its file is complete shortly after.
    async fn stop_recording(&self, room: &str) -> Result<RecordingInfo, ControlError>;
    /// Every recording, newest first.
    async fn recordings(&self) -> Vec<RecordingInfo>;
    /// A recording and its Ogg Opus file.
    async fn recording(&self, id: &str) -> Option<(RecordingInfo, std::path::PathBuf)>;
    /// Deletes a finished recording (its file and sidecar).
    async fn delete_recording(&self, id: &str) -> Result<(), ControlError>;
}
