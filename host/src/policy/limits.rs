//! Per-policy limits: safe defaults, overridden per module in the config.

use std::time::Duration;

use serde::Deserialize;

/// `limits = { ... }` of a policy or hook in the config; unset keys keep the defaults.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    pub fuel: Option<u64>,
    pub memory_mib: Option<u64>,
    pub deadline_ms: Option<u64>,
    pub output_kib: Option<u64>,
    pub log_kib: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Instructions, roughly; counts work, not time.
    pub fuel: u64,
    /// The most linear memory the guest may hold, all memories together.
    pub memory_bytes: u64,
    /// Wall-clock time for one call, instantiation included, whatever the
    /// guest does: computing, or waiting inside a WASI call.
    pub deadline: Duration,
    /// The most the answer may weigh (names and reasons), in bytes.
    pub output_bytes: u64,
    /// The most the guest may log (log calls, stdout and stderr), in bytes.
    pub log_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        // Generous for a Python component deciding over 10,000 backups,
        // small enough that a runaway guest is stopped within a second.
        Limits {
            fuel: 2_000_000_000,
            memory_bytes: 256 << 20,
            deadline: Duration::from_millis(2000),
            output_bytes: 4 << 20,
            log_bytes: 64 << 10,
        }
    }
}

impl LimitsSection {
    pub fn resolve(&self) -> Result<Limits, String> {
        let d = Limits::default();
        let positive = |key: &str, v: Option<u64>| match v {
            Some(0) => Err(format!(
                "limits.{key} is 0; leave it out for the default or set more"
            )),
            _ => Ok(()),
        };
        positive("fuel", self.fuel)?;
        positive("memory_mib", self.memory_mib)?;
        positive("deadline_ms", self.deadline_ms)?;
        positive("output_kib", self.output_kib)?;
        Ok(Limits {
            fuel: self.fuel.unwrap_or(d.fuel),
            memory_bytes: self.memory_mib.map_or(d.memory_bytes, |m| m << 20),
            deadline: self.deadline_ms.map_or(d.deadline, Duration::from_millis),
            output_bytes: self.output_kib.map_or(d.output_bytes, |k| k << 10),
            log_bytes: self.log_kib.map_or(d.log_bytes, |k| k << 10),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_limits_are_taken_in_their_units() {
        let s = LimitsSection {
            fuel: Some(7),
            memory_mib: Some(3),
            deadline_ms: Some(250),
            output_kib: Some(5),
            log_kib: Some(6),
        };
        assert_eq!(
            s.resolve(),
            Ok(Limits {
                fuel: 7,
                memory_bytes: 3 << 20,
                deadline: Duration::from_millis(250),
                output_bytes: 5 << 10,
                log_bytes: 6 << 10,
            })
        );
        assert_eq!(LimitsSection::default().resolve(), Ok(Limits::default()));
    }

    #[test]
    fn a_zero_limit_is_refused_by_name() {
        for (key, s) in [
            (
                "fuel",
                LimitsSection {
                    fuel: Some(0),
                    ..Default::default()
                },
            ),
            (
                "memory_mib",
                LimitsSection {
                    memory_mib: Some(0),
                    ..Default::default()
                },
            ),
            (
                "deadline_ms",
                LimitsSection {
                    deadline_ms: Some(0),
                    ..Default::default()
                },
            ),
            (
                "output_kib",
                LimitsSection {
                    output_kib: Some(0),
                    ..Default::default()
                },
            ),
        ] {
            let e = s.resolve().unwrap_err();
            assert!(e.contains(&format!("limits.{key} is 0")), "{e}");
        }
    }
}
