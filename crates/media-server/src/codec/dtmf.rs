//! RFC 4733 telephone-event payloads, and the detector that turns a stream
//! of them (start, updates, three end packets) into one event per key press.

/// One decoded telephone-event payload (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code: 0–9, 10 = `*`, 11 = `#`, 12–15 = A–D.
    pub event: u8,
    /// The E bit.
    pub end: bool,
    /// Volume in -dBm0 (0–63).
    pub volume: u8,
    /// Duration in RTP clock units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the 4-byte payload.
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let p = payload.get(..4)?;
        Some(Self {
            event: p[0],
            end: p[1] & 0x80 != 0,
            volume: p[1] & 0x3F,
            duration: u16::from_be_bytes([p[2], p[3]]),
        })
    }

    /// The DTMF character, for events 0–15.
    pub fn digit(&self) -> Option<char> {
        b"0123456789*#ABCD"
            .get(self.event as usize)
            .map(|&c| c as char)
    }
}

/// A completed key press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dtmf {
    /// The key.
    pub digit: char,
    /// How long it was held, in milliseconds.
    pub duration_ms: u32,
}

/// Reports each event once, at its end; the redundant end packets and a
/// lost end (a new event starting) are handled (RFC 4733 §2.5.1.4).
#[derive(Debug, Default, Clone)]
pub struct DtmfDetector {
    current: Option<(u32, TelephoneEvent)>,
    last_reported_ts: Option<u32>,
}

impl DtmfDetector {
    /// Feeds one packet (its RTP timestamp and payload). `clock` is the RTP
    /// clock rate. Returns a key press when one completes.
    pub fn push(&mut self, timestamp: u32, payload: &[u8], clock: u32) -> Option<Dtmf> {
        let ev = TelephoneEvent::parse(payload)?;
        if self.last_reported_ts == Some(timestamp) {
            return None;
        }
        let to_ms = |d: u16| (d as u32 * 1000) / clock.max(1);
        let mut finished = None;
        if let Some((ts, prev)) = self.current {
            if ts != timestamp {
                // The previous event's end packets were all lost.
                self.last_reported_ts = Some(ts);
                finished = prev.digit().map(|digit| Dtmf {
                    digit,
                    duration_ms: to_ms(prev.duration),
                });
                self.current = None;
            }
        }
        if ev.end {
            self.current = None;
            self.last_reported_ts = Some(timestamp);
            return ev
                .digit()
                .map(|digit| Dtmf {
                    digit,
                    duration_ms: to_ms(ev.duration),
                })
                .or(finished);
        }
        self.current = Some((timestamp, ev));
        finished
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(event: u8, end: bool, duration: u16) -> [u8; 4] {
        let d = duration.to_be_bytes();
        [event, if end { 0x8A } else { 0x0A }, d[0], d[1]]
    }

    #[test]
    fn one_report_per_press() {
        let mut d = DtmfDetector::default();
        assert_eq!(d.push(1000, &pkt(10, false, 160), 8000), None);
        assert_eq!(d.push(1000, &pkt(10, false, 320), 8000), None);
        assert_eq!(
            d.push(1000, &pkt(10, true, 800), 8000),
            Some(Dtmf {
                digit: '*',
                duration_ms: 100
            })
        );
        assert_eq!(d.push(1000, &pkt(10, true, 800), 8000), None);
        assert_eq!(d.push(1000, &pkt(10, true, 800), 8000), None);
        // A press whose end packets were lost is reported when the next starts.
        assert_eq!(d.push(5000, &pkt(6, false, 160), 8000), None);
        assert_eq!(
            d.push(9000, &pkt(1, false, 160), 8000),
            Some(Dtmf {
                digit: '6',
                duration_ms: 20
            })
        );
        assert_eq!(TelephoneEvent::parse(&[1, 2]), None);
    }
}
