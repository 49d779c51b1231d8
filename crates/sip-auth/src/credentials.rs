//! Hash algorithms and the HA1 values kept for a user.

use md5::Md5;
use sha2::{Digest, Sha256};

/// A digest algorithm (RFC 7616 §3.2; RFC 8760 for SIP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// MD5, for older phones.
    Md5,
    /// SHA-256.
    Sha256,
}

impl Algorithm {
    /// The name in `algorithm=`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Reads `algorithm=` (case-insensitive; absent means MD5).
    pub fn from_name(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("MD5") {
            Some(Algorithm::Md5)
        } else if s.eq_ignore_ascii_case("SHA-256") {
            Some(Algorithm::Sha256)
        } else {
            None
        }
    }

    /// The lowercase hex digest of `data`.
    pub fn hex(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 => to_hex(&Md5::digest(data)),
            Algorithm::Sha256 => to_hex(&Sha256::digest(data)),
        }
    }
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xF) as usize] as char);
    }
    s
}

/// What is kept of a user's password: `H(username:realm:password)` for
/// each algorithm, in hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// HA1 with MD5.
    pub ha1_md5: String,
    /// HA1 with SHA-256.
    pub ha1_sha256: String,
}

impl Credentials {
    /// Derives both HA1 values; the password is not kept.
    pub fn from_password(username: &str, realm: &str, password: &str) -> Self {
        let a1 = format!("{username}:{realm}:{password}");
        Self {
            ha1_md5: Algorithm::Md5.hex(a1.as_bytes()),
            ha1_sha256: Algorithm::Sha256.hex(a1.as_bytes()),
        }
    }

    /// The HA1 for `algorithm`.
    pub fn ha1(&self, algorithm: Algorithm) -> &str {
        match algorithm {
            Algorithm::Md5 => &self.ha1_md5,
            Algorithm::Sha256 => &self.ha1_sha256,
        }
    }
}
