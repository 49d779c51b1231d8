//! G.722 at 64 kbit/s (ITU-T G.722, mode 1): 16 kHz audio, sub-band ADPCM.
//! A QMF splits the signal into a low band (6-bit ADPCM) and a high band
//! (2-bit ADPCM), each with the adaptive predictor of block 4. Written from
//! the recommendation's block descriptions; no allocation per call.
//!
//! RTP note (RFC 3551 §4.5.2): the RTP clock rate is 8000 although the
//! audio is sampled at 16 kHz.

const QMF: [i32; 12] = [3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11];
// Low-band quantizer decision levels and output codes (QUANTL).
const Q6: [i32; 32] = [
    0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940,
    1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919, 0, 0,
];
const ILN: [i32; 32] = [
    0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11,
    10, 9, 8, 7, 6, 5, 4, 0,
];
const ILP: [i32; 32] = [
    0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39,
    38, 37, 36, 35, 34, 33, 32, 0,
];
// Log-scale factor adaptation (LOGSCL) and its inverse table (SCALEL).
const WL: [i32; 8] = [-60, -30, 58, 172, 334, 538, 1198, 3042];
const RL42: [i32; 16] = [0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0];
const ILB: [i32; 32] = [
    2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834,
    2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];
// Inverse quantizers: 4-bit (predictor update) and 6-bit (reconstruction).
const QM4: [i32; 16] = [
    0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584,
    1200, 0,
];
const QM6: [i32; 64] = [
    -136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232,
    -9360, -8576, -7856, -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576, -3168, -2776,
    -2400, -2032, -1688, -1360, -1040, -728, 24808, 21904, 19008, 16704, 14984, 13512, 12280,
    11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456, 4944, 4464, 4008, 3576, 3168, 2776,
    2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136,
];
// High band: 2-bit quantizer.
const QM2: [i32; 4] = [-7408, -1616, 7408, 1616];
const IHN: [i32; 3] = [0, 1, 0];
const IHP: [i32; 3] = [0, 3, 2];
const WH: [i32; 3] = [0, -214, 798];
const RH2: [i32; 4] = [2, 1, 2, 1];

fn sat(x: i32) -> i32 {
    x.clamp(i16::MIN as i32, i16::MAX as i32)
}

/// State of one sub-band's adaptive predictor (block 4) and scale factor.
#[derive(Debug, Clone, Default)]
struct Band {
    s: i32,
    sp: i32,
    sz: i32,
    r: [i32; 3],
    a: [i32; 3],
    ap: [i32; 3],
    p: [i32; 3],
    d: [i32; 7],
    b: [i32; 7],
    bp: [i32; 7],
    nb: i32,
    det: i32,
}

impl Band {
    fn new(det: i32) -> Self {
        Self {
            det,
            ..Self::default()
        }
    }

    /// Block 4: reconstruction, pole and zero predictor adaptation, prediction.
    fn update(&mut self, d: i32) {
        self.d[0] = d;
        self.r[0] = sat(self.s + d);
        self.p[0] = sat(self.sz + d);
        // UPPOL2
        let sg0 = self.p[0] >> 15;
        let sg1 = self.p[1] >> 15;
        let sg2 = self.p[2] >> 15;
        let wd1 = sat(self.a[1] << 2);
        let wd2 = if sg0 == sg1 { -wd1 } else { wd1 }.min(32767);
        let mut wd3 = if sg0 == sg2 { 128 } else { -128 };
        wd3 += wd2 >> 7;
        wd3 += (self.a[2] * 32512) >> 15;
        self.ap[2] = wd3.clamp(-12288, 12288);
        // UPPOL1
        let wd1 = if sg0 == sg1 { 192 } else { -192 };
        let wd2 = (self.a[1] * 32640) >> 15;
        let limit = sat(15360 - self.ap[2]);
        self.ap[1] = sat(wd1 + wd2).clamp(-limit, limit);
        // UPZERO
        let step = if d == 0 { 0 } else { 128 };
        let sgd = d >> 15;
        for i in 1..7 {
            let wd2 = if (self.d[i] >> 15) == sgd {
                step
            } else {
                -step
            };
            let wd3 = (self.b[i] * 32640) >> 15;
            self.bp[i] = sat(wd2 + wd3);
        }
        // DELAYA
        for i in (1..7).rev() {
            self.d[i] = self.d[i - 1];
            self.b[i] = self.bp[i];
        }
        for i in (1..3).rev() {
            self.r[i] = self.r[i - 1];
            self.p[i] = self.p[i - 1];
            self.a[i] = self.ap[i];
        }
        // FILTEP, FILTEZ, PREDIC
        let wd1 = (self.a[1] * sat(self.r[1] + self.r[1])) >> 15;
        let wd2 = (self.a[2] * sat(self.r[2] + self.r[2])) >> 15;
        self.sp = sat(wd1 + wd2);
        let mut sz = 0;
        for i in (1..7).rev() {
            sz += (self.b[i] * sat(self.d[i] + self.d[i])) >> 15;
        }
        self.sz = sat(sz);
        self.s = sat(self.sp + self.sz);
    }

    /// LOGSCL + SCALEL for the low band.
    fn scale_low(&mut self, il4: i32) {
        self.nb = (((self.nb * 127) >> 7) + WL[il4 as usize]).clamp(0, 18432);
        self.det = scale(self.nb, 8);
    }

