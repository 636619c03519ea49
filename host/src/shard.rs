//! `--shard I/N`: a stable share of the tenants for one of N copies of
//! `backup-all` (the pods of a Kubernetes Indexed Job, N machines' crons).
//!
//! Rendezvous (highest random weight) hashing: each tenant name gets a
//! weight for every shard, `SHA-256("rcbackup-shard-v1" 0 name 0 i)`'s
//! first 8 bytes, and belongs to the shard of the highest weight. So:
//! - N copies with I = 0..N-1 cover every tenant exactly once, whatever
//!   each copy's list of tenants (each decides from the name alone);
//! - adding or removing a tenant moves no other tenant;
//! - going from N to N+1 shards moves only the tenants whose new weight
//!   for shard N is their highest, about 1/(N+1) of them, all to shard N.
//!
//! The hash is SHA-256, not Rust's `DefaultHasher`, whose output may change
//! between Rust releases: two machines running different rcbackup builds
//! must agree on who backs up whom. The top level's own databases are
//! sharded as one unit under [`TOP_LEVEL`], a key no tenant can have.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// The most shards `--shard` takes: each tenant is weighed once per shard.
pub const MAX_SHARDS: u32 = 1000;

/// The key the top level's own databases are sharded under: the empty
/// name, which no tenant can have (a tenant name has 1 to 63 characters).
pub const TOP_LEVEL: &str = "";

