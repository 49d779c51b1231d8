//! G.711 µ-law (PCMU) and A-law (PCMA), ITU-T G.711: stateless, 8 kHz,
//! one byte per sample. Decoding uses tables built at compile time.

const fn ulaw_to_linear(u: u8) -> i16 {
    let u = !u;
    let sign = u & 0x80;
    let exponent = ((u >> 4) & 0x07) as i32;
    let mantissa = (u & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    (if sign != 0 { -magnitude } else { magnitude }) as i16
}

const fn alaw_to_linear(a: u8) -> i16 {
    let a = a ^ 0x55;
    let sign = a & 0x80;
    let exponent = ((a >> 4) & 0x07) as i32;
    let mantissa = (a & 0x0F) as i32;
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    (if sign != 0 { magnitude } else { -magnitude }) as i16
}

const fn build(alaw: bool) -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if alaw {
            alaw_to_linear(i as u8)
        } else {
            ulaw_to_linear(i as u8)
        };
        i += 1;
    }
    t
}

static ULAW_DECODE: [i16; 256] = build(false);
static ALAW_DECODE: [i16; 256] = build(true);

/// Decodes one µ-law byte.
#[inline]
pub fn ulaw_decode(u: u8) -> i16 {
    ULAW_DECODE[u as usize]
}

/// Decodes one A-law byte.
#[inline]
pub fn alaw_decode(a: u8) -> i16 {
    ALAW_DECODE[a as usize]
}

/// Encodes one sample to µ-law (bias 0x84, clip 32635).
pub fn ulaw_encode(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut s = sample as i32;
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    let s = s.min(CLIP) + BIAS;
    let exponent = (31 - (s as u32).leading_zeros()) as i32 - 7;
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !(sign | ((exponent as u8) << 4) | mantissa as u8)
}

/// Encodes one sample to A-law.
pub fn alaw_encode(sample: i16) -> u8 {
    let s = sample as i32;
    let (sign, mag) = if s >= 0 { (0x80u8, s) } else { (0u8, -s - 1) };
    let mag = mag.min(0x7FFF);
    let code = if mag < 256 {
        (mag >> 4) as u8
    } else {
        let exponent = (31 - (mag as u32).leading_zeros()) as i32 - 7;
        ((exponent as u8) << 4) | ((mag >> (exponent + 3)) & 0x0F) as u8
    };
    (sign | code) ^ 0x55
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
    }

    #[test]
    fn roundtrip_is_close_for_every_code() {
        for c in 0..=255u8 {
            let v = ulaw_decode(c);
            assert_eq!(ulaw_decode(ulaw_encode(v)), v, "µ-law code {c:#x}");
            let v = alaw_decode(c);
            assert_eq!(alaw_decode(alaw_encode(v)), v, "A-law code {c:#x}");
        }
        for s in (-32768..=32767).step_by(7) {
            let s = s as i16;
            let err_u = (ulaw_decode(ulaw_encode(s)) as i32 - s as i32).abs();
            let err_a = (alaw_decode(alaw_encode(s)) as i32 - s as i32).abs();
            let bound = (s as i32).abs() / 16 + 16;
            assert!(
                err_u <= bound.max(1100) && err_a <= bound.max(1100),
                "{s}: {err_u} {err_a}"
            );
        }
    }
}
