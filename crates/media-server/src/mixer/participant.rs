//! One participant as the mixer thread owns it: its input ring, jitter
//! buffer, decoder, talk detection and its own encoder (used while it is a
//! mixed talker and hears a mix-minus); the resamplers and 48 kHz frame are
//! a kit it borrows from the room while it may be mixed. Built on the
//! control side; nothing here allocates after construction.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::codec::{CodecKind, Decoder, DtmfDetector, Encoder, MAX_FRAME_SAMPLES};
use crate::jitter::{JitterBuffer, JitterConfig, Pop};

use super::control::{Direction, InPacket, ParticipantId, ParticipantSettings};
use super::rtp_out::RtpOut;
use super::talker_kit::{KitPool, TalkerKit};
use super::{PacketOut, FRAME};

/// Counters shared with the control side (atomics: no lock in the tick).
#[derive(Debug, Default)]
pub struct ParticipantStats {
    /// RTP packets taken from the input ring.
    pub packets_in: AtomicU64,
    /// Packets with a payload type that is neither the codec's nor DTMF
    /// (dropped by the receive thread, or by the mixer for its own callers).
    pub foreign_payload: AtomicU64,
    /// Packets that failed to decode.
    pub decode_errors: AtomicU64,
    /// RTP packets sent.
    pub packets_out: AtomicU64,
    /// Payload bytes sent.
    pub bytes_out: AtomicU64,
    /// Sends that failed (socket full, no route).
    pub send_errors: AtomicU64,
    /// Times the sending address changed by latching (symmetric RTP;
    /// counted by the receive thread).
    pub latches: AtomicU64,
    /// Packets from a source other than the latched one, dropped by the
    /// receive thread before they were queued.
    pub stray_packets: AtomicU64,
    /// SSRC changes seen.
    pub ssrc_changes: AtomicU64,
    /// Lost packets seen by the jitter buffer.
    pub lost: AtomicU64,
    /// Packets that came after their turn to play (dropped by the jitter buffer).
    pub late: AtomicU64,
    /// Current jitter buffer delay in ms.
    pub jitter_delay_ms: AtomicU64,
    /// Frames whose decode was skipped because RFC 6464 said silence.
    pub decode_skipped: AtomicU64,
    /// Last RTP timestamp and SSRC sent (for RTCP SR), packed.
    pub last_ssrc: AtomicU64,
    /// SRTP or SRTCP packets dropped: a tag that does not check, a
    /// replayed index, a packet too short (counted by the receive thread).
    pub srtp_dropped: AtomicU64,
    /// Packets the mixer could not protect.
    pub srtp_failed: AtomicU64,
}

/// Talk detection state: start at once above threshold, stop after a hangover.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Vad {
    pub(crate) talking: bool,
    quiet_ticks: u32,
}

const HANGOVER_TICKS: u32 = 15;

impl Vad {
    /// Returns Some(new state) when it changes.
    fn update(&mut self, loud: bool) -> Option<bool> {
        if loud {
            self.quiet_ticks = 0;
            if !self.talking {
                self.talking = true;
                return Some(true);
            }
        } else if self.talking {
            self.quiet_ticks += 1;
            if self.quiet_ticks >= HANGOVER_TICKS {
                self.talking = false;
                return Some(false);
            }
        }
        None
    }
}

