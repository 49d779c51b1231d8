//! The `WWW-Authenticate` challenge and the `Authorization` answer.

use crate::credentials::Algorithm;
use crate::AuthError;

/// A challenge, printed as the value of `WWW-Authenticate` (401) or
/// `Proxy-Authenticate` (407).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The protection space.
    pub realm: String,
    /// The server's nonce.
    pub nonce: String,
    /// The algorithm asked for.
    pub algorithm: Algorithm,
    /// The previous nonce had expired: the client may retry with this one
    /// without asking its user again.
    pub stale: bool,
}

impl Challenge {
    /// The header value.
    pub fn to_header(&self) -> String {
        let mut s = format!(
            "Digest realm=\"{}\", nonce=\"{}\", algorithm={}, qop=\"auth\"",
            escape(&self.realm),
            self.nonce,
            self.algorithm.name()
        );
        if self.stale {
            s.push_str(", stale=true");
        }
        s
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A client's answer to a challenge (RFC 7616 §3.4), `qop=auth` only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// Who answers.
    pub username: String,
    /// The realm answered for.
    pub realm: String,
    /// The nonce answered.
    pub nonce: String,
    /// The Request-URI the response covers.
    pub uri: String,
    /// The response digest, lowercase hex.
    pub response: String,
    /// The algorithm (MD5 when absent).
    pub algorithm: Algorithm,
    /// The client's nonce.
    pub cnonce: String,
    /// How many times the client has used this nonce.
    pub nc: u32,
}

impl Authorization {
    /// Reads an `Authorization` or `Proxy-Authorization` header value.
    pub fn parse(value: &str) -> Result<Self, AuthError> {
        let rest = value.trim_start();
        let (scheme, params) = rest.split_at(rest.find(char::is_whitespace).unwrap_or(rest.len()));
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(AuthError::NotDigest);
        }
        let mut username = None;
        let mut realm = None;
        let mut nonce = None;
        let mut uri = None;
        let mut response = None;
        let mut algorithm = Algorithm::Md5;
        let mut cnonce = None;
        let mut nc = None;
        let mut qop = None;
        for (name, v) in Params::new(params) {
            let v = v?;
            match name.to_ascii_lowercase().as_str() {
                "username" => username = Some(v),
                "realm" => realm = Some(v),
                "nonce" => nonce = Some(v),
                "uri" => uri = Some(v),
                "response" => response = Some(v.to_ascii_lowercase()),
                "algorithm" => algorithm = Algorithm::from_name(&v).ok_or(AuthError::Algorithm)?,
                "cnonce" => cnonce = Some(v),
                "nc" => {
                    let ok = v.len() == 8 && v.bytes().all(|b| b.is_ascii_hexdigit());
                    let n = u32::from_str_radix(&v, 16).ok().filter(|_| ok);
                    nc = Some(n.ok_or(AuthError::Malformed("nc"))?);
                }
                "qop" => qop = Some(v),
                _ => {}
            }
        }
        match qop {
            Some(q) if q.eq_ignore_ascii_case("auth") => {}
            Some(_) => return Err(AuthError::Qop),
            None => return Err(AuthError::Missing("qop")),
        }
        let response = response.ok_or(AuthError::Missing("response"))?;
        let hex_len = match algorithm {
            Algorithm::Md5 => 32,
            Algorithm::Sha256 => 64,
        };
        if response.len() != hex_len || !response.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AuthError::Malformed("response"));
        }
        Ok(Self {
            username: username.ok_or(AuthError::Missing("username"))?,
            realm: realm.ok_or(AuthError::Missing("realm"))?,
            nonce: nonce.ok_or(AuthError::Missing("nonce"))?,
            uri: uri.ok_or(AuthError::Missing("uri"))?,
            response,
            algorithm,
            cnonce: cnonce.ok_or(AuthError::Missing("cnonce"))?,
            nc: nc.ok_or(AuthError::Missing("nc"))?,
        })
    }

    /// The response this answer should carry for `method`, given the
    /// user's HA1 for its algorithm (RFC 7616 §3.4.1, qop=auth).
    pub fn expected_response(&self, method: &str, ha1: &str) -> String {
        let h = |s: String| self.algorithm.hex(s.as_bytes());
        let ha2 = h(format!("{method}:{}", self.uri));
        h(format!(
            "{ha1}:{}:{:08x}:{}:auth:{ha2}",
            self.nonce, self.nc, self.cnonce
        ))
    }
}

