//! Builds the WebAssembly guests the policy tests run: the ready-made
//! policies (`rust_guest("ping")`, ...), the examples (Rust and Python) and
//! the hostile guests (`rust_guest("hostile")`, `hostile_http()`). Built once
//! per test binary, with the same commands the READMEs give; cargo's own lock
//! serialises test binaries that build at the same time.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::common::{sqlite, Remote, World};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Where the guests are built: below the repository's target folder.
fn guest_target() -> PathBuf {
    repo().join("target").join("wasm-guests")
}

fn cargo_build(dir: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "build",
            "--target",
            "wasm32-wasip2",
            "--release",
            "--target-dir",
        ])
        .arg(guest_target())
        .current_dir(dir)
        // The outer `cargo test` sets these for the host; the guests are a
        // separate build.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "building the guests in {} failed (is the wasm32-wasip2 target installed? scripts/setup.sh adds it):\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Path of a Rust guest, e.g. `rust_guest("keep_last")`.
pub fn rust_guest(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        for dir in ["policies", "tests/guests", "examples/rust-hook"] {
            cargo_build(&repo().join(dir));
        }
    });
    let path = guest_target()
        .join("wasm32-wasip2/release")
        .join(format!("{name}.wasm"));
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// The hostile HTTP hook (tests/guests/hostile-http): what it does is its
/// config's `do` (see its src/lib.rs).
pub fn hostile_http() -> PathBuf {
    rust_guest("hostile_http")
}

/// The Python example, built with componentize-py (the command its
/// docstring gives).
pub fn python_guest() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| componentize("python-retention", "retention-policy", "python_retention"))
        .clone()
}

/// The Python hook that POSTs each event (examples/python-http-hook), built
/// for the `http-hook` world with the command its README gives.
pub fn python_http_hook() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| componentize("python-http-hook", "http-hook", "python_http_hook"))
        .clone()
}

/// `componentize-py -d guest-sdk/wit -w WORLD componentize app -o NAME.wasm`
/// in examples/EXAMPLE.
fn componentize(example: &str, world: &str, name: &str) -> PathBuf {
    let dir = repo().join("examples").join(example);
    let out_dir = guest_target().join("python");
    std::fs::create_dir_all(&out_dir).unwrap();
    let wasm = out_dir.join(format!("{name}.wasm"));
    let out = Command::new("componentize-py")
        .arg("-d")
        .arg(repo().join("guest-sdk/wit"))
        .args(["-w", world, "componentize", "app", "-o"])
        .arg(&wasm)
        .current_dir(&dir)
        .output()
        .expect(
            "componentize-py is installed (pip install componentize-py; scripts/setup.sh does it)",
        );
    assert!(
        out.status.success(),
        "componentize-py failed on examples/{example}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wasm
}

/// A world with one SQLite database (`default`) on a local remote, and its
/// own compile cache.
pub fn world() -> World {
    let mut w = World::new(Remote::Local);
    let file = w.path("app.sqlite3");
    sqlite(&file, "CREATE TABLE t(x); INSERT INTO t VALUES (1);");
    w.sqlite("default", &file);
    let cache = w.path("cache").display().to_string();
    w.env.push(("RCBACKUP_CACHE_DIR".into(), cache));
    w
}
