//! What only a participant being mixed needs: the resampler to 48 kHz and
//! its frame there, and the resampler back and an encoder for a stream of
//! its own (a mix-minus, a tone). Most
//! of a big room only listens, so a room keeps a few kits per codec and
//! lends them to whoever may be mixed or needs an encode of its own; each
//! participant brings one along until the room has enough.

use crate::codec::{CodecError, CodecKind, Encoder, OpusConfig};
use crate::resample::Resampler;

use super::{FRAME, MIX_RATE};

/// Kits a room keeps per codec: more than the talkers it mixes, for the
/// candidates and the listeners with a stream of their own.
pub const KITS_PER_CODEC: usize = 24;

/// Resamplers, a 48 kHz frame and an encoder for one participant.
pub struct TalkerKit {
    pub(crate) in_resampler: Resampler,
    pub(crate) out_resampler: Resampler,
    pub(crate) frame: Box<[i32; FRAME]>,
    /// With the room's Opus settings; a participant with settings of its
    /// own has its own encoder.
    pub(crate) encoder: Encoder,
}

impl TalkerKit {
    /// A kit for participants of `kind` in a room with `room_opus` settings.
    pub fn new(kind: CodecKind, room_opus: &OpusConfig) -> Result<Self, CodecError> {
        let rate = kind.pcm_rate();
        Ok(Self {
            in_resampler: Resampler::new(rate, MIX_RATE).map_err(CodecError::Init)?,
            out_resampler: Resampler::new(MIX_RATE, rate).map_err(CodecError::Init)?,
            frame: Box::new([0; FRAME]),
            encoder: Encoder::new(kind, room_opus)?,
        })
    }
}

/// A room's kits for one codec, not lent out. Its capacity is reserved up
/// front, so lending and returning never allocate.
// Boxed: a kit moves between the pool and participants as a pointer.
#[allow(clippy::vec_box)]
pub(crate) struct KitPool(Vec<Box<TalkerKit>>);

impl KitPool {
    pub(crate) fn new() -> Self {
        Self(Vec::with_capacity(KITS_PER_CODEC))
    }

    pub(crate) fn take(&mut self) -> Option<Box<TalkerKit>> {
        self.0.pop()
    }

    /// Takes a kit back; returns it when the pool is full.
    pub(crate) fn give(&mut self, kit: Box<TalkerKit>) -> Option<Box<TalkerKit>> {
        if self.0.len() < self.0.capacity() {
            self.0.push(kit);
            None
        } else {
            Some(kit)
        }
    }
}
