//! Measures the policy runtime: cold compile vs cached load of a module, and
//! the per-call time of a retention decision (cached module, fresh Store and
//! instance per call) over 10, 1,000 and 10,000 backups beside the built-in
//! native rule. Run by bench/policy.sh:
//!   cargo run --release --example policy_bench -- MODULE.wasm

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use rcbackup::database::EngineKind;
use rcbackup::policy::runtime::Runtime;
use rcbackup::policy::{GuestPolicy, Policies};
use rcbackup::record::BackupRecord;

fn series(n: usize) -> Vec<BackupRecord> {
    (0..n)
        .map(|i| {
            let t = Utc
                .timestamp_opt(1_700_000_000 + 3600 * i as i64, 0)
                .unwrap();
            BackupRecord {
                format: 1,
                name: format!("default-{i:06}.sqlite3"),
                database: "default".into(),
                tenant: None,
                engine: EngineKind::Sqlite,
                size: 1 << 20,
                sha256: "0".repeat(64),
                compression: None,
                adopted: None,
                created: t,
                finished: t,
                tool: String::new(),
            }
        })
        .collect()
}

/// Median of `rounds` timings of `f`.
fn median(rounds: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[rounds / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn main() -> anyhow::Result<()> {
    let path = std::path::PathBuf::from(std::env::args().nth(1).expect("MODULE.wasm"));
    let cache = tempfile_dir();
    std::env::set_var(rcbackup::policy::runtime::CACHE_ENV, &cache);
    let runtime = Runtime::global()?;
    let bytes = std::fs::read(&path)?;

    let cold = median(5, || {
        wasmtime_free_compile(runtime, &bytes);
    });
    runtime.precompile(&bytes)?;
    let cached = median(21, || {
        runtime
            .load(&path, rcbackup::policy::runtime::Linking::Plain)
            .expect("loads");
    });
    println!("module {} ({} KiB)", path.display(), bytes.len() >> 10);
    println!("  cold compile (precompile)        {}", ms(cold));
    println!("  cached load (deserialize + link) {}", ms(cached));

    let config = "{\"keep\":10}";
    let wasm = Policies::with_retention(GuestPolicy::open(&path, config)?);
    let builtin = Policies::builtin();
    let now = Utc::now();
    println!("  retention call, fresh instance each call (median):");
    for n in [10usize, 1_000, 10_000] {
        let s = series(n);
        let rounds = if n >= 10_000 { 11 } else { 51 };
        let w = median(rounds, || {
            wasm.retention(&s, now, 10).expect("decides");
        });
        let b = median(rounds, || {
            builtin.retention(&s, now, 10).expect("decides");
        });
        println!(
            "    {n:>6} backups: wasm {:>10}  built-in {:>10}",
            ms(w),
            ms(b)
        );
    }
    let s = series(1_000);
    let both = median(21, || {
        let p = GuestPolicy::open(&path, config).expect("loads");
        Policies::with_retention(p)
            .retention(&s, now, 10)
            .expect("decides");
    });
    println!(
        "  cached load + one call over 1,000 backups: {} (target < 5 ms)",
        ms(both)
    );
    let _ = std::fs::remove_dir_all(&cache);
    Ok(())
}

fn wasmtime_free_compile(runtime: &Runtime, bytes: &[u8]) {
    // precompile() writes the cache file too; that is part of a cold start.
    runtime.precompile(bytes).expect("compiles");
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("rcbackup-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