/// Iterates `name=value` pairs separated by commas; values are tokens or
/// quoted strings with backslash escapes.
struct Params<'a> {
    rest: &'a str,
}

impl<'a> Params<'a> {
    fn new(s: &'a str) -> Self {
        Self { rest: s }
    }
}

impl Iterator for Params<'_> {
    type Item = (String, Result<String, AuthError>);

    fn next(&mut self) -> Option<Self::Item> {
        let s = self
            .rest
            .trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        if s.is_empty() {
            return None;
        }
        let Some(eq) = s.find('=') else {
            self.rest = "";
            return Some((s.trim().to_string(), Err(AuthError::Malformed("parameter"))));
        };
        let name = s[..eq].trim().to_string();
        let v = s[eq + 1..].trim_start();
        if let Some(quoted) = v.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, e)) => out.push(e),
                        None => break,
                    },
                    '"' => {
                        self.rest = &quoted[i + 1..];
                        return Some((name, Ok(out)));
                    }
                    _ => out.push(c),
                }
            }
            self.rest = "";
            Some((name, Err(AuthError::Malformed("quoted string"))))
        } else {
            let end = v.find(',').unwrap_or(v.len());
            self.rest = &v[end..];
            Some((name, Ok(v[..end].trim().to_string())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Credentials;

    /// RFC 7616 §3.9.1's example (an HTTP GET; the digest is the same for a
    /// SIP method): the responses the RFC prints for SHA-256 and MD5.
    fn rfc7616(algorithm: &str, response: &str) -> String {
        format!(
            "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", \
             uri=\"/dir/index.html\", algorithm={algorithm}, \
             nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", nc=00000001, \
             cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", qop=auth, \
             response=\"{response}\", \
             opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
        )
    }

    #[test]
    fn rfc7616_examples_verify_with_both_algorithms() {
        let creds = Credentials::from_password("Mufasa", "http-auth@example.org", "Circle of Life");
        for (alg, resp) in [
            (
                "SHA-256",
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
            ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ] {
            let a = Authorization::parse(&rfc7616(alg, resp)).expect("parses");
            assert_eq!(a.username, "Mufasa");
            assert_eq!(a.nc, 1);
            assert_eq!(a.expected_response("GET", creds.ha1(a.algorithm)), resp);
        }
    }

    #[test]
    fn bad_answers_are_refused_with_a_reason() {
        let ok = rfc7616("MD5", "8ca523f5e9506fed4657c9700eebdbec");
        assert_eq!(
            Authorization::parse("Basic QWxhZGRpbjpvcGVu"),
            Err(AuthError::NotDigest)
        );
        assert_eq!(
            Authorization::parse(&ok.replace("qop=auth, ", "")),
            Err(AuthError::Missing("qop"))
        );
        assert_eq!(
            Authorization::parse(&ok.replace("qop=auth", "qop=auth-int")),
            Err(AuthError::Qop)
        );
        assert_eq!(
            Authorization::parse(&ok.replace("algorithm=MD5", "algorithm=SHA-512-256")),
            Err(AuthError::Algorithm)
        );
        assert_eq!(
            Authorization::parse(&ok.replace("nc=00000001", "nc=1")),
            Err(AuthError::Malformed("nc"))
        );
        assert_eq!(
            Authorization::parse(&ok.replace("8ca523f5e9506fed4657c9700eebdbec", "8ca5")),
            Err(AuthError::Malformed("response"))
        );
        assert!(Authorization::parse("Digest username=\"unterminated").is_err());
        assert!(Authorization::parse("Digest").is_err());
    }

    #[test]
    fn challenges_print_quoted_and_escaped() {
        let c = Challenge {
            realm: "con\"fab".into(),
            nonce: "abc".into(),
            algorithm: Algorithm::Sha256,
            stale: true,
        };
        assert_eq!(
            c.to_header(),
            "Digest realm=\"con\\\"fab\", nonce=\"abc\", algorithm=SHA-256, qop=\"auth\", stale=true"
        );
    }
}
