//! One guest, many misbehaviours: the config's `mode` picks which. Every
//! role misbehaves the same way, so one module serves every test.

use rcbackup_guest::{
    export_policy, Approval, Backup, Decision, Event, Hooks, Naming, NamingContext,
    RestoreApproval, Retention,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct Config {
    mode: String,
    /// `alloc`: how many MiB to allocate (and fill) before answering.
    #[serde(default)]
    mib: usize,
    /// `busy`: how many rounds of work to do before answering.
    #[serde(default)]
    rounds: u64,
}

/// Does the mode's harm; returns only for modes that shape the answer.
fn misbehave() -> String {
    let config = rcbackup_guest::config::<Config>().unwrap_or(Config {
        mode: String::new(),
        mib: 0,
        rounds: 0,
    });
    let mode = config.mode;
    match mode.as_str() {
        "spin" => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        "memory" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "log" => loop {
            rcbackup_guest::log::info("flooding the log with this line, again and again");
        },
        "stdout" => loop {
            println!("flooding stdout with this line, again and again");
        },
        "trap" => panic!("the guest panics on purpose"),
        // A well-behaved guest that needs a known amount of memory, or of
        // time: it answers `alloc` or `busy` when the limits let it finish.
        "alloc" => {
            let block = vec![1u8; config.mib << 20];
            std::hint::black_box(&block);
            mode
        }
        "busy" => {
            let mut n: u64 = 0;
            for i in 0..config.rounds {
                n = std::hint::black_box(n.wrapping_add(i));
            }
            std::hint::black_box(n);
            mode
        }
        "read-env" => {
            let vars: Vec<(String, String)> = std::env::vars().collect();
            let files = std::fs::read_dir("/").map(|d| d.count()).unwrap_or(0);
            format!("env{}-files{}", vars.len(), files)
        }
        // Text that would pass for rcbackup's own lines if shown raw: a
        // newline, an ANSI escape and a right-to-left override.
        "forge" => {
            rcbackup_guest::log::warn(FORGED);
            println!("{FORGED}");
            eprintln!("{FORGED}");
            FORGED.to_string()
        }
        // Under every budget, but many tiny lines: 30,000 log calls and
        // 30,000 lines of stdout, 60,000 bytes each.
        "chatty" => {
            for _ in 0..30_000 {
                rcbackup_guest::log::info("x");
            }
            for _ in 0..30_000 {
                println!("y");
            }
            mode
        }
        "exit0" => std::process::exit(0),
        other => other.to_string(),
    }
}

const FORGED: &str = "innocent\nERROR rcbackup: forged by the guest\u{1b}[2J\u{202e}gpj.exe";

struct Hostile;

impl Retention for Hostile {
    fn retention(series: Vec<Backup>, _now: i64) -> Result<Vec<Decision>, String> {
        let mode = misbehave();
        let decide = |name: String, keep: bool| Decision {
            name,
            keep,
            reason: format!("hostile mode {mode}"),
        };
        Ok(match mode.as_str() {
            "unknown" => vec![decide("not-a-backup.sqlite3".into(), false)],
            "delete-all" => series.into_iter().map(|b| decide(b.name, false)).collect(),
            // Deletes only the newest, keeps the rest.
            "delete-newest" => {
                let newest = series.iter().map(|b| b.created).max().unwrap_or_default();
                series
                    .into_iter()
                    .map(|b| {
                        let keep = b.created != newest;
                        decide(b.name, keep)
                    })
                    .collect()
            }
            // Keeps every backup, then decides on the oldest a second time.
            "twice" => {
                let oldest = series
                    .iter()
                    .min_by_key(|b| b.created)
                    .map(|b| b.name.clone())
                    .unwrap_or_default();
                let mut all: Vec<Decision> =
                    series.into_iter().map(|b| decide(b.name, true)).collect();
                all.push(decide(oldest, false));
                all
            }
            "missing" => series.into_iter().skip(1).map(|b| decide(b.name, true)).collect(),
            "huge-reason" => series
                .into_iter()
                .map(|b| Decision {
                    name: b.name,
                    keep: true,
                    reason: "x".repeat(8 << 20),
                })
                .collect(),
            _ => return Err(format!("unknown mode {mode}")),
        })
    }
}

impl Naming for Hostile {
    fn naming(_ctx: NamingContext) -> Result<String, String> {
        Ok(misbehave())
    }
}

impl RestoreApproval for Hostile {
    fn approve_restore(_req: rcbackup_guest::RestoreRequest) -> Approval {
        Approval::Deny(misbehave())
    }
}

impl Hooks for Hostile {
    fn on_event(_event: Event) -> Result<(), String> {
        Err(misbehave())
    }
}

export_policy!(Hostile: retention, naming, restore_approval, hooks);
