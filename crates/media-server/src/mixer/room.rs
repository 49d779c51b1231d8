//! A room: selects the N loudest talkers (with hysteresis), mixes them in
//! i32, and sends every receiver its audio: a talker gets its own mix-minus
//! from its own encoder; every other receiver of a codec shares one
//! encoding of the full mix (encode once per codec group, not per listener).

use crate::codec::{CodecKind, Encoder, OpusConfig};
use crate::resample::Resampler;

use super::control::{MixerEvent, RoomId, RoomSettings, MAX_TALKERS};
use super::participant::{Participant, PACKET_BUF};
use super::talker_kit::KitPool;
use super::{FRAME, MIX_RATE};

/// The rate a room whose every participant is at 8 kHz (G.711) mixes at:
/// its talkers need no resampling up, its listeners none down.
const NARROW_RATE: u32 = 8000;
const NARROW_FRAME: usize = (NARROW_RATE / 50) as usize;

/// A talker already selected keeps its place unless a newcomer is louder by this much.
const HYSTERESIS_DB: f32 = 6.0;

/// One shared encoder per codec: the full mix, and silence for deaf
/// receivers and lone talkers.
struct Group {
    kind: CodecKind,
    mix: Encoder,
    silence: Silence,
    resampler: Resampler,
    mix_len: Option<usize>,
    mix_payload: Box<[u8; PACKET_BUF]>,
    /// Kits not lent out, for this codec's participants.
    kits: KitPool,
}

/// The encoding of silence. An encoder fed only zeros settles into a short
/// cycle of packets (G.711: one; libopus: two pairs, as CELT's noise seed
/// turns); once the last packets have repeated with a period of up to
/// [`MAX_PERIOD`] three times over, the cycle is replayed without encoding.
struct Silence {
    encoder: Encoder,
    /// The last packets, by encode count modulo [`HISTORY`].
    history: Box<[[u8; SILENCE_SLOT]; HISTORY]>,
    lens: [usize; HISTORY],
    /// Packets encoded.
    encoded: usize,
    /// Once settled: the cycle's period, and packets replayed.
    cycle: Option<(usize, usize)>,
    /// This tick's packet, or None when not made yet.
    current: Option<SilencePacket>,
    /// Scratch for a packet longer than a slot (never cached).
    long: Box<[u8; PACKET_BUF]>,
    long_len: usize,
}

/// Where a tick's silence packet is.
#[derive(Clone, Copy)]
enum SilencePacket {
    /// In `history`, at this slot.
    Kept(usize),
    /// In `long`: too long to keep.
    Long,
}

const MAX_PERIOD: usize = 4;
const HISTORY: usize = 3 * MAX_PERIOD;
/// Silence packets are short; a longer one (CBR at a high rate) is never cached.
const SILENCE_SLOT: usize = 256;

impl Silence {
    fn new(encoder: Encoder) -> Self {
        Self {
            encoder,
            history: Box::new([[0; SILENCE_SLOT]; HISTORY]),
            lens: [0; HISTORY],
            encoded: 0,
            cycle: None,
            current: None,
            long: Box::new([0; PACKET_BUF]),
            long_len: 0,
        }
    }

    /// A new tick: the next packet is made when first asked for.
    fn next_tick(&mut self) {
        self.current = None;
    }

    /// This tick's silence packet; `pcm` is scratch for the zeros.
    fn packet(&mut self, pcm: &mut [i16], stats: &mut RoomStats) -> &[u8] {
        let packet = match self.current {
            Some(packet) => packet,
            None => {
                let packet = self.make(pcm, stats);
                self.current = Some(packet);
                packet
            }
        };
        match packet {
            SilencePacket::Kept(slot) => &self.history[slot][..self.lens[slot]],
            SilencePacket::Long => &self.long[..self.long_len],
        }
    }

    /// Replays the settled cycle, or encodes.
    fn make(&mut self, pcm: &mut [i16], stats: &mut RoomStats) -> SilencePacket {
        if let Some((period, replayed)) = self.cycle.as_mut() {
            let slot = (self.encoded - *period + *replayed % *period) % HISTORY;
            *replayed += 1;
            return SilencePacket::Kept(slot);
        }
        pcm.fill(0);
        stats.group_encodes += 1;
        let n = self.encoder.encode(pcm, &mut self.long[..]).unwrap_or(0);
        if n > SILENCE_SLOT {
            // Nothing to cache; start over once packets are short again.
            self.encoded = 0;
            self.long_len = n;
            return SilencePacket::Long;
        }
        let slot = self.encoded % HISTORY;
        self.history[slot][..n].copy_from_slice(&self.long[..n]);
        self.lens[slot] = n;
        self.encoded += 1;
        self.cycle = (1..=MAX_PERIOD).find(|&p| self.repeats(p)).map(|p| (p, 0));
        SilencePacket::Kept(slot)
    }

