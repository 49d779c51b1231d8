//! Framing a byte stream (TCP, TLS) into messages by Content-Length
//! (RFC 3261 §18.3). Sans-IO: bytes in, complete frames out.

use bytes::{Bytes, BytesMut};

use crate::error::FrameError;
use crate::header::HeaderName;
use crate::parse::find_head_end;

/// Collects stream bytes and cuts them into whole messages.
#[derive(Debug)]
pub struct StreamFramer {
    buf: BytesMut,
    max_message: usize,
}

impl StreamFramer {
    /// A framer refusing messages larger than `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            max_message,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered and not yet framed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete message, `None` when more bytes are needed. After
    /// an error the stream cannot be resynchronised and should be closed.
    pub fn next_frame(&mut self) -> Option<Result<Bytes, FrameError>> {
        // RFC 5626 keep-alives (CRLF) between messages are skipped.
        let skip = self
            .buf
            .iter()
            .take_while(|b| **b == b'\r' || **b == b'\n')
            .count();
        let _ = self.buf.split_to(skip);
        if self.buf.is_empty() {
            return None;
        }
        let Some((head_end, body_start)) = find_head_end(&self.buf) else {
            if self.buf.len() > self.max_message {
                return Some(Err(FrameError::TooLarge {
                    limit: self.max_message,
                }));
            }
            return None;
        };
        let head = match std::str::from_utf8(&self.buf[..head_end]) {
            Ok(h) => h,
            Err(_) => {
                return Some(Err(FrameError::Malformed(
                    "header block is not UTF-8".into(),
                )))
            }
        };
        let mut content_length = None;
        for line in head.split('\n') {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            if line.starts_with([' ', '\t']) {
                continue;
            }
            if HeaderName::new(name.trim()) == HeaderName::CONTENT_LENGTH {
                match value.trim().parse::<usize>() {
                    Ok(n) => content_length = Some(n),
                    Err(_) => {
                        return Some(Err(FrameError::Malformed(format!(
                            "bad Content-Length {:?}",
                            value.trim()
                        ))))
                    }
                }
            }
        }
        // On a stream Content-Length is mandatory (§18.3); treat absence as an empty body.
        let total = body_start + content_length.unwrap_or(0);
        if total > self.max_message {
            return Some(Err(FrameError::TooLarge {
                limit: self.max_message,
            }));
        }
        if self.buf.len() < total {
            return None;
        }
        Some(Ok(self.buf.split_to(total).freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"MESSAGE sip:r@h SIP/2.0\r\nContent-Length: 5\r\nl: 5\r\n\r\nhello";

    #[test]
    fn byte_by_byte() {
        let mut f = StreamFramer::new(65536);
        let mut got = Vec::new();
        for chunk in [b"\r\n\r\n".as_slice(), MSG, MSG].concat().chunks(1) {
            f.push(chunk);
            while let Some(frame) = f.next_frame() {
                got.push(frame.unwrap());
            }
        }
        assert_eq!(got.len(), 2);
        assert_eq!(&got[0][..], MSG);
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn limits() {
        let mut f = StreamFramer::new(40);
        f.push(MSG);
        assert_eq!(
            f.next_frame(),
            Some(Err(FrameError::TooLarge { limit: 40 }))
        );
        let mut f = StreamFramer::new(1000);
        f.push(b"OPTIONS sip:x SIP/2.0\r\nContent-Length: -1\r\n\r\n");
        assert!(matches!(
            f.next_frame(),
            Some(Err(FrameError::Malformed(_)))
        ));
        let mut f = StreamFramer::new(100);
        f.push(&[b'A'; 101]);
        assert!(matches!(
            f.next_frame(),
            Some(Err(FrameError::TooLarge { .. }))
        ));
    }
}
