//! SDES keys (RFC 4568): the `a=crypto` lines of each m-section, read from
//! the raw text because webrtc-sdp (made for DTLS-SRTP) does not model them.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// One `a=crypto:<tag> <suite> inline:<key||salt>[|lifetime][|MKI:len]` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crypto {
    /// The tag the answer must echo.
    pub tag: u32,
    /// The suite's name, as written (`AES_CM_128_HMAC_SHA1_80`, …).
    pub suite: String,
    /// The master key and salt, concatenated, decoded.
    pub key_salt: Vec<u8>,
    /// An MKI is in use: we do not support MKIs (RFC 4568 §6.1 lets us
    /// decline such a line).
    pub mki: bool,
}

impl Crypto {
    /// Reads the value after `a=crypto:`; None when it is malformed.
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.split_whitespace();
        let tag = parts.next()?.parse().ok()?;
        let suite = parts.next()?.to_owned();
        let key_params = parts.next()?;
        // One key only: several keys are `;`-separated; we take the first.
        let first = key_params.split(';').next()?;
        let inline = first.strip_prefix("inline:")?;
        let mut fields = inline.split('|');
        let key_salt = STANDARD.decode(fields.next()?).ok()?;
        let mki = fields.any(|f| f.contains(':'));
        Some(Self {
            tag,
            suite,
            key_salt,
            mki,
        })
    }

    /// The line for an answer or an offer.
    pub fn to_line(&self) -> String {
        format!(
            "a=crypto:{} {} inline:{}\r\n",
            self.tag,
            self.suite,
            STANDARD.encode(&self.key_salt)
        )
    }
}

/// The `a=crypto` lines of each m-section, in order.
pub(crate) fn crypto_by_media(text: &str) -> Vec<Vec<Crypto>> {
    let mut out: Vec<Vec<Crypto>> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with("m=") {
            out.push(Vec::new());
        } else if let Some(v) = line.strip_prefix("a=crypto:") {
            if let (Some(m), Some(c)) = (out.last_mut(), Crypto::parse(v)) {
                m.push(c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rfc4568_lines() {
        let c = Crypto::parse(
            "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32",
        )
        .expect("parses");
        assert_eq!(
            (c.tag, c.suite.as_str(), c.key_salt.len(), c.mki),
            (1, "AES_CM_128_HMAC_SHA1_80", 30, true)
        );
        let plain =
            Crypto::parse("2 AEAD_AES_128_GCM inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw==")
                .expect("parses");
        assert_eq!((plain.key_salt.len(), plain.mki), (28, false));
        assert!(Crypto::parse("x AES inline:AAAA").is_none());
        assert!(Crypto::parse("1 AES_CM_128_HMAC_SHA1_80 notinline").is_none());
        let again = Crypto::parse(plain.to_line().trim_start_matches("a=crypto:").trim_end())
            .expect("round trip");
        assert_eq!(again, plain);
    }
}
