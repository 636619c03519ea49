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

/// "1d12h" -> seconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
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
            _ => return Err(format!("`{text}`: unknown unit `{c}`; use s, m, h, d or w")),
        };
        let n: i64 = digits
            .parse()
            .map_err(|_| format!("`{text}`: a number must come before `{c}`"))?;
        total = total.saturating_add(n.saturating_mul(unit));
        digits.clear();
    }
    if !digits.is_empty() || total <= 0 {
        return Err(format!(
            "`{text}` is not a duration such as \"30d\" or \"1d12h\""
        ));
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
