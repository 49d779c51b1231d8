//! The system's libopus (libopus-dev) through audiopus's safe API.

use audiopus::coder::{Decoder as ApDecoder, Encoder as ApEncoder, GenericCtl};

use crate::{Application, Channels, EncoderSettings, Error, SampleRate};

/// Whether libopus's own SILK concealment can be used.
pub(crate) const SILK_PLC_WORKS: bool = true;

pub(crate) const NAME: &str = "system libopus (audiopus)";

fn map(e: audiopus::Error) -> Error {
    match e {
        audiopus::Error::Opus(code) => Error::from_code(code as i32),
        _ => Error::BadArg,
    }
}

fn rate(r: SampleRate) -> audiopus::SampleRate {
    match r {
        SampleRate::Hz8000 => audiopus::SampleRate::Hz8000,
        SampleRate::Hz12000 => audiopus::SampleRate::Hz12000,
        SampleRate::Hz16000 => audiopus::SampleRate::Hz16000,
        SampleRate::Hz24000 => audiopus::SampleRate::Hz24000,
        SampleRate::Hz48000 => audiopus::SampleRate::Hz48000,
    }
}

fn channels(c: Channels) -> audiopus::Channels {
    match c {
        Channels::Mono => audiopus::Channels::Mono,
        Channels::Stereo => audiopus::Channels::Stereo,
    }
}

pub(crate) struct Encoder(ApEncoder);

impl Encoder {
    pub(crate) fn new(r: SampleRate, c: Channels, a: Application) -> Result<Self, Error> {
        let app = match a {
            Application::Voip => audiopus::Application::Voip,
            Application::Audio => audiopus::Application::Audio,
            Application::LowDelay => audiopus::Application::LowDelay,
        };
        ApEncoder::new(rate(r), channels(c), app)
            .map(Self)
            .map_err(map)
    }

    pub(crate) fn apply(&mut self, s: &EncoderSettings) -> Result<(), Error> {
        for (request, value) in s.requests() {
            self.0
                .set_encoder_ctl_request(request, value)
                .map_err(map)?;
        }
        Ok(())
    }

    pub(crate) fn encode(
        &mut self,
        pcm: &[i16],
        _per_channel: usize,
        out: &mut [u8],
    ) -> Result<usize, Error> {
        self.0.encode(pcm, out).map_err(map)
    }

    pub(crate) fn reset(&mut self) -> Result<(), Error> {
        self.0.reset_state().map_err(map)
    }
}

pub(crate) struct Decoder {
    inner: ApDecoder,
    channels: usize,
}

impl Decoder {
    pub(crate) fn new(r: SampleRate, c: Channels) -> Result<Self, Error> {
        Ok(Self {
            inner: ApDecoder::new(rate(r), channels(c)).map_err(map)?,
            channels: c.count(),
        })
    }

    pub(crate) fn decode(
        &mut self,
        packet: Option<&[u8]>,
        out: &mut [i16],
        per_channel: usize,
        fec: bool,
    ) -> Result<usize, Error> {
        let n = per_channel * self.channels;
        if n > out.len() {
            return Err(Error::BufferTooSmall);
        }
        self.inner.decode(packet, &mut out[..n], fec).map_err(map)
    }

    pub(crate) fn reset(&mut self) -> Result<(), Error> {
        self.inner.reset_state().map_err(map)
    }
}