/// One shard of N: `--shard I/N`, 0 <= I < N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Whether the tenant (or [`TOP_LEVEL`]) `name` is this shard's.
    pub fn owns(&self, name: &str) -> bool {
        owner(name, self.count) == self.index
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

const EXAMPLE: &str = "e.g. --shard 0/4 for the first of 4 shards, or in a Kubernetes Indexed Job --shard \"$JOB_COMPLETION_INDEX/4\"";

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let Some((i, n)) = s.split_once('/') else {
            return Err(format!(
                "`{}` is not I/N: give this shard's number I (counting from 0) and the number of shards N, {EXAMPLE}",
                crate::naming::printable(s)
            ));
        };
        let number = |v: &str, what: &str| -> Result<u32, String> {
            if v.is_empty() {
                let hint = if what == "I" {
                    " (was $JOB_COMPLETION_INDEX empty or unset? Kubernetes sets it only in an Indexed Job: completionMode: Indexed)"
                } else {
                    ""
                };
                let which = if what == "I" {
                    "this shard's number I (before the `/`)"
                } else {
                    "the number of shards N (after the `/`)"
                };
                return Err(format!("{which} is empty{hint}; {EXAMPLE}"));
            }
            // Digits only, no sign, space or leading zero: one spelling per
            // shard, so that what a log or summary shows is what was given.
            if !v.bytes().all(|b| b.is_ascii_digit()) || (v.len() > 1 && v.starts_with('0')) {
                return Err(format!(
                    "`{}` is not a whole number for {what} (digits only, no sign, space or leading zero); {EXAMPLE}",
                    crate::naming::printable(v)
                ));
            }
            v.parse::<u32>().map_err(|_| {
                format!("{what} = {v} is too large (at most {MAX_SHARDS} shards); {EXAMPLE}")
            })
        };
        let index = number(i, "I")?;
        let count = number(n, "N")?;
        if count == 0 || count > MAX_SHARDS {
            return Err(format!(
                "N (the number of shards) must be 1 to {MAX_SHARDS}, not {count}; {EXAMPLE}"
            ));
        }
        if index >= count {
            return Err(format!(
                "there is no shard {index} of {count}: shards count from 0, so I is 0 to {}; {EXAMPLE}",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }
}

/// The weight of `name` for shard `i`.
fn weight(name: &str, i: u32) -> u64 {
    let d = Sha256::new()
        .chain_update(b"rcbackup-shard-v1\0")
        .chain_update(name.as_bytes())
        .chain_update([0])
        .chain_update(i.to_be_bytes())
        .finalize();
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

/// The shard (of `count`) that `name` belongs to: the one of the highest
/// weight (a tie, which SHA-256 makes as good as impossible, goes to the
/// lower number).
pub fn owner(name: &str, count: u32) -> u32 {
    (0..count.max(1))
        .map(|i| (weight(name, i), std::cmp::Reverse(i)))
        .max()
        .map_or(0, |(_, std::cmp::Reverse(i))| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("tenant-{i}")).collect()
    }

    #[test]
    fn n_shards_cover_every_tenant_exactly_once() {
        for count in [1, 2, 3, 7, 16] {
            let all = names(500);
            let mut seen = vec![0u32; all.len()];
            for index in 0..count {
                let shard = Shard { index, count };
                for (k, name) in all.iter().enumerate() {
                    if shard.owns(name) {
                        seen[k] += 1;
                    }
                }
            }
            assert!(seen.iter().all(|&s| s == 1), "{count} shards: {seen:?}");
            // And each gets a fair share: 5,000 names, within 20%.
            let many = names(5000);
            let mut got = vec![0usize; count as usize];
            for n in &many {
                got[owner(n, count) as usize] += 1;
            }
            let fair = 5000.0 / count as f64;
            for (index, g) in got.iter().enumerate() {
                assert!(
                    (*g as f64 - fair).abs() <= 0.2 * fair,
                    "shard {index} of {count} has {g}, fair is {fair}"
                );
            }
        }
        assert!(Shard { index: 0, count: 1 }.owns(TOP_LEVEL));
    }

    #[test]
    fn adding_a_tenant_moves_no_other() {
        let before = names(300);
        let count = 5;
        let placed: Vec<u32> = before.iter().map(|n| owner(n, count)).collect();
        let mut after = before.clone();
        after.push("newcomer".into());
        after.sort();
        for (name, was) in before.iter().zip(&placed) {
            assert_eq!(owner(name, count), *was, "{name} moved");
        }
        assert!(owner("newcomer", count) < count);
    }

    #[test]
    fn one_more_shard_moves_about_one_in_n_plus_one() {
        let all = names(10_000);
        for n in [1u32, 2, 3, 4, 9] {
            let moved: Vec<&String> = all
                .iter()
                .filter(|t| owner(t, n) != owner(t, n + 1))
                .collect();
            // Every tenant that moves goes to the new shard.
            assert!(moved.iter().all(|t| owner(t, n + 1) == n));
            let share = moved.len() as f64 / all.len() as f64;
            let expected = 1.0 / (n + 1) as f64;
            assert!(
                (share - expected).abs() < 0.02,
                "{n} -> {} shards moved {share:.3} of the tenants, expected about {expected:.3}",
                n + 1
            );
        }
    }

    #[test]
    fn the_hash_is_fixed() {
        // Two builds (or machines) must agree: a change of these breaks
        // every fleet mid-upgrade, so it is deliberate or a bug.
        let got: Vec<u32> = ["acme", "globex", "initech", "umbrella"]
            .iter()
            .map(|n| owner(n, 4))
            .collect();
        assert_eq!(got, fixed_owners());
    }

    /// What `the_hash_is_fixed` expects (computed once, written down).
    fn fixed_owners() -> Vec<u32> {
        // Python: max(range(4), key=lambda i: (int.from_bytes(sha256(
        // b"rcbackup-shard-v1\0" + name + b"\0" + i.to_bytes(4, "big"))
        // .digest()[:8], "big"), -i))
        vec![3, 2, 3, 1]
    }

    #[test]
    fn parses_i_of_n_and_says_what_is_wrong() {
        assert_eq!("2/3".parse::<Shard>(), Ok(Shard { index: 2, count: 3 }));
        assert_eq!("0/1".parse::<Shard>(), Ok(Shard { index: 0, count: 1 }));
        // One spelling per shard (outside review: these were accepted, and
        // the summary showed another text than the one given).
        for odd in [" 1/3", "1/3 ", "01/3", "1/03", "+1/3", "1/+3", "0 / 1"] {
            let e = odd.parse::<Shard>().unwrap_err();
            assert!(e.contains("digits only"), "{odd}: {e}");
        }
        let e = "0/4294967296".parse::<Shard>().unwrap_err();
        assert!(e.contains("too large"), "{e}");
        let e = "/4".parse::<Shard>().unwrap_err();
        assert!(
            e.contains("empty") && e.contains("JOB_COMPLETION_INDEX"),
            "{e}"
        );
        let e = "4/4".parse::<Shard>().unwrap_err();
        assert!(e.contains("no shard 4 of 4") && e.contains("0 to 3"), "{e}");
        let e = "0/0".parse::<Shard>().unwrap_err();
        assert!(e.contains("1 to 1000"), "{e}");
        let e = "x/4".parse::<Shard>().unwrap_err();
        assert!(e.contains("`x` is not a whole number"), "{e}");
        let e = "3".parse::<Shard>().unwrap_err();
        assert!(e.contains("is not I/N"), "{e}");
        let e = "1/".parse::<Shard>().unwrap_err();
        assert!(
            e.contains("number of shards N") && !e.contains("was $JOB_COMPLETION_INDEX"),
            "{e}"
        );
    }
}