    /// True when the last 3·`period` packets are one cycle of `period` thrice.
    fn repeats(&self, period: usize) -> bool {
        let span = 3 * period;
        self.encoded >= span
            && (0..span - period).all(|k| {
                let a = (self.encoded - 1 - k) % HISTORY;
                let b = (self.encoded - 1 - k - period) % HISTORY;
                self.history[a][..self.lens[a]] == self.history[b][..self.lens[b]]
            })
    }
}

/// A codec's shared encoders for a room, built on the control side.
pub struct CodecGroup(Group);

impl CodecGroup {
    /// The shared encoders of `kind`, with the room's Opus settings.
    pub fn new(kind: CodecKind, opus: &OpusConfig) -> Result<Self, crate::codec::CodecError> {
        Group::new(kind, opus).map(Self)
    }
}

impl Group {
    fn new(kind: CodecKind, opus: &OpusConfig) -> Result<Self, crate::codec::CodecError> {
        Ok(Self {
            kind,
            mix: Encoder::new(kind, opus)?,
            silence: Silence::new(Encoder::new(kind, opus)?),
            resampler: Resampler::new(super::MIX_RATE, kind.pcm_rate())
                .map_err(crate::codec::CodecError::Init)?,
            mix_len: None,
            mix_payload: Box::new([0; PACKET_BUF]),
            kits: KitPool::new(),
        })
    }
}

impl Group {
    /// This tick's encoding of the full mix, made when first asked for;
    /// its length in `mix_payload`.
    fn full_mix(
        &mut self,
        mix: &[i32; FRAME],
        limited: &mut [i16; FRAME],
        resampled: &mut [i32; FRAME],
        pcm: &mut [i16; FRAME],
        stats: &mut RoomStats,
        narrow: bool,
    ) -> usize {
        if let Some(len) = self.mix_len {
            return len;
        }
        let frame_len = (self.kind.pcm_rate() / 50) as usize;
        to_codec_pcm(
            &mix[..],
            1.0,
            (!narrow).then_some(&mut self.resampler),
            limited,
            resampled,
            &mut pcm[..frame_len],
        );
        let len = self
            .mix
            .encode(&pcm[..frame_len], &mut self.mix_payload[..])
            .unwrap_or(0);
        self.mix_len = Some(len);
        stats.group_encodes += 1;
        len
    }
}

/// Counters for a room, read by benches and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RoomStats {
    /// Shared (group) encodes performed.
    pub group_encodes: u64,
    /// Individual (mix-minus or gain) encodes performed.
    pub own_encodes: u64,
    /// Packets sent.
    pub packets_sent: u64,
}

/// A room.
pub struct Room {
    pub(crate) id: RoomId,
    pub(crate) settings: RoomSettings,
    // Boxed on the control side; the tick moves only the pointer in and out.
    #[allow(clippy::vec_box)]
    pub(crate) participants: Vec<Box<Participant>>,
    /// The shared encoders, by codec; a codec's is added with its first
    /// participant ([`Command::AddCodec`]), so a room holds only what its
    /// participants use.
    groups: [Option<Box<Group>>; 4],
    mix: Box<[i32; FRAME]>,
    limited: Box<[i16; FRAME]>,
    resampled: Box<[i32; FRAME]>,
    pcm: Box<[i16; FRAME]>,
    /// A receiver's own mix (mix-minus), built before it is encoded.
    scratch: Box<[i32; FRAME]>,
    packet: Box<[u8; PACKET_BUF]>,
    talkers: [usize; MAX_TALKERS],
    talker_count: usize,
    pub(crate) stats: RoomStats,
    /// Tones everyone in the room hears (not a talker, not in CSRCs).
    pub(crate) tone: super::tone_player::TonePlayer,
    /// Where the full mix goes when the room is recorded.
    pub(crate) recorder: Option<Box<crate::recording::RecordTap>>,
    /// Participants whose codec is not at 8 kHz.
    wide_participants: usize,
    /// This tick mixes at 8 kHz (see [`NARROW_RATE`]).
    narrow: bool,
}

impl Room {
    /// A room with space reserved for `settings.capacity` participants,
    /// ready for every codec (tests and benches; the media server adds
    /// each codec's shared encoders with its first participant).
    pub fn new(id: RoomId, settings: RoomSettings) -> Result<Self, crate::codec::CodecError> {
        let mut room = Self::without_codecs(id, settings);
        for kind in CodecKind::ALL {
            let group = CodecGroup::new(kind, &room.settings.opus)?;
            room.add_codec(Box::new(group));
        }
        Ok(room)
    }

