//! `media_versions_keep`: how far back `mediarestore --at` must reach.
//! Written as a count of backups (`10`) or an age (`"30d"`, `"12h"`, `"2w"`).

use std::time::Duration;

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionsKeep {
    /// The newest N backups stay restorable (the latest one counts).
    Count(u64),
    /// Every moment of this long a past stays restorable.
    Age(Duration),
}

/// The longest age `media_versions_keep` takes: 100 years (36500d,
/// 876000h, 5214w). Longer ages would overflow the time arithmetic; leave
/// the key out to keep every version.
pub const MAX_AGE: Duration = Duration::from_secs(36_500 * 86_400);

impl VersionsKeep {
    pub fn from_toml(v: &toml::Value) -> Result<VersionsKeep, String> {
        const HOW: &str =
            "write a count of backups such as 10, or an age such as \"30d\" (units h, d, w)";
        match v {
            toml::Value::Integer(n) if *n >= 1 => Ok(VersionsKeep::Count(*n as u64)),
            toml::Value::Integer(n) => Err(format!(
                "is {n}; {HOW} (1 or more; leave the key out to keep every version)"
            )),
            toml::Value::String(s) => Self::parse_age(s)
                .ok_or_else(|| format!("`{s}` is not understood; {HOW}"))?
                .ok_or_else(|| {
                    format!(
                        "`{s}` is longer than rcbackup can count back; an age is at most 36500d (876000h, 5214w: 100 years). Leave the key out to keep every version"
                    )
                }),
            other => Err(format!("is a {}; {HOW}", other.type_str())),
        }
    }

    /// `None`: not an age; `Some(None)`: an age beyond [`MAX_AGE`].
    fn parse_age(s: &str) -> Option<Option<VersionsKeep>> {
        let unit = s.chars().last()?;
        let secs: u64 = match unit {
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return None,
        };
        let digits = &s[..s.len() - 1];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // All digits: a parse failure is a number too large for u64.
        let Ok(n) = digits.parse::<u64>() else {
            return Some(None);
        };
        if n == 0 {
            return None;
        }
        let age = n
            .checked_mul(secs)
            .map(Duration::from_secs)
            .filter(|age| *age <= MAX_AGE);
        Some(age.map(VersionsKeep::Age))
    }

    /// Of the backups stamped `stamps` (oldest first), the oldest that must
    /// stay restorable. Everything older than it may go. With an age, the
    /// newest backup older than the cut-off is kept too: `--at` a time just
    /// inside the window restores that backup.
    pub fn oldest_kept<'s>(
        &self,
        stamps: &[(&'s str, DateTime<Utc>)],
        now: DateTime<Utc>,
    ) -> Option<&'s str> {
        let i = match *self {
            VersionsKeep::Count(n) => stamps.len().saturating_sub(n as usize),
            VersionsKeep::Age(age) => {
                // Checked: an age past the start of time keeps everything.
                let cutoff = chrono::Duration::from_std(age)
                    .ok()
                    .and_then(|age| now.checked_sub_signed(age))
                    .unwrap_or(DateTime::<Utc>::MIN_UTC);
                let inside = stamps
                    .iter()
                    .position(|(_, t)| *t >= cutoff)
                    .unwrap_or(stamps.len());
                inside.saturating_sub(1)
            }
        };
        stamps.get(i).map(|(s, _)| *s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn stamps() -> Vec<(&'static str, DateTime<Utc>)> {
        (1..=5)
            .map(|d| {
                let name: &'static str = Box::leak(format!("s{d}").into_boxed_str());
                (name, Utc.with_ymd_and_hms(2026, 1, d, 0, 0, 0).unwrap())
            })
            .collect()
    }

    #[test]
    fn count_keeps_newest() {
        let now = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
        assert_eq!(
            VersionsKeep::Count(2).oldest_kept(&stamps(), now),
            Some("s4")
        );
        assert_eq!(
            VersionsKeep::Count(9).oldest_kept(&stamps(), now),
            Some("s1")
        );
        assert_eq!(VersionsKeep::Count(1).oldest_kept(&[], now), None);
    }

    #[test]
    fn an_age_beyond_the_start_of_time_keeps_everything() {
        // Issue 8, item 4: `now - age` panicked ("DateTime - TimeDelta
        // overflowed") after the backup when the age was huge.
        let now = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
        for secs in [u64::MAX, i64::MAX as u64 / 1000, 99_999_999 * 7 * 86_400] {
            let keep = VersionsKeep::Age(Duration::from_secs(secs));
            assert_eq!(keep.oldest_kept(&stamps(), now), Some("s1"), "{secs}");
        }
        assert_eq!(
            VersionsKeep::Count(u64::MAX).oldest_kept(&stamps(), now),
            Some("s1")
        );
    }

    #[test]
    fn age_keeps_the_one_before_the_window() {
        let now = Utc.with_ymd_and_hms(2026, 1, 5, 12, 0, 0).unwrap();
        // Cut-off Jan 3 12:00: s4 and s5 are inside, s3 covers Jan 3 12:00..Jan 4.
        let keep = VersionsKeep::Age(Duration::from_secs(2 * 86_400));
        assert_eq!(keep.oldest_kept(&stamps(), now), Some("s3"));
        // Nothing inside the window: the newest stays.
        let later = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(keep.oldest_kept(&stamps(), later), Some("s5"));
    }
}