/// A participant.
pub struct Participant {
    pub(crate) id: ParticipantId,
    pub(crate) settings: ParticipantSettings,
    input: rtrb::Consumer<InPacket>,
    pub(crate) out: Box<dyn PacketOut>,
    /// Where to send: the SDP's address, then where the stream comes from
    /// (the receive thread queues only the source it latched).
    pub(crate) remote: Option<SocketAddr>,
    in_ssrc: Option<u32>,
    jitter: JitterBuffer,
    decoder: Decoder,
    dtmf: DtmfDetector,
    fifo: Box<[i16]>,
    fifo_len: usize,
    decoded: Box<[i16]>,
    /// Resamplers and the 48 kHz frame, lent by the room while it may be
    /// mixed or hears a stream of its own.
    pub(crate) kit: Option<Box<TalkerKit>>,
    /// A kit it brings for the room's pool.
    pub(crate) spare: Option<Box<TalkerKit>>,
    /// Its own encoder, when it asked for Opus settings other than the
    /// room's; otherwise its kit's encoder serves.
    pub(crate) encoder: Option<Encoder>,
    /// Its own encoder has not run since it last heard the shared silence.
    pub(crate) own_idle: bool,
    pub(crate) has_audio: bool,
    /// Its kit's frame holds this tick's audio after input gain (the
    /// participant may be mixed): at 48 kHz, or at 8 kHz in a narrowband room.
    pub(crate) frame_fresh: bool,
    pub(crate) level_dbov: f32,
    /// Level for RFC 6465 (0 loud … 127 silent).
    pub(crate) level_6464: u8,
    ext_level: Option<u8>,
    pub(crate) vad: Vad,
    /// An Opus stream left undecoded while quiet (None for other codecs).
    idle: Option<Box<IdleOpus>>,
    pub(crate) selected: bool,
    pub(crate) muted: bool,
    pub(crate) deaf: bool,
    pub(crate) gain_in: f32,
    pub(crate) gain_out: f32,
    pub(crate) rtp: RtpOut,
    pub(crate) stats: Arc<ParticipantStats>,
    /// Tones for this participant only (they force an individual encode while playing).
    pub(crate) tone: super::tone_player::TonePlayer,
}

/// A quiet Opus stream whose packets the mixer does not decode: the
/// packets' own voice-activity flags, DTX or RFC 6464 levels say there is
/// nothing to hear. The decoder is brought up to date (reset, then fed the
/// last skipped packet) when the stream is decoded again.
struct IdleOpus {
    /// The decoder has missed packets since it last decoded.
    stale: bool,
    /// Packets skipped in a row; every [`FORCED_DECODE_EVERY`]th is decoded
    /// anyway, so that a loud stream its encoder calls inactive (a steady
    /// tone can look like noise to a VAD) is still heard.
    run: u32,
    last: [u8; crate::jitter::MAX_PAYLOAD],
    last_len: usize,
}

/// One packet in 25 (half a second of 20 ms packets) of a quiet stream is decoded.
const FORCED_DECODE_EVERY: u32 = 25;

/// Scratch for encoding one packet.
pub(crate) const PACKET_BUF: usize = 1500;

impl Participant {
    /// Builds a participant with every buffer it will ever need.
    pub fn new(
        id: ParticipantId,
        settings: ParticipantSettings,
        input: rtrb::Consumer<InPacket>,
        out: Box<dyn PacketOut>,
        out_ssrc: u32,
        out_seq: u16,
        stats: Arc<ParticipantStats>,
    ) -> Result<Self, crate::codec::CodecError> {
        let kind = settings.codec;
        let rate = kind.pcm_rate();
        let jitter = JitterBuffer::new(JitterConfig {
            capacity: 16,
            max_delay_ms: settings.max_jitter_ms,
            ptime_ms: 20,
            clock_rate: kind.rtp_clock(),
        });
        // Buffers for the longest packet of this codec (120 ms), not of any.
        let max_frame = (rate as usize * 120 / 1000).min(MAX_FRAME_SAMPLES);
        Ok(Self {
            id,
            remote: settings.remote,
            encoder: Some(Encoder::new(kind, &settings.opus)?),
            own_idle: false,
            decoder: Decoder::new(kind)?,
            settings,
            input,
            out,
            in_ssrc: None,
            jitter,
            dtmf: DtmfDetector::default(),
            fifo: vec![0; 2 * max_frame].into_boxed_slice(),
            fifo_len: 0,
            decoded: vec![0; max_frame].into_boxed_slice(),
            kit: None,
            spare: None,
            has_audio: false,
            frame_fresh: false,
            level_dbov: -127.0,
            level_6464: 127,
            ext_level: None,
            vad: Vad::default(),
            idle: (kind == CodecKind::Opus).then(|| {
                Box::new(IdleOpus {
                    stale: false,
                    run: 0,
                    last: [0; crate::jitter::MAX_PAYLOAD],
                    last_len: 0,
                })
            }),
            selected: false,
            muted: false,
            deaf: false,
            gain_in: 1.0,
            gain_out: 1.0,
            rtp: RtpOut::new(out_ssrc, out_seq, out_ssrc.rotate_left(7)),
            stats,
            tone: Default::default(),
        })
    }

