//! The built-in retention rule (keep the newest N of one series) and the
//! safety checks every retention decision must pass, built-in or policy.

use std::collections::BTreeSet;

use crate::record::BackupRecord;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub name: String,
    pub keep: bool,
    pub reason: String,
}

/// Newest first, by created time then name, so order is total and stable.
pub fn sort_newest_first(series: &mut [BackupRecord]) {
    series.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.name.cmp(&a.name)));
}

/// Keep the newest `keep` backups of `series` (one database), delete the rest.
pub fn keep_last(series: &[BackupRecord], keep: usize) -> Vec<Decision> {
    let mut sorted = series.to_vec();
    sort_newest_first(&mut sorted);
    sorted
        .iter()
        .enumerate()
        .map(|(i, b)| Decision {
            name: b.name.clone(),
            keep: i < keep,
            reason: if i < keep {
                format!("one of the newest {keep} (#{})", i + 1)
            } else {
                format!("older than the newest {keep} (#{})", i + 1)
            },
        })
        .collect()
}

/// Refuses a decision set as a whole when it names a backup outside the
/// series, misses one, decides one twice, or would delete the newest.
pub fn check_decisions(series: &[BackupRecord], decisions: &[Decision]) -> Result<(), String> {
    let names: BTreeSet<&str> = series.iter().map(|b| b.name.as_str()).collect();
    let mut seen = BTreeSet::new();
    for d in decisions {
        if !names.contains(d.name.as_str()) {
            return Err(format!(
                "it names `{}`, which is not in the series it was given",
                d.name
            ));
        }
        if !seen.insert(d.name.as_str()) {
            return Err(format!("it decides on `{}` twice", d.name));
        }
    }
    if seen.len() != names.len() {
        return Err(format!(
            "it decided on {} of the {} backups it was given",
            seen.len(),
            names.len()
        ));
    }
    let mut sorted = series.to_vec();
    sort_newest_first(&mut sorted);
    if let Some(newest) = sorted.first() {
        if decisions.iter().any(|d| d.name == newest.name && !d.keep) {
            return Err(format!(
                "it would delete `{}`, the newest backup of the series",
                newest.name
            ));
        }
    }
    Ok(())
}

/// Keeps the backup this run just made whatever the decision says. It is
/// not always the newest: a concurrent run may have published a newer one
/// meanwhile, and keep-last would then drop ours. Deleting less is safe;
/// failing the run that made a good backup is not.
pub fn spare_just_made(decisions: &mut [Decision], just_made: &str) {
    for d in decisions
        .iter_mut()
        .filter(|d| d.name == just_made && !d.keep)
    {
        d.keep = true;
        d.reason = format!(
            "made by this run, kept although the rule said: {}",
            d.reason
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::database::EngineKind;
    use chrono::{TimeZone, Utc};

    pub fn rec(name: &str, secs: i64) -> BackupRecord {
        BackupRecord {
            format: 1,
            name: name.into(),
            database: "default".into(),
            tenant: None,
            engine: EngineKind::Sqlite,
            size: 1,
            sha256: String::new(),
            created: Utc.timestamp_opt(secs, 0).unwrap(),
            finished: Utc.timestamp_opt(secs, 0).unwrap(),
            tool: String::new(),
        }
    }

    #[test]
    fn keeps_newest() {
        let s = vec![rec("a", 1), rec("c", 3), rec("b", 2)];
        let d = keep_last(&s, 2);
        let deleted: Vec<_> = d
            .iter()
            .filter(|d| !d.keep)
            .map(|d| d.name.as_str())
            .collect();
        assert_eq!(deleted, ["a"]);
        check_decisions(&s, &d).unwrap();
    }

    #[test]
    fn refuses_unsafe_sets() {
        let s = vec![rec("a", 1), rec("b", 2)];
        let all_gone = vec![
            Decision {
                name: "a".into(),
                keep: false,
                reason: String::new(),
            },
            Decision {
                name: "b".into(),
                keep: false,
                reason: String::new(),
            },
        ];
        assert!(check_decisions(&s, &all_gone).is_err());
        let stranger = vec![Decision {
            name: "zzz".into(),
            keep: false,
            reason: String::new(),
        }];
        assert!(check_decisions(&s, &stranger).is_err());
    }
}
