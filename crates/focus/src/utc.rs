//! UTC calendar time from seconds since the epoch (Howard Hinnant's
//! days-to-civil), for the dates confab writes: RFC 7231 `Date` headers
//! and RFC 3339 timestamps.

/// A moment in UTC, to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    year: i64,
    month: u32,
    day: u32,
    secs_of_day: u64,
    /// Days since 1970-01-01 (a Thursday).
    days: u64,
}

impl UtcTime {
    /// The calendar time `secs` seconds after 1970-01-01T00:00:00Z.
    pub fn from_unix(secs: u64) -> Self {
        let days = secs / 86_400;
        let z = days as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        Self {
            year: yoe + era * 400 + i64::from(month <= 2),
            month,
            day,
            secs_of_day: secs % 86_400,
            days,
        }
    }

    fn hms(&self) -> (u64, u64, u64) {
        let s = self.secs_of_day;
        (s / 3600, s % 3600 / 60, s % 60)
    }

    /// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 7231 §7.1.1.1).
    pub fn http_date(&self) -> String {
        const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let (h, m, s) = self.hms();
        format!(
            "{}, {:02} {} {} {h:02}:{m:02}:{s:02} GMT",
            DAYS[(self.days % 7) as usize],
            self.day,
            MONTHS[(self.month - 1) as usize],
            self.year,
        )
    }

    /// `1994-11-06T08:49:37Z` (RFC 3339).
    pub fn rfc3339(&self) -> String {
        let (h, m, s) = self.hms();
        format!(
            "{:04}-{:02}-{:02}T{h:02}:{m:02}:{s:02}Z",
            self.year, self.month, self.day
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc_7231_and_rfc_3339() {
        let t = |s| UtcTime::from_unix(s);
        assert_eq!(t(0).http_date(), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(t(784_111_777).http_date(), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(
            t(1_796_470_671).http_date(),
            "Sat, 05 Dec 2026 11:37:51 GMT"
        );
        assert_eq!(t(0).rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(t(951_782_400).rfc3339(), "2000-02-29T00:00:00Z");
        assert_eq!(t(1_796_606_898).rfc3339(), "2026-12-07T01:28:18Z");
    }
}