    /// A room with space reserved for `settings.capacity` participants and
    /// no codec yet: see [`Command::AddCodec`].
    pub fn without_codecs(id: RoomId, settings: RoomSettings) -> Self {
        Self {
            id,
            participants: Vec::with_capacity(settings.capacity),
            settings,
            groups: Default::default(),
            mix: Box::new([0; FRAME]),
            limited: Box::new([0; FRAME]),
            resampled: Box::new([0; FRAME]),
            pcm: Box::new([0; FRAME]),
            scratch: Box::new([0; FRAME]),
            packet: Box::new([0; PACKET_BUF]),
            talkers: [0; MAX_TALKERS],
            talker_count: 0,
            stats: RoomStats::default(),
            tone: Default::default(),
            recorder: None,
            wide_participants: 0,
            narrow: false,
        }
    }

    /// Adds a codec's shared encoders; an encoder already there is
    /// returned (to be freed off the mixer thread).
    pub(crate) fn add_codec(&mut self, group: Box<CodecGroup>) -> Option<Box<CodecGroup>> {
        let slot = &mut self.groups[group.0.kind.index()];
        if slot.is_some() {
            return Some(group);
        }
        let CodecGroup(g) = *group;
        *slot = Some(Box::new(g));
        None
    }

    /// The room's id.
    pub fn id(&self) -> RoomId {
        self.id
    }

    /// Counters.
    pub fn stats(&self) -> RoomStats {
        self.stats
    }

    /// Takes a participant in (the caller checked capacity), and the kit it brings.
    pub(crate) fn admit(&mut self, mut p: Box<Participant>) {
        // Without a group for its codec yet, or into a full pool, it keeps
        // the kit for itself.
        if let Some(g) = self.groups[p.kind().index()].as_mut() {
            if let Some(kit) = p.spare.take() {
                p.spare = g.kits.give(kit);
            }
        }
        if p.kind().pcm_rate() != NARROW_RATE {
            self.wide_participants += 1;
        }
        self.participants.push(p);
    }

    /// Lets participant `pos` go; a kit it holds stays in the room.
    pub(crate) fn dismiss(&mut self, pos: usize) -> Box<Participant> {
        let mut p = self.participants.swap_remove(pos);
        if let Some(g) = self.groups[p.kind().index()].as_mut() {
            p.return_kit(&mut g.kits);
        }
        if p.kind().pcm_rate() != NARROW_RATE {
            self.wide_participants -= 1;
        }
        p
    }

    /// One 20 ms tick.
    pub(crate) fn tick(&mut self, emit: &mut impl FnMut(MixerEvent)) {
        let room = self.id;
        let threshold = self.settings.talk_threshold_dbov;
        // A recording is Opus at 48 kHz: it needs the wide mix.
        let narrow = self.wide_participants == 0 && self.recorder.is_none();
        if narrow != self.narrow {
            self.narrow = narrow;
            // The output filters' history is at the other rate, or stale.
            for p in self.participants.iter_mut() {
                if let Some(kit) = p.kit.as_deref_mut() {
                    kit.out_resampler.reset();
                }
            }
            for g in self.groups.iter_mut().flatten() {
                g.resampler.reset();
            }
        }
        for p in self.participants.iter_mut() {
            let pid = p.id;
            p.drain_input(&mut |digit, ms| emit(MixerEvent::Dtmf(room, pid, digit, ms)));
            let kits = self.groups[p.kind().index()].as_mut().map(|g| &mut g.kits);
            match p.pull_frame(threshold, kits, narrow) {
                Some(true) => emit(MixerEvent::TalkingStarted(room, pid)),
                Some(false) => emit(MixerEvent::TalkingStopped(room, pid)),
                None => {}
            }
        }
        self.select_talkers();
        self.mix_talkers();
        for g in self.groups.iter_mut().flatten() {
            g.mix_len = None;
            g.silence.next_tick();
        }
        let mut csrcs = [(0u32, 127u8); MAX_TALKERS];
        let mut n_csrcs = 0;
        for &t in &self.talkers[..self.talker_count] {
            let p = &self.participants[t];
            csrcs[n_csrcs] = (p.in_ssrc(), p.level_6464);
            n_csrcs += 1;
        }
        for i in 0..self.participants.len() {
            self.send_to(i, &csrcs[..n_csrcs]);
        }
        self.record();
        self.return_kits();
    }