    /// The participant brings a kit for its room's pool: the control side
    /// sends one with each participant until the room has enough.
    pub fn with_kit(
        mut self,
        room_opus: &crate::codec::OpusConfig,
    ) -> Result<Self, crate::codec::CodecError> {
        self.spare = Some(Box::new(TalkerKit::new(self.kind(), room_opus)?));
        Ok(self)
    }

    /// The participant encodes with its kit's encoder (the room's settings)
    /// and keeps none of its own: the control side says so when its
    /// settings are the room's.
    pub fn sharing_kit_encoder(mut self) -> Self {
        self.encoder = None;
        self
    }

    /// The participant's id.
    pub fn id(&self) -> ParticipantId {
        self.id
    }

    pub(crate) fn kind(&self) -> CodecKind {
        self.settings.codec
    }

    /// The SSRC the participant sends with (for CSRC lists).
    pub(crate) fn in_ssrc(&self) -> u32 {
        self.in_ssrc.unwrap_or(0)
    }

    /// Drains the input ring into the jitter buffer. Returns a completed DTMF press.
    pub(crate) fn drain_input(&mut self, dtmf_out: &mut impl FnMut(char, u32)) {
        // Read in place: a packet is ~700 bytes, not worth a copy out of the ring.
        let waiting = self.input.slots();
        if let Ok(chunk) = self.input.read_chunk(waiting) {
            let (a, b) = chunk.as_slices();
            for pkt in a.iter().chain(b) {
                self.stats.packets_in.fetch_add(1, Ordering::Relaxed);
                let ours = pkt.payload_type == self.settings.payload_type
                    || Some(pkt.payload_type) == self.settings.dtmf_payload_type;
                if !ours {
                    self.stats.foreign_payload.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                // Symmetric RTP (RFC 4961): the receive thread queued only the
                // source it latched to, so the stream's source is where to send.
                self.remote = Some(pkt.source);
                let payload = &pkt.payload[..pkt.len as usize];
                if Some(pkt.payload_type) == self.settings.dtmf_payload_type {
                    if let Some(d) =
                        self.dtmf
                            .push(pkt.timestamp, payload, self.settings.dtmf_clock)
                    {
                        dtmf_out(d.digit, d.duration_ms);
                    }
                    continue;
                }
                if self.in_ssrc != Some(pkt.ssrc) {
                    if self.in_ssrc.is_some() {
                        // A new stream (phone restarted it): start its buffer afresh.
                        self.stats.ssrc_changes.fetch_add(1, Ordering::Relaxed);
                        self.jitter.restart();
                        self.decoder.reset();
                        self.fifo_len = 0;
                    }
                    self.in_ssrc = Some(pkt.ssrc);
                }
                self.ext_level = pkt.audio_level;
                self.jitter
                    .push(pkt.seq, pkt.timestamp, payload, pkt.arrival);
            }
            chunk.commit_all();
        }
        let js = self.jitter.stats();
        self.stats.lost.store(js.lost, Ordering::Relaxed);
        self.stats.late.store(js.late, Ordering::Relaxed);
        self.stats
            .jitter_delay_ms
            .store(self.jitter.delay_ms() as u64, Ordering::Relaxed);
    }

    /// Produces this tick's input frame into its kit's frame (at 48 kHz,
    /// or as it is when the room mixes at 8 kHz: `narrow`); sets
    /// `has_audio`, the level and talk state. Returns Some(talking) when the
    /// talk state changes.
    pub(crate) fn pull_frame(
        &mut self,
        threshold_dbov: f32,
        kits: Option<&mut KitPool>,
        narrow: bool,
    ) -> Option<bool> {
        if !self.settings.direction.sends() {
            self.has_audio = false;
            self.frame_fresh = false;
            return self.vad.update(false);
        }
        let kind = self.kind();
        let need = (kind.pcm_rate() / 50) as usize;
        // RFC 6464 says silence: a stream that is not being mixed need not
        // be decoded (a G.711 decode is cheap; an Opus one is not).
        let quiet_ext = self.ext_level.is_some_and(|l| -(l as f32) < threshold_dbov);
        // Only a stream that was no candidate last tick may go undecoded.
        let may_skip = !self.selected && !self.vad.talking;
        let ptime_samples = need;
        let mut skipped = false;
        while self.fifo_len < need {
            // Decoded straight into the fifo's tail, which always has room
            // for the longest packet (the fifo holds two, and less than a
            // frame is left in it); `decoded` is scratch for warming up.
            let cap = self.decoded.len();
            let (jitter, decoder, decoded, idle) = (
                &mut self.jitter,
                &mut self.decoder,
                &mut self.decoded,
                &mut self.idle,
            );
            let out = &mut self.fifo[self.fifo_len..self.fifo_len + cap];
            let n = match jitter.pop() {
                Pop::Packet { payload, .. } => {
                    let skip = may_skip
                        && match idle {
                            None => matches!(kind, CodecKind::Pcmu | CodecKind::Pcma) && quiet_ext,
                            Some(idle) => idle.may_skip(payload, quiet_ext),
                        };
                    if skip {
                        self.stats.decode_skipped.fetch_add(1, Ordering::Relaxed);
                        skipped = true;
                        let n = match idle {
                            Some(idle) => {
                                idle.skipped(payload);
                                opus_codec::packet_samples(payload)
                                    .unwrap_or(ptime_samples)
                                    .min(cap)
                            }
                            None => ptime_samples,
                        };
                        out[..n].fill(0);
                        n
                    } else {
                        if let Some(idle) = idle {
                            idle.catch_up(decoder, decoded);
                        }
                        match decoder.decode(payload, out) {
                            Ok(n) => n,
                            Err(_) => {
                                self.stats.decode_errors.fetch_add(1, Ordering::Relaxed);
                                decoder.conceal(&mut out[..ptime_samples])
                            }
                        }
                    }
                }
                // A loss in a stream left undecoded is silence too.
                Pop::Lost { .. } if idle.as_ref().is_some_and(|i| i.stale) && may_skip => {
                    out[..ptime_samples].fill(0);
                    ptime_samples
                }
                Pop::Lost { next: Some(next) } if kind == CodecKind::Opus => {
                    if let Some(idle) = idle {
                        idle.catch_up(decoder, decoded);
                    }
                    decoder
                        .decode_fec(next, &mut out[..ptime_samples])
                        .unwrap_or_else(|_| decoder.conceal(&mut out[..ptime_samples]))
                }
                Pop::Lost { .. } => decoder.conceal(&mut out[..ptime_samples]),
                Pop::Empty => break,
            };
            self.fifo_len += n.min(cap);
        }
        if self.fifo_len < need {
            // Underrun or not started: no audio this tick.
            self.has_audio = false;
            self.frame_fresh = false;
            self.level_dbov = -127.0;
            self.level_6464 = 127;
            return self.vad.update(false);
        }
        // The level at the codec's own rate: a quiet participant (most of a
        // big room) is never resampled to 48 kHz; only a possible talker is.
        // Integer squares (exact, and they vectorize); the gain once.
        let gain = self.gain_in as f64;
        let energy: i64 = self.fifo[..need]
            .iter()
            .map(|&s| {
                let v = s as i64;
                v * v
            })
            .sum();
        let mean = energy as f64 * gain * gain / need as f64;
        self.level_dbov = if mean > 0.0 {
            (10.0 * (mean / (32768.0 * 32768.0)).log10()) as f32
        } else {
            -127.0
        };
        if skipped {
            if let Some(l) = self.ext_level {
                self.level_dbov = -(l as f32);
            }
        }
        self.level_6464 = (-self.level_dbov).clamp(0.0, 127.0) as u8;
        self.has_audio = true;
        let loud = !self.muted && self.level_dbov > threshold_dbov;
        let change = self.vad.update(loud);
        // `frame` is read only for selected talkers, and selection needs
        // the VAD's talking state, so it is fresh whenever it is read.
        let candidate = loud || self.vad.talking || self.selected;
        if candidate {
            // With none left it cannot be mixed this tick (the pool
            // outnumbers the talkers mixed: only a crowd of candidates runs short).
            self.borrow_kit(kits);
        }
        let fresh = match self.kit.as_deref_mut() {
            Some(kit) if candidate => {
                if !self.frame_fresh {
                    // Its filter history is from before the gap: start clean.
                    kit.in_resampler.reset();
                }
                let len = if narrow {
                    // Every codec in the room is at 8 kHz: no resampling,
                    // but as late as resampling would make it, and the
                    // filter keeps its history for when the room widens.
                    kit.in_resampler
                        .delayed(&self.fifo[..need], &mut kit.frame[..need]);
                    need
                } else {
                    kit.in_resampler
                        .process(&self.fifo[..need], &mut kit.frame[..]);
                    FRAME
                };
                if self.gain_in != 1.0 {
                    for s in kit.frame[..len].iter_mut() {
                        *s = (*s as f32 * self.gain_in) as i32;
                    }
                }
                true
            }
            _ => false,
        };
        self.frame_fresh = fresh;
        self.fifo.copy_within(need..self.fifo_len, 0);
        self.fifo_len -= need;
        change
    }

    /// This tick's frame, when it may be mixed: 48 kHz, or 8 kHz in its
    /// first 160 samples when the room mixes narrowband.
    pub(crate) fn frame(&self) -> Option<&[i32; FRAME]> {
        self.kit
            .as_deref()
            .filter(|_| self.frame_fresh)
            .map(|k| &*k.frame)
    }

    /// Takes a kit (its own spare first, else the room's) unless it holds
    /// one; true when it holds one. A kit newly taken has state from
    /// someone else, so its own stream restarts clean.
    pub(crate) fn borrow_kit(&mut self, kits: Option<&mut KitPool>) -> bool {
        if self.kit.is_none() {
            self.kit = self.spare.take().or_else(|| kits.and_then(KitPool::take));
            self.own_idle = true;
        }
        self.kit.is_some()
    }

    /// Gives its kit back to the room's pool (kept when the pool is full).
    pub(crate) fn return_kit(&mut self, kits: &mut KitPool) {
        if let Some(kit) = self.kit.take() {
            self.kit = kits.give(kit);
        }
    }

    /// An Opus receiver that asked for other settings (bitrate, band, FEC,
    /// CBR) than the room's shared stream.
    pub(crate) fn custom_opus(&self, room_opus: &crate::codec::OpusConfig) -> bool {
        self.kind() == CodecKind::Opus && self.settings.opus != *room_opus
    }

    /// True when it hears a stream of its own: a mix-minus, a tone of its
    /// own, its own output gain, or Opus settings other than the room's.
    pub(crate) fn wants_own_stream(&self, room_opus: &crate::codec::OpusConfig) -> bool {
        self.tone.active()
            || (!self.deaf
                && (self.selected || self.gain_out != 1.0 || self.custom_opus(room_opus)))
    }

    /// True when the participant should be sent audio this tick.
    pub(crate) fn receives(&self) -> bool {
        self.settings.direction.receives() && self.remote.is_some()
    }

    /// Applies a direction change.
    pub(crate) fn set_direction(&mut self, d: Direction) {
        self.settings.direction = d;
    }
}

impl IdleOpus {
    /// True when this packet need not be decoded: DTX, no voice flagged
    /// by the encoder, or RFC 6464 silence; but not when a forced decode
    /// is due.
    fn may_skip(&self, packet: &[u8], quiet_ext: bool) -> bool {
        if self.run + 1 >= FORCED_DECODE_EVERY {
            return false;
        }
        quiet_ext
            || matches!(
                opus_codec::activity(packet),
                Ok(opus_codec::Activity::Silent | opus_codec::Activity::Inactive)
            )
    }

    /// Keeps the packet to warm the decoder with later.
    fn skipped(&mut self, packet: &[u8]) {
        let n = packet.len().min(self.last.len());
        self.last[..n].copy_from_slice(&packet[..n]);
        self.last_len = n;
        self.stale = true;
        self.run += 1;
    }

    /// Before a decode: a decoder that missed packets starts clean and
    /// takes the last one it missed, so that the packet decoded next
    /// continues from state close to the encoder's (output discarded).
    fn catch_up(&mut self, decoder: &mut Decoder, scratch: &mut [i16]) {
        self.run = 0;
        if !self.stale {
            return;
        }
        self.stale = false;
        decoder.reset();
        if self.last_len > 0 {
            // A failure leaves a clean decoder, which is what reset gave.
            let _ = decoder.decode(&self.last[..self.last_len], scratch);
            self.last_len = 0;
        }
    }
}
