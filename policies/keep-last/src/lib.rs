//! Retention: keep the newest `keep` backups of the series, delete the rest.
//! The same rule, order and reasons as rcbackup's built-in default.
//!
//! config: `{ keep = 10 }`

use rcbackup_guest::{export_policy, Backup, Decision, Retention, Timestamp};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_keep")]
    keep: u32,
}

fn default_keep() -> u32 {
    10
}

/// Newest first by creation time. The sort is stable and the host hands the
/// series over newest first at full precision, so backups made in the same
/// second keep the host's order and this agrees with the built-in rule.
pub fn newest_first(series: &mut [Backup]) {
    series.sort_by_key(|b| std::cmp::Reverse(b.created));
}

pub fn keep_last(mut series: Vec<Backup>, keep: usize) -> Vec<Decision> {
    newest_first(&mut series);
    series
        .into_iter()
        .enumerate()
        .map(|(i, b)| Decision {
            name: b.name,
            keep: i < keep,
            reason: if i < keep {
                format!("one of the newest {keep} (#{})", i + 1)
            } else {
                format!("older than the newest {keep} (#{})", i + 1)
            },
        })
        .collect()
}

struct KeepLast;

impl Retention for KeepLast {
    fn retention(series: Vec<Backup>, _now: Timestamp) -> Result<Vec<Decision>, String> {
        let config: Config = rcbackup_guest::config()?;
        if config.keep == 0 {
            return Err("keep = 0 would delete every backup; set 1 or more".into());
        }
        Ok(keep_last(series, config.keep as usize))
    }
}

export_policy!(KeepLast: retention);
