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
    spare(decisions, |name| name == just_made, "made by this run");
}

/// Keeps every backup `protected` names, saying `why` beside the reason the
/// rule gave for deleting it.
pub fn spare(decisions: &mut [Decision], protected: impl Fn(&str) -> bool, why: &str) {
    for d in decisions
        .iter_mut()
        .filter(|d| !d.keep && protected(&d.name))
    {
        d.keep = true;
        d.reason = format!("{why}, kept although the rule said: {}", d.reason);
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
            compression: None,
            adopted: None,
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

    fn d(name: &str, keep: bool) -> Decision {
        Decision {
            name: name.into(),
            keep,
            reason: String::new(),
        }
    }

    #[test]
    fn deleting_only_the_newest_is_refused() {
        // Not every backup goes, only the newest: still refused.
        let s = vec![rec("a", 1), rec("c", 3), rec("b", 2)];
        let why = check_decisions(&s, &[d("a", true), d("b", true), d("c", false)]).unwrap_err();
        assert!(why.contains("`c`, the newest"), "{why}");
        // The same set with the newest kept is accepted.
        check_decisions(&s, &[d("a", false), d("b", false), d("c", true)]).unwrap();
    }

    #[test]
    fn the_newest_is_found_by_time_then_name() {
        // Same second: the greater name is the newer (the order listings use).
        let s = vec![rec("x-2", 5), rec("x", 5), rec("old", 1)];
        assert!(check_decisions(&s, &[d("x-2", false), d("x", true), d("old", true)]).is_err());
        check_decisions(&s, &[d("x-2", true), d("x", false), d("old", false)]).unwrap();
    }

    #[test]
    fn deciding_one_backup_twice_is_refused() {
        let s = vec![rec("a", 1), rec("b", 2)];
        // Every backup decided, plus `a` a second time: the count matches
        // the series only if duplicates were not noticed.
        let why = check_decisions(&s, &[d("b", true), d("a", true), d("a", false)]).unwrap_err();
        assert!(why.contains("decides on `a` twice"), "{why}");
        let why = check_decisions(&s, &[d("a", true), d("a", true)]).unwrap_err();
        assert!(why.contains("twice"), "{why}");
    }

    #[test]
    fn missing_and_stranger_decisions_are_refused() {
        let s = vec![rec("a", 1), rec("b", 2), rec("c", 3)];
        let why = check_decisions(&s, &[d("c", true), d("b", true)]).unwrap_err();
        assert!(why.contains("decided on 2 of the 3"), "{why}");
        let why = check_decisions(&s, &[d("c", true), d("b", true), d("zzz", true)]).unwrap_err();
        assert!(why.contains("`zzz`"), "{why}");
        // An empty series takes an empty answer.
        check_decisions(&[], &[]).unwrap();
    }

    #[test]
    fn keep_last_keeps_exactly_n_newest_with_reasons() {
        let s = vec![rec("a", 1), rec("d", 4), rec("c", 3), rec("b", 2)];
        let got: Vec<(String, bool, String)> = keep_last(&s, 2)
            .into_iter()
            .map(|d| (d.name, d.keep, d.reason))
            .collect();
        let want = [
            ("d", true, "one of the newest 2 (#1)"),
            ("c", true, "one of the newest 2 (#2)"),
            ("b", false, "older than the newest 2 (#3)"),
            ("a", false, "older than the newest 2 (#4)"),
        ];
        let want: Vec<(String, bool, String)> = want
            .iter()
            .map(|(n, k, r)| (n.to_string(), *k, r.to_string()))
            .collect();
        assert_eq!(got, want);
        // Keeping more than there are deletes nothing.
        assert!(keep_last(&s, 9).iter().all(|d| d.keep));
    }

    #[test]
    fn sort_breaks_time_ties_by_name() {
        let mut s = vec![rec("a", 2), rec("b", 2), rec("c", 1), rec("z", 0)];
        sort_newest_first(&mut s);
        let names: Vec<&str> = s.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["b", "a", "c", "z"]);
    }

    #[test]
    fn the_backup_just_made_is_spared_and_says_why() {
        let mut ds = vec![d("a", false), d("b", false), d("c", true)];
        ds[0].reason = "older than the newest 1 (#3)".into();
        spare_just_made(&mut ds, "a");
        assert!(ds[0].keep);
        assert_eq!(
            ds[0].reason,
            "made by this run, kept although the rule said: older than the newest 1 (#3)"
        );
        // Others are left as decided.
        assert!(!ds[1].keep);
        assert!(ds[2].keep);
        assert_eq!(ds[2].reason, "");
    }
}
