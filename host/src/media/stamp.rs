//! The UTC time stamp that names a media backup's version folder and file
//! list. Sortable as text, no `:` (not every remote accepts it), and to the
//! millisecond so that two backups in one second do not share a folder.

use chrono::{DateTime, NaiveDateTime, Utc};

const FORMAT: &str = "%Y-%m-%dT%H%M%S%.3fZ";

pub fn format(t: DateTime<Utc>) -> String {
    t.format(FORMAT).to_string()
}

pub fn parse(s: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(s, FORMAT)
        .ok()
        .map(|n| n.and_utc())
}

/// A time given on the command line: RFC 3339 (`2026-11-26T21:00:00Z`,
/// offsets allowed), or a date and time without offset taken as UTC
/// (`2026-11-26 21:00`, `2026-11-26T21:00:00`), or a plain date (its end,
/// 23:59:59.999 UTC, "as it was on that day"), or a version stamp itself.
pub fn parse_user_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Some(t) = parse(s) {
        return Some(t);
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, f) {
            return Some(n.and_utc());
        }
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_milli_opt(23, 59, 59, 999))
        .map(|n| n.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn round_trip_and_order() {
        let a = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let b = a + chrono::Duration::milliseconds(7);
        assert_eq!(format(a), "2026-01-02T030405.000Z");
        assert_eq!(parse(&format(b)), Some(b));
        assert!(format(a) < format(b));
    }

    #[test]
    fn user_times() {
        let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 0).unwrap();
        assert_eq!(parse_user_time("2026-01-02T03:04:00Z"), Some(t));
        assert_eq!(parse_user_time("2026-01-02T04:04:00+01:00"), Some(t));
        assert_eq!(parse_user_time("2026-01-02 03:04"), Some(t));
        assert_eq!(
            parse_user_time("2026-01-02"),
            Some(
                Utc.with_ymd_and_hms(2026, 1, 2, 23, 59, 59).unwrap()
                    + chrono::Duration::milliseconds(999)
            )
        );
        assert_eq!(parse_user_time("yesterday"), None);
    }
}
