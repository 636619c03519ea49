//! Per-policy limits: safe defaults, overridden per module in the config.

use std::time::Duration;

use serde::Deserialize;

use super::http::HttpBounds;

/// `limits = { ... }` of a policy or hook in the config; unset keys keep the defaults.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    pub fuel: Option<u64>,
    pub memory_mib: Option<u64>,
    pub deadline_ms: Option<u64>,
    pub output_kib: Option<u64>,
    pub log_kib: Option<u64>,
    /// A hook granted HTTP: requests per call, KiB sent and received per
    /// call, milliseconds per request.
    pub http_requests: Option<u64>,
    pub http_sent_kib: Option<u64>,
    pub http_received_kib: Option<u64>,
    pub http_request_ms: Option<u64>,
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
    /// A hook's HTTP, when it is granted any.
    pub http: HttpBounds,
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
            http: HttpBounds::default(),
        }
    }
}

/// The deadline of a hook granted HTTP unless its limits set one: time for
/// a request or two to a server far away.
pub const HTTP_DEADLINE: Duration = Duration::from_secs(10);

const MAX_MEMORY_MIB: u64 = 4096;
const MAX_DEADLINE_MS: u64 = 24 * 3600 * 1000;
const MAX_TEXT_KIB: u64 = 1 << 20;

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
        positive("http_requests", self.http_requests)?;
        positive("http_request_ms", self.http_request_ms)?;
        // Upper bounds keep every unit conversion and deadline sum in range
        // (a wasm32 guest cannot address more than 4 GiB anyway).
        let at_most = |key: &str, v: Option<u64>, max: u64, unit: &str| match v {
            Some(v) if v > max => Err(format!(
                "limits.{key} is {v}; at most {max} ({unit}) is allowed"
            )),
            _ => Ok(()),
        };
        at_most(
            "memory_mib",
            self.memory_mib,
            MAX_MEMORY_MIB,
            "4 GiB, all a wasm32 guest can address",
        )?;
        at_most("deadline_ms", self.deadline_ms, MAX_DEADLINE_MS, "one day")?;
        at_most("output_kib", self.output_kib, MAX_TEXT_KIB, "1 GiB")?;
        at_most("log_kib", self.log_kib, MAX_TEXT_KIB, "1 GiB")?;
        at_most("http_requests", self.http_requests, 1_000, "a thousand")?;
        at_most("http_sent_kib", self.http_sent_kib, MAX_TEXT_KIB, "1 GiB")?;
        at_most(
            "http_received_kib",
            self.http_received_kib,
            MAX_TEXT_KIB,
            "1 GiB",
        )?;
        at_most(
            "http_request_ms",
            self.http_request_ms,
            MAX_DEADLINE_MS,
            "one day",
        )?;
        let h = HttpBounds::default();
        Ok(Limits {
            fuel: self.fuel.unwrap_or(d.fuel),
            memory_bytes: self.memory_mib.map_or(d.memory_bytes, |m| m << 20),
            deadline: self.deadline_ms.map_or(d.deadline, Duration::from_millis),
            output_bytes: self.output_kib.map_or(d.output_bytes, |k| k << 10),
            log_bytes: self.log_kib.map_or(d.log_bytes, |k| k << 10),
            http: HttpBounds {
                requests: self.http_requests.map_or(h.requests, |n| n as u32),
                sent_bytes: self.http_sent_kib.map_or(h.sent_bytes, |k| k << 10),
                received_bytes: self.http_received_kib.map_or(h.received_bytes, |k| k << 10),
                request_time: self
                    .http_request_ms
                    .map_or(h.request_time, Duration::from_millis),
            },
        })
    }

    /// The ceiling of a tenant's own policies and hooks: what the
    /// operator's `tenant_limits` sets, else, for the time keys, a bound that
    /// keeps one tenant's guest from holding a `backup-all` job for long.
    pub fn tenant_ceiling(&self) -> LimitsSection {
        LimitsSection {
            deadline_ms: self.deadline_ms.or(Some(60_000)),
            http_request_ms: self.http_request_ms.or(Some(10_000)),
            http_requests: self.http_requests.or(Some(32)),
            ..*self
        }
    }

    /// The first key of `self` set above `ceiling`: (key, value, most).
    pub fn above(&self, ceiling: &LimitsSection) -> Option<(&'static str, u64, u64)> {
        [
            ("fuel", self.fuel, ceiling.fuel),
            ("memory_mib", self.memory_mib, ceiling.memory_mib),
            ("deadline_ms", self.deadline_ms, ceiling.deadline_ms),
            ("output_kib", self.output_kib, ceiling.output_kib),
            ("log_kib", self.log_kib, ceiling.log_kib),
            ("http_requests", self.http_requests, ceiling.http_requests),
            ("http_sent_kib", self.http_sent_kib, ceiling.http_sent_kib),
            (
                "http_received_kib",
                self.http_received_kib,
                ceiling.http_received_kib,
            ),
            (
                "http_request_ms",
                self.http_request_ms,
                ceiling.http_request_ms,
            ),
        ]
        .into_iter()
        .find_map(|(key, v, most)| match (v, most) {
            (Some(v), Some(most)) if v > most => Some((key, v, most)),
            _ => None,
        })
    }

    /// Whether any `http_*` limit is set (only a hook granted HTTP has use
    /// for one).
    pub fn sets_http(&self) -> bool {
        self.http_requests.is_some()
            || self.http_sent_kib.is_some()
            || self.http_received_kib.is_some()
            || self.http_request_ms.is_some()
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
            ..Default::default()
        };
        assert_eq!(
            s.resolve(),
            Ok(Limits {
                fuel: 7,
                memory_bytes: 3 << 20,
                deadline: Duration::from_millis(250),
                output_bytes: 5 << 10,
                log_bytes: 6 << 10,
                http: HttpBounds::default(),
            })
        );
        assert_eq!(LimitsSection::default().resolve(), Ok(Limits::default()));
    }

    /// Values whose conversion would wrap (`memory_mib << 20`) or whose
    /// deadline would overflow a clock are refused by name at load.
    #[test]
    fn a_limit_beyond_its_range_is_refused_by_name() {
        for (key, s) in [
            (
                "memory_mib",
                LimitsSection {
                    memory_mib: Some(1 << 44),
                    ..Default::default()
                },
            ),
            (
                "memory_mib",
                LimitsSection {
                    memory_mib: Some(4097),
                    ..Default::default()
                },
            ),
            (
                "deadline_ms",
                LimitsSection {
                    deadline_ms: Some(u64::MAX),
                    ..Default::default()
                },
            ),
            (
                "output_kib",
                LimitsSection {
                    output_kib: Some(u64::MAX >> 5),
                    ..Default::default()
                },
            ),
            (
                "log_kib",
                LimitsSection {
                    log_kib: Some(u64::MAX),
                    ..Default::default()
                },
            ),
        ] {
            let e = s.resolve().unwrap_err();
            assert!(
                e.contains(&format!("limits.{key} is")) && e.contains("at most"),
                "{e}"
            );
        }
        let top = LimitsSection {
            fuel: Some(u64::MAX),
            memory_mib: Some(MAX_MEMORY_MIB),
            deadline_ms: Some(MAX_DEADLINE_MS),
            output_kib: Some(MAX_TEXT_KIB),
            log_kib: Some(MAX_TEXT_KIB),
            ..Default::default()
        };
        assert_eq!(top.resolve().unwrap().memory_bytes, 4 << 30);
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