    /// The recording gets the Opus listeners' packet of this tick (encoded
    /// now if no listener needed it): one copy, no encode of its own.
    fn record(&mut self) {
        let Room {
            recorder,
            groups,
            mix,
            limited,
            resampled,
            pcm,
            stats,
            ..
        } = self;
        let Some(tap) = recorder.as_deref_mut() else {
            return;
        };
        match groups[CodecKind::Opus.index()].as_deref_mut() {
            Some(g) => {
                // Never narrow: a recorded room mixes at 48 kHz.
                let len = g.full_mix(mix, limited, resampled, pcm, stats, false);
                tap.push(&g.mix_payload[..len]);
            }
            // The media server adds the Opus encoders before the tap.
            None => tap.push(&[]),
        }
    }

    /// Kits of participants that neither may be mixed nor hear a stream of
    /// their own go back to the pool.
    fn return_kits(&mut self) {
        let room_opus = self.settings.opus;
        for p in self.participants.iter_mut() {
            if p.kit.is_none() || p.frame_fresh || p.wants_own_stream(&room_opus) {
                continue;
            }
            if let Some(g) = self.groups[p.kind().index()].as_mut() {
                p.return_kit(&mut g.kits);
            }
        }
    }

    /// Picks up to N talkers, loudest first; the ones already selected get
    /// a head start of [`HYSTERESIS_DB`] so the choice does not flap.
    fn select_talkers(&mut self) {
        let n = self.settings.max_talkers.clamp(1, MAX_TALKERS);
        let mut best: [(usize, f32); MAX_TALKERS] = [(usize::MAX, f32::MIN); MAX_TALKERS];
        let mut count = 0;
        for (i, p) in self.participants.iter().enumerate() {
            // Without a fresh frame (no kit was free) it cannot be mixed.
            if !(p.vad.talking && p.has_audio && !p.muted && p.frame_fresh) {
                continue;
            }
            let score = p.level_dbov + if p.selected { HYSTERESIS_DB } else { 0.0 };
            // Insertion into a sorted fixed array.
            let mut pos = count.min(n);
            while pos > 0 && best[pos - 1].1 < score {
                pos -= 1;
            }
            if pos < n {
                let end = count.min(n - 1);
                best.copy_within(pos..end, pos + 1);
                best[pos] = (i, score);
                count = (count + 1).min(n);
            }
        }
        for p in self.participants.iter_mut() {
            p.selected = false;
        }
        self.talker_count = count;
        for (k, (i, _)) in best[..count].iter().enumerate() {
            self.talkers[k] = *i;
            self.participants[*i].selected = true;
        }
    }

    /// Samples in this tick's frames, and their rate.
    fn frame_shape(&self) -> (usize, u32) {
        if self.narrow {
            (NARROW_FRAME, NARROW_RATE)
        } else {
            (FRAME, MIX_RATE)
        }
    }

    fn mix_talkers(&mut self) {
        let (len, rate) = self.frame_shape();
        self.mix.fill(0);
        for &t in &self.talkers[..self.talker_count] {
            let Some(frame) = self.participants[t].frame() else {
                continue;
            };
            for (m, s) in self.mix[..len].iter_mut().zip(frame.iter()) {
                *m += *s;
            }
        }
        self.tone.add_to(&mut self.mix[..len], rate);
    }

