//! libopus 1.3.1 as translated to Rust by c2rust (`unsafe-libopus`). Its
//! API is the C one: raw state pointers, lengths as `i32`, settings through
//! a variadic-like `ctl`. This module is the only place in confab where
//! `unsafe` is allowed; every call states why it is sound.
//!
//! The states are created by the library's own `*_create` (which allocates
//! them once) and freed in `Drop`; a state is only ever used through
//! `&mut self`, so no two calls touch it at once.

use std::ptr::NonNull;

use unsafe_libopus as unsafe_opus;
use unsafe_libopus::varargs::{IntoVarArg, VarArgs};

use crate::scratch::scoped;
use crate::{Application, Channels, EncoderSettings, Error, SampleRate};

/// Whether libopus's own SILK concealment can be used. Not here: in
/// unsafe-libopus 0.2.0, concealing a SILK or hybrid frame (a loss, a DTX
/// gap, a FEC decode without LBRR data) drives the output to full scale
/// after its first samples; CELT concealment and LBRR decoding are sound.
pub(crate) const SILK_PLC_WORKS: bool = false;

pub(crate) const NAME: &str = "libopus 1.3.1 (pure Rust, unsafe-libopus)";

fn check(code: i32) -> Result<i32, Error> {
    if code < 0 {
        Err(Error::from_code(code))
    } else {
        Ok(code)
    }
}

fn len_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

pub(crate) struct Encoder {
    st: NonNull<unsafe_opus::OpusEncoder>,
}

// SAFETY: the encoder state is plain memory owned by this value and used
// only through `&mut self`; it holds no thread-bound resources.
unsafe impl Send for Encoder {}

impl Encoder {
    pub(crate) fn new(
        rate: SampleRate,
        channels: Channels,
        application: Application,
    ) -> Result<Self, Error> {
        let app = match application {
            Application::Voip => unsafe_opus::OPUS_APPLICATION_VOIP,
            Application::Audio => unsafe_opus::OPUS_APPLICATION_AUDIO,
            Application::LowDelay => unsafe_opus::OPUS_APPLICATION_RESTRICTED_LOWDELAY,
        };
        let mut err = 0i32;
        // SAFETY: the arguments are values the library validates itself;
        // `err` is a valid place for it to write the result code.
        let st = unsafe {
            unsafe_opus::opus_encoder_create(
                rate.hz() as i32,
                channels.count() as i32,
                app,
                &mut err,
            )
        };
        check(err)?;
        let st = NonNull::new(st).ok_or(Error::AllocFail)?;
        Ok(Self { st })
    }

    fn ctl(&mut self, request: i32, value: i32) -> Result<(), Error> {
        // SAFETY: `st` is a live encoder created by `opus_encoder_create`;
        // every request used here takes exactly one i32 by value.
        let code = scoped(|| unsafe {
            unsafe_opus::opus_encoder_ctl_impl(
                self.st.as_ptr(),
                request,
                VarArgs::new(vec![value.into_vararg()]),
            )
        });
        check(code).map(|_| ())
    }

    pub(crate) fn apply(&mut self, s: &EncoderSettings) -> Result<(), Error> {
        for (request, value) in s.requests() {
            self.ctl(request, value)?;
        }
        Ok(())
    }

    pub(crate) fn encode(
        &mut self,
        pcm: &[i16],
        per_channel: usize,
        out: &mut [u8],
    ) -> Result<usize, Error> {
        // SAFETY: `st` is live; the caller checked that `pcm` holds exactly
        // `per_channel` samples for each channel, which is what the library
        // reads; it writes at most `out.len()` bytes into `out`.
        let n = scoped(|| unsafe {
            unsafe_opus::opus_encode(
                self.st.as_ptr(),
                pcm.as_ptr(),
                len_i32(per_channel),
                out.as_mut_ptr(),
                len_i32(out.len()),
            )
        });
        check(n).map(|n| n as usize)
    }

    pub(crate) fn reset(&mut self) -> Result<(), Error> {
        // SAFETY: `st` is live; OPUS_RESET_STATE takes no argument (and an
        // empty argument list does not allocate).
        let code = scoped(|| unsafe {
            unsafe_opus::opus_encoder_ctl_impl(
                self.st.as_ptr(),
                unsafe_opus::OPUS_RESET_STATE,
                VarArgs::new(vec![]),
            )
        });
        check(code).map(|_| ())
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: `st` came from `opus_encoder_create` and is freed once, here.
        unsafe { unsafe_opus::opus_encoder_destroy(self.st.as_ptr()) }
    }
}

pub(crate) struct Decoder {
    st: NonNull<unsafe_opus::OpusDecoder>,
    channels: usize,
}

// SAFETY: as for `Encoder`: owned plain memory, used through `&mut self`.
unsafe impl Send for Decoder {}

impl Decoder {
    pub(crate) fn new(rate: SampleRate, channels: Channels) -> Result<Self, Error> {
        let mut err = 0i32;
        // SAFETY: plain values the library validates; `err` is writable.
        let st = unsafe {
            unsafe_opus::opus_decoder_create(rate.hz() as i32, channels.count() as i32, &mut err)
        };
        check(err)?;
        let st = NonNull::new(st).ok_or(Error::AllocFail)?;
        Ok(Self {
            st,
            channels: channels.count(),
        })
    }

    /// `packet` None conceals; `per_channel` is how many samples per
    /// channel `out` holds (the most the library may write).
    pub(crate) fn decode(
        &mut self,
        packet: Option<&[u8]>,
        out: &mut [i16],
        per_channel: usize,
        fec: bool,
    ) -> Result<usize, Error> {
        if per_channel * self.channels > out.len() {
            return Err(Error::BufferTooSmall);
        }
        let (data, len) = match packet {
            Some(p) => (p.as_ptr(), len_i32(p.len())),
            None => (std::ptr::null(), 0),
        };
        // SAFETY: `st` is live; the library reads `len` bytes from `data`
        // (or nothing when it is null) and writes at most `per_channel`
        // samples per channel, which `out` holds (checked above).
        let n = scoped(|| unsafe {
            unsafe_opus::opus_decode(
                self.st.as_ptr(),
                data,
                len,
                out.as_mut_ptr(),
                len_i32(per_channel),
                i32::from(fec),
            )
        });
        check(n).map(|n| n as usize)
    }

    pub(crate) fn reset(&mut self) -> Result<(), Error> {
        // SAFETY: `st` is live; OPUS_RESET_STATE takes no argument.
        let code = scoped(|| unsafe {
            unsafe_opus::opus_decoder_ctl_impl(
                self.st.as_ptr(),
                unsafe_opus::OPUS_RESET_STATE,
                VarArgs::new(vec![]),
            )
        });
        check(code).map(|_| ())
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: `st` came from `opus_decoder_create` and is freed once, here.
        unsafe { unsafe_opus::opus_decoder_destroy(self.st.as_ptr()) }
    }
}