    /// LOGSCH + SCALEH for the high band.
    fn scale_high(&mut self, ih2: i32) {
        self.nb = (((self.nb * 127) >> 7) + WH[ih2 as usize]).clamp(0, 22528);
        self.det = scale(self.nb, 10);
    }
}

fn scale(nb: i32, shift: i32) -> i32 {
    let wd1 = ((nb >> 6) & 31) as usize;
    let wd2 = shift - (nb >> 11);
    let wd3 = if wd2 < 0 {
        ILB[wd1] << -wd2
    } else {
        ILB[wd1] >> wd2
    };
    wd3 << 2
}

/// A G.722 encoder: 16 kHz PCM in, one byte per two samples out.
#[derive(Debug, Clone)]
pub struct G722Encoder {
    x: [i32; 24],
    low: Band,
    high: Band,
}

impl Default for G722Encoder {
    fn default() -> Self {
        Self {
            x: [0; 24],
            low: Band::new(32),
            high: Band::new(8),
        }
    }
}

impl G722Encoder {
    /// Encodes `pcm` (even length) into `out`; returns the bytes written.
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> usize {
        let mut n = 0;
        for (pair, slot) in pcm.chunks_exact(2).zip(out.iter_mut()) {
            // Transmit QMF.
            self.x.copy_within(2.., 0);
            self.x[22] = pair[0] as i32;
            self.x[23] = pair[1] as i32;
            let (mut sum_even, mut sum_odd) = (0i32, 0i32);
            for i in 0..12 {
                sum_odd += self.x[2 * i] * QMF[i];
                sum_even += self.x[2 * i + 1] * QMF[11 - i];
            }
            let xlow = (sum_even + sum_odd) >> 14;
            let xhigh = (sum_even - sum_odd) >> 14;

            // Low band: SUBTRA, QUANTL, INVQAL, LOGSCL, SCALEL, block 4.
            let el = sat(xlow - self.low.s);
            let wd = if el >= 0 { el } else { -(el + 1) };
            let mut i = 1;
            while i < 30 && wd >= (Q6[i] * self.low.det) >> 12 {
                i += 1;
            }
            let ilow = if el < 0 { ILN[i] } else { ILP[i] };
            let ril = ilow >> 2;
            let dlow = (self.low.det * QM4[ril as usize]) >> 15;
            self.low.scale_low(RL42[ril as usize]);
            self.low.update(dlow);

            // High band: SUBTRA, QUANTH, INVQAH, LOGSCH, SCALEH, block 4.
            let eh = sat(xhigh - self.high.s);
            let wd = if eh >= 0 { eh } else { -(eh + 1) };
            let mih = if wd >= (564 * self.high.det) >> 12 {
                2
            } else {
                1
            };
            let ihigh = if eh < 0 { IHN[mih] } else { IHP[mih] };
            let dhigh = (self.high.det * QM2[ihigh as usize]) >> 15;
            self.high.scale_high(RH2[ihigh as usize]);
            self.high.update(dhigh);

            *slot = ((ihigh << 6) | ilow) as u8;
            n += 1;
        }
        n
    }
}

/// A G.722 decoder: one byte in, two 16 kHz samples out.
#[derive(Debug, Clone)]
pub struct G722Decoder {
    x: [i32; 24],
    low: Band,
    high: Band,
}

impl Default for G722Decoder {
    fn default() -> Self {
        Self {
            x: [0; 24],
            low: Band::new(32),
            high: Band::new(8),
        }
    }
}

impl G722Decoder {
    /// Decodes `data` into `out` (twice as many samples); returns samples written.
    pub fn decode(&mut self, data: &[u8], out: &mut [i16]) -> usize {
        let mut n = 0;
        for (&code, pair) in data.iter().zip(out.chunks_exact_mut(2)) {
            let code = code as i32;
            let ilow = code & 0x3F;
            let ihigh = (code >> 6) & 0x03;

            // Low band: INVQBL, RECONS, LIMIT; INVQAL, LOGSCL, SCALEL, block 4.
            let wd2 = (self.low.det * QM6[ilow as usize]) >> 15;
            let rlow = (self.low.s + wd2).clamp(-16384, 16383);
            let ril = ilow >> 2;
            let dlow = (self.low.det * QM4[ril as usize]) >> 15;
            self.low.scale_low(RL42[ril as usize]);
            self.low.update(dlow);

            // High band: INVQAH, RECONS, LIMIT, LOGSCH, SCALEH, block 4.
            let dhigh = (self.high.det * QM2[ihigh as usize]) >> 15;
            let rhigh = (dhigh + self.high.s).clamp(-16384, 16383);
            self.high.scale_high(RH2[ihigh as usize]);
            self.high.update(dhigh);

            // Receive QMF.
            self.x.copy_within(2.., 0);
            self.x[22] = rlow + rhigh;
            self.x[23] = rlow - rhigh;
            let (mut out1, mut out2) = (0i32, 0i32);
            for i in 0..12 {
                out2 += self.x[2 * i] * QMF[i];
                out1 += self.x[2 * i + 1] * QMF[11 - i];
            }
            pair[0] = sat(out1 >> 11) as i16;
            pair[1] = sat(out2 >> 11) as i16;
            n += 2;
        }
        n
    }
}