    fn send_to(&mut self, i: usize, csrcs_all: &[(u32, u8)]) {
        let (len, rate) = self.frame_shape();
        let narrow = self.narrow;
        let Room {
            settings,
            participants,
            groups,
            mix,
            limited,
            resampled,
            pcm,
            packet,
            stats,
            scratch,
            ..
        } = self;
        let p = &mut participants[i];
        if !p.receives() {
            return;
        }
        let Some(remote) = p.remote else { return };
        let kind = p.kind();
        let frame_len = (kind.pcm_rate() / 50) as usize;
        let own_ssrc = p.in_ssrc();
        let mut csrcs = [(0u32, 127u8); MAX_TALKERS];
        let mut n = 0;
        for c in csrcs_all
            .iter()
            .filter(|c| !(p.selected && c.0 == own_ssrc))
        {
            csrcs[n] = *c;
            n += 1;
        }
        let header_len;
        let payload_len;
        let ts_step = kind.rtp_clock() / 50;
        let custom = p.custom_opus(&settings.opus);
        // No kit free: the shared stream it is (a talker is never here
        // without one: it was mixed from its kit's frame).
        let mut own = p.wants_own_stream(&settings.opus)
            && p.borrow_kit(groups[kind.index()].as_mut().map(|g| &mut g.kits));
        let own_mix = &mut **scratch;
        if own {
            // Mix-minus: everyone mixed but this participant, plus any tone
            // meant for this participant alone (a deaf one, such as a
            // caller entering a PIN, hears only that).
            own_mix.fill(0);
            let own_mix = &mut own_mix[..len];
            if !p.deaf {
                match p.frame().filter(|_| p.selected) {
                    Some(frame) => {
                        for ((o, m), own) in own_mix.iter_mut().zip(mix.iter()).zip(frame.iter()) {
                            *o = *m - *own;
                        }
                    }
                    None => own_mix.copy_from_slice(&mix[..len]),
                }
            }
            p.tone.add_to(own_mix, rate);
            // The only talker of a quiet room hears silence: the group's
            // shared silence serves it, not an encode of its own (in rooms
            // of a few, one talker at a time is the common case).
            if !custom && own_mix.iter().all(|&v| v == 0) {
                own = false;
                p.own_idle = true;
            }
        }
        if let Some(kit) = p.kit.as_deref_mut().filter(|_| own) {
            let encoder = match p.encoder.as_mut() {
                Some(own) => own,
                None => &mut kit.encoder,
            };
            if p.own_idle {
                // Its encoder and resampler last ran before the gap.
                encoder.reset();
                kit.out_resampler.reset();
                p.own_idle = false;
            }
            to_codec_pcm(
                &own_mix[..],
                p.gain_out,
                (!narrow).then_some(&mut kit.out_resampler),
                limited,
                resampled,
                &mut pcm[..frame_len],
            );
            header_len = p.rtp.write_header(
                &mut packet[..],
                p.settings.payload_type,
                ts_step,
                &csrcs[..n],
                p.settings.csrc_level_ext,
            );
            payload_len = encoder
                .encode(&pcm[..frame_len], &mut packet[header_len..])
                .unwrap_or(0);
            stats.own_encodes += 1;
        } else {
            let Some(g) = groups[kind.index()].as_mut() else {
                // No shared encoder for its codec (it came without one).
                p.stats
                    .send_errors
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return;
            };
            debug_assert_eq!(g.kind, kind);
            let hears_silence = p.deaf || p.selected || p.tone.active();
            let (len, payload) = if hears_silence {
                let payload = g.silence.packet(&mut pcm[..frame_len], stats);
                (payload.len(), payload)
            } else {
                let len = g.full_mix(mix, limited, resampled, pcm, stats, narrow);
                (len, &g.mix_payload[..])
            };
            header_len = p.rtp.write_header(
                &mut packet[..],
                p.settings.payload_type,
                ts_step,
                &csrcs[..n],
                p.settings.csrc_level_ext,
            );
            packet[header_len..header_len + len].copy_from_slice(&payload[..len]);
            payload_len = len;
        }
        use std::sync::atomic::Ordering;
        if p.out.send(remote, &packet[..header_len + payload_len]) {
            stats.packets_sent += 1;
            p.stats.packets_out.fetch_add(1, Ordering::Relaxed);
            p.stats
                .bytes_out
                .fetch_add(payload_len as u64, Ordering::Relaxed);
            p.stats.last_ssrc.store(
                ((p.rtp.timestamp as u64) << 32) | p.rtp.ssrc as u64,
                Ordering::Relaxed,
            );
        } else {
            p.stats.send_errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Brings a mix to a codec's rate as 16-bit PCM (`pcm` is one frame at
/// that rate), after `gain`: through `resampler` from 48 kHz, or as it is
/// when the room mixes narrowband (`None`). Saturates at each step.
fn to_codec_pcm(
    mix: &[i32],
    gain: f32,
    resampler: Option<&mut Resampler>,
    limited: &mut [i16; FRAME],
    resampled: &mut [i32; FRAME],
    pcm: &mut [i16],
) {
    let scaled = |v: i32| {
        if gain == 1.0 {
            v
        } else {
            (v as f32 * gain) as i32
        }
    };
    match resampler {
        None => {
            for (o, v) in pcm.iter_mut().zip(mix) {
                *o = limit(scaled(*v));
            }
        }
        Some(r) => {
            for (l, v) in limited.iter_mut().zip(mix) {
                *l = limit(scaled(*v));
            }
            r.process(&limited[..], &mut resampled[..]);
            for (o, v) in pcm.iter_mut().zip(resampled.iter()) {
                *o = limit(*v);
            }
        }
    }
}

/// The limiter: saturates at full scale instead of wrapping.
fn limit(v: i32) -> i16 {
    v.clamp(i16::MIN as i32, i16::MAX as i32) as i16
}
