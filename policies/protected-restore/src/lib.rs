//! Restore approval: deny restores into databases the config marks as
//! protected, unless the maintenance window is open; let others through to
//! the usual prompt (or --noinput).
//!
//! config: `{ protected = ["default"], protect_media = false, window = { weekday = "sun", start = "02:00", end = "04:00" } }`
//! The window is in UTC; `weekday` is optional (every day without it);
//! `end` before `start` spans midnight.

use rcbackup_guest::{
    export_policy, Approval, MediaRestoreRequest, RestoreApproval, RestoreRequest,
};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    protected: Vec<String>,
    window: Option<Window>,
    /// Allow unprotected restores without asking.
    #[serde(default)]
    allow_others: bool,
    /// Treat `mediarestore` like a protected database.
    #[serde(default)]
    protect_media: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Window {
    weekday: Option<String>,
    start: String,
    end: String,
}

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Minutes since midnight of the config key `key` (`window.start`); the
/// error names the key, never the value.
fn minutes(hhmm: &str, key: &str) -> Result<i64, String> {
    let bad = || format!("config key `{key}` is not a time of day HH:MM, e.g. \"02:00\"");
    let (h, m) = hhmm.split_once(':').ok_or_else(bad)?;
    let h: i64 = h.parse().map_err(|_| bad())?;
    let m: i64 = m.parse().map_err(|_| bad())?;
    if !(0..24).contains(&h) || !(0..60).contains(&m) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

impl Window {
    fn is_open(&self, now: i64) -> Result<bool, String> {
        let days = now.div_euclid(86_400);
        // 1970-01-01 was a Thursday (index 3).
        let weekday = WEEKDAYS[(days + 3).rem_euclid(7) as usize];
        let minute = now.rem_euclid(86_400) / 60;
        let (start, end) = (
            minutes(&self.start, "window.start")?,
            minutes(&self.end, "window.end")?,
        );
        let day_ok = match &self.weekday {
            None => true,
            Some(w) => {
                let w = w.to_ascii_lowercase();
                if w.len() < 3 || !WEEKDAYS.iter().any(|d| w.starts_with(d)) {
                    return Err(format!(
                        "config key `window.weekday` is not a day of the week; expected one of {}",
                        WEEKDAYS.join(", ")
                    ));
                }
                w.starts_with(weekday)
            }
        };
        let time_ok = if start <= end {
            (start..end).contains(&minute)
        } else {
            minute >= start || minute < end
        };
        Ok(day_ok && time_ok)
    }
}

/// The answer for a restore of `what`, protected or not, at `now`.
fn decide(config: &Config, protected: bool, what: &str, now: i64) -> Approval {
    if !protected {
        return if config.allow_others {
            Approval::Allow
        } else {
            Approval::AskUser
        };
    }
    match config.window.as_ref().map(|w| w.is_open(now)) {
        Some(Ok(true)) => {
            rcbackup_guest::log::info(&format!(
                "{what} is protected; allowed inside the maintenance window"
            ));
            Approval::Allow
        }
        Some(Err(e)) => Approval::Deny(format!("bad maintenance window: {e}")),
        Some(Ok(false)) => Approval::Deny(format!(
            "{what} is protected and the maintenance window is closed"
        )),
        None => Approval::Deny(format!(
            "{what} is protected and no maintenance window is configured"
        )),
    }
}

struct ProtectedRestore;

impl RestoreApproval for ProtectedRestore {
    fn approve_restore(req: RestoreRequest) -> Approval {
        match rcbackup_guest::config::<Config>() {
            Ok(c) => {
                let protected = c.protected.contains(&req.database);
                decide(&c, protected, &format!("`{}`", req.database), req.now)
            }
            Err(e) => Approval::Deny(e),
        }
    }

    fn approve_media_restore(req: MediaRestoreRequest) -> Approval {
        match rcbackup_guest::config::<Config>() {
            Ok(c) => decide(&c, c.protect_media, "the media folder", req.now),
            Err(e) => Approval::Deny(e),
        }
    }
}

export_policy!(ProtectedRestore: restore_approval);
