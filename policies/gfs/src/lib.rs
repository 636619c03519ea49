//! Retention in the manner of restic's `--keep-*` options
//! (grandfather-father-son): keep the newest backup of each of the last N
//! hours, days, weeks, months and years, by the backups' own creation times
//! (UTC), plus the newest `last` backups.
//!
//! config: `{ last = 0, hourly = 0, daily = 7, weekly = 4, monthly = 12, yearly = 0 }`

use rcbackup_guest::time::civil;
use rcbackup_guest::{export_policy, Backup, Decision, Retention, Timestamp};
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub last: u32,
    pub hourly: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
    pub yearly: u32,
}

/// The bucket a time falls into, per period; equal keys share a bucket.
fn bucket(period: usize, t: Timestamp) -> i64 {
    let days = t.div_euclid(86_400);
    let (y, m, _) = civil(days);
    match period {
        0 => t.div_euclid(3600),
        1 => days,
        // Weeks start on Monday; 1970-01-01 was a Thursday.
        2 => (days + 3).div_euclid(7),
        3 => y * 12 + i64::from(m),
        _ => y,
    }
}

const PERIODS: [&str; 5] = ["hourly", "daily", "weekly", "monthly", "yearly"];

pub fn gfs(mut series: Vec<Backup>, config: &Config) -> Vec<Decision> {
    // Stable: same-second backups keep the host's newest-first order.
    series.sort_by_key(|b| std::cmp::Reverse(b.created));
    let mut left = [
        config.hourly,
        config.daily,
        config.weekly,
        config.monthly,
        config.yearly,
    ];
    let mut last_bucket: [Option<i64>; 5] = [None; 5];
    series
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let mut why = Vec::new();
            if (i as u32) < config.last {
                why.push(format!("one of the newest {}", config.last));
            }
            for p in 0..PERIODS.len() {
                let key = bucket(p, b.created);
                if left[p] > 0 && last_bucket[p] != Some(key) {
                    left[p] -= 1;
                    last_bucket[p] = Some(key);
                    why.push(format!("{} snapshot", PERIODS[p]));
                }
            }
            if i == 0 && why.is_empty() {
                why.push("the newest backup is always kept".into());
            }
            Decision {
                name: b.name.clone(),
                keep: !why.is_empty(),
                reason: if why.is_empty() {
                    "not the newest of any kept hour, day, week, month or year".into()
                } else {
                    why.join(", ")
                },
            }
        })
        .collect()
}

struct Gfs;

impl Retention for Gfs {
    fn retention(series: Vec<Backup>, _now: Timestamp) -> Result<Vec<Decision>, String> {
        let config: Config = rcbackup_guest::config()?;
        Ok(gfs(series, &config))
    }
}

export_policy!(Gfs: retention);
