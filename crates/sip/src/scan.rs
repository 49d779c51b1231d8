//! Low-level lexical helpers for RFC 3261 §25 grammar: tokens, linear white
//! space, quoted strings and `;name=value` parameter lists.

use crate::error::ParseError;

/// RFC 3261 `token` characters.
pub(crate) fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

/// True when every character is a token character and the string is not empty.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_token_char)
}

/// Linear white space after header unfolding: spaces and tabs.
pub(crate) fn is_ws(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Splits a header value on top-level commas: commas inside quoted strings
/// or angle brackets do not count. Elements are trimmed.
pub(crate) fn split_commas(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth_angle = false;
    let mut in_quote = false;
    let mut escaped = false;
    let mut start = 0;
    for (i, c) in value.char_indices() {
        if in_quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_quote = false;
            }
            continue;
        }
        match c {
            '"' => in_quote = true,
            '<' => depth_angle = true,
            '>' => depth_angle = false,
            ',' if !depth_angle => {
                out.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(value[start..].trim());
    out
}

/// Reads a quoted string starting at `s[0] == '"'`. Returns the unescaped
/// content and the rest of the input after the closing quote.
pub(crate) fn quoted_string(s: &str) -> Result<(String, &str), ParseError> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    if chars.next().map(|(_, c)| c) != Some('"') {
        return Err(ParseError::bad("expected a quoted string"));
    }
    let mut escaped = false;
    for (i, c) in chars {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            return Ok((out, &s[i + 1..]));
        } else {
            out.push(c);
        }
    }
    Err(ParseError::bad("unterminated quoted string"))
}

/// A generic parameter: `name` or `name=value` (value unquoted if it was quoted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The parameter name as received.
    pub name: String,
    /// The value, if any.
    pub value: Option<String>,
}

/// An ordered list of parameters with case-insensitive lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<Param>);

impl Params {
    /// The value of a parameter: `None` if absent, `Some(None)` if present without value.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value.as_deref())
    }

    /// The value of a parameter that has one.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.get(name).flatten()
    }

    /// True when the parameter is present, with or without a value.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets (or replaces) a parameter.
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        let value = value.map(str::to_owned);
        if let Some(p) = self
            .0
            .iter_mut()
            .find(|p| p.name.eq_ignore_ascii_case(name))
        {
            p.value = value;
        } else {
            self.0.push(Param {
                name: name.to_owned(),
                value,
            });
        }
    }

    /// Removes a parameter.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|p| !p.name.eq_ignore_ascii_case(name));
    }

    /// Parses `;a=b ; c ; d="q"` (the leading `;` is required for each
    /// element). LWS around `;` and `=` is allowed (RFC 3261 §7.3.1).
    pub(crate) fn parse_header_params(mut s: &str) -> Result<Self, ParseError> {
        let mut out = Vec::new();
        loop {
            s = s.trim_start_matches(is_ws);
            if s.is_empty() {
                return Ok(Self(out));
            }
            let rest = s
                .strip_prefix(';')
                .ok_or_else(|| {
                    ParseError::bad(format!(
                        "unexpected text {:?} where a parameter was expected",
                        truncate(s)
                    ))
                })?
                .trim_start_matches(is_ws);
            let name_end = rest.find(|c: char| !is_token_char(c)).unwrap_or(rest.len());
            let name = &rest[..name_end];
            if name.is_empty() {
                return Err(ParseError::bad("empty parameter"));
            }
            let mut after = rest[name_end..].trim_start_matches(is_ws);
            let value = if let Some(v) = after.strip_prefix('=') {
                let v = v.trim_start_matches(is_ws);
                if v.starts_with('"') {
                    let (q, r) = quoted_string(v)?;
                    after = r;
                    Some(q)
                } else {
                    let end = v
                        .find(|c: char| !(is_token_char(c) || "[]:".contains(c)))
                        .unwrap_or(v.len());
                    if end == 0 {
                        return Err(ParseError::bad(format!(
                            "parameter {name} has an empty value"
                        )));
                    }
                    after = &v[end..];
                    Some(v[..end].to_owned())
                }
            } else {
                None
            };
            out.push(Param {
                name: name.to_owned(),
                value,
            });
            s = after;
        }
    }
}

impl std::fmt::Display for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for p in &self.0 {
            match &p.value {
                Some(v)
                    if v.is_empty()
                        || !v.chars().all(|c| is_token_char(c) || "[]:".contains(c)) =>
                {
                    write!(
                        f,
                        ";{}=\"{}\"",
                        p.name,
                        v.replace('\\', "\\\\").replace('"', "\\\"")
                    )?
                }
                Some(v) => write!(f, ";{}={}", p.name, v)?,
                None => write!(f, ";{}", p.name)?,
            }
        }
        Ok(())
    }
}

/// Shortens a fragment of input for an error message.
pub(crate) fn truncate(s: &str) -> &str {
    match s.char_indices().nth(24) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Decodes `%XX` escapes (RFC 3261 §19.1.2). A `%` not followed by two hex
/// digits is an error.
pub(crate) fn unescape(s: &str) -> Result<String, ParseError> {
    if !s.contains('%') {
        return Ok(s.to_owned());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| ParseError::bad("bad % escape in URI"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ParseError::bad("escaped URI text is not UTF-8"))
}

/// Escapes the characters of `s` that are not allowed verbatim by `allowed`.
pub(crate) fn escape(s: &str, allowed: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if allowed(c) {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commas_respect_quotes_and_brackets() {
        let v = split_commas(r#""a, b" <sip:x@y;p=1,2>, <sip:z@w>"#);
        assert_eq!(v, vec![r#""a, b" <sip:x@y;p=1,2>"#, "<sip:z@w>"]);
    }

    #[test]
    fn params_with_lws() {
        let p = Params::parse_header_params(" ;   tag    = 1918181833n ; lr").unwrap();
        assert_eq!(p.value("TAG"), Some("1918181833n"));
        assert!(p.has("lr"));
        assert!(Params::parse_header_params(";;").is_err());
    }

    #[test]
    fn escapes() {
        assert_eq!(
            unescape("sips%3Auser%40example.com").unwrap(),
            "sips:user@example.com"
        );
        assert_eq!(unescape("null-%00-null").unwrap(), "null-\0-null");
        assert!(unescape("bad%4").is_err());
    }
}
