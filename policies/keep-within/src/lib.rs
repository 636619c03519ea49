//! Retention: keep every backup made within a duration before now (and
//! always the newest), delete older ones.
//!
//! config: `{ within = "30d" }`; units s, m, h, d, w; combinable ("1d12h").

use rcbackup_guest::{export_policy, Backup, Decision, Retention, Timestamp};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    within: String,
}

/// "1d12h" -> seconds. The error says what is wrong without quoting the
/// value: config values are never shown.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    const EXPECTED: &str = "expected a duration such as \"30d\" or \"1d12h\": \
         numbers, each followed by a unit s, m, h, d or w";
    let mut total: i64 = 0;
    let mut digits = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => {
                return Err(format!(
                    "config key `within` has an unknown unit; {EXPECTED}"
                ))
            }
        };
        let n: i64 = digits
            .parse()
            .map_err(|_| format!("config key `within` has a unit without a number; {EXPECTED}"))?;
        total = total.saturating_add(n.saturating_mul(unit));
        digits.clear();
    }
    if !digits.is_empty() || total <= 0 {
        return Err(format!("config key `within` is not a duration; {EXPECTED}"));
    }
    Ok(total)
}

pub fn keep_within(series: &[Backup], now: Timestamp, within: i64, label: &str) -> Vec<Decision> {
    let newest = series
        .iter()
        .max_by(|a, b| a.created.cmp(&b.created).then_with(|| a.name.cmp(&b.name)))
        .map(|b| b.name.clone());
    series
        .iter()
        .map(|b| {
            let age = now - b.created;
            let (keep, reason) = if age <= within {
                (true, format!("made within {label} of now"))
            } else if Some(&b.name) == newest.as_ref() {
                (true, "the newest backup is always kept".to_string())
            } else {
                (false, format!("older than {label}"))
            };
            Decision {
                name: b.name.clone(),
                keep,
                reason,
            }
        })
        .collect()
}

struct KeepWithin;

impl Retention for KeepWithin {
    fn retention(series: Vec<Backup>, now: Timestamp) -> Result<Vec<Decision>, String> {
        let config: Config = rcbackup_guest::config()?;
        let within = parse_duration(&config.within)?;
        Ok(keep_within(&series, now, within, &config.within))
    }
}

export_policy!(KeepWithin: retention);
