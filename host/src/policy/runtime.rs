//! The WebAssembly sandbox: one Engine per process, modules compiled once and
//! cached on disk (`super::cache`), a fresh Store and instance for every
//! call, and the limits (fuel, memory, deadline, log and output size) that
//! contain a guest.
//!
//! A call runs as a future on a small current-thread tokio runtime, under a
//! timeout and beside a wait on the interrupt: a guest waiting inside WASI (a
//! sleep, a poll) is cancelled there; a guest computing is stopped by the
//! epoch callback, which checks the same deadline and the interrupt. The
//! guest's WASI context is fixed by the call: the wall clock reads the
//! operation's time, the monotonic clock starts at 0, randomness is seeded
//! from the call's input, so the same input gives the same decision.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::Poll;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use rustc_hash::FxHasher;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, InstancePre, Linker, ResourceTable};
use wasmtime::{Config, Engine, ResourceLimiter, Store, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::bindings::{self, hooks, host, naming, restore_approval, retention};
use super::cache::{Cache, Lookup, Untrusted};
use super::http::gate::Gate;
use super::http::secrets::Redactor;
use super::http::{Exchange, HttpGrant};
use super::limits::Limits;
use super::text::escape;

/// How often the ticker advances the epoch: the resolution of deadlines.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Where compiled policies are cached: `$RCBACKUP_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/rcbackup/policies`, else `~/.cache/rcbackup/policies`.
pub const CACHE_ENV: &str = "RCBACKUP_CACHE_DIR";

/// Why a guest call failed; each names the cause the way people read it.
#[derive(Debug, thiserror::Error)]
pub enum GuestFailure {
    #[error(
        "it ran out of fuel ({0} units): it may loop forever; raise limits.fuel if it needs more"
    )]
    OutOfFuel(u64),
    #[error("it ran past its deadline of {0} ms; raise limits.deadline_ms if it needs more")]
    Deadline(u128),
    #[error(
        "it tried to use more than {0} MiB of memory; raise limits.memory_mib if it needs more"
    )]
    Memory(u64),
    #[error("it logged more than {0} KiB; raise limits.log_kib or log less")]
    LogFlood(u64),
    #[error("its answer is larger than {0} KiB; raise limits.output_kib if that is expected")]
    OutputTooLarge(u64),
    /// Over what wasmtime copies out of a guest in one call, which is more
    /// than `output_kib` allows only when `output_kib` is set above it.
    #[error(
        "its answer is larger than the runtime can take from a guest in one call \
         ({} MiB), whatever limits.output_kib says",
        HOSTCALL_BYTES >> 20
    )]
    OutputBeyondRuntime,
    // Guest text is shown escaped: see `super::text`.
    #[error("it trapped: {}", escape(.0))]
    Trap(String),
    /// The status wasmtime reports: WASI 0.2's `exit` carries success or
    /// failure only (a guest's exit(3) arrives as failure, as 1).
    #[error("{}", exited(*.0))]
    Exited(i32),
    #[error("it returned an error: {}", escape(.0))]
    Returned(String),
    #[error("bad output: {}", escape(.0))]
    BadOutput(String),
    #[error("it does not export the {0} role (interface rcbackup:policy/{0})")]
    MissingRole(&'static str),
    #[error("it was stopped by the interrupt (Ctrl-C, SIGTERM or SIGHUP)")]
    Interrupted,
}

/// What the runtime copies out of a guest in one call at most (wasmtime's
/// hostcall fuel), set on every Store so that messages can name it.
const HOSTCALL_BYTES: usize = 128 << 20;

fn exited(status: i32) -> String {
    match status {
        0 => "it called exit(0) instead of returning an answer".into(),
        // What `exit(Err)` gives: the guest's own code is not passed on.
        1 => "it called exit with a failure status instead of returning an answer \
              (WASI 0.2 passes only success or failure, not the code)"
            .into(),
        n => format!("it called exit({n}) instead of returning an answer"),
    }
}

/// A failure of one module in one role; the message names both, and the
/// cause once (the failure is part of the message, not a `source` that
/// `{:#}` would print a second time).
#[derive(Debug, thiserror::Error)]
#[error("{role} policy {module}: {failure}")]
pub struct PolicyError {
    pub module: String,
    pub role: &'static str,
    pub failure: GuestFailure,
}

/// Raised by the limiter so the failure is typed, not a generic grow failure.
#[derive(Debug, thiserror::Error)]
#[error("memory limit")]
struct MemoryLimitHit;

/// Raised by `log` when the guest has logged its budget.
#[derive(Debug, thiserror::Error)]
#[error("log limit")]
struct LogLimitHit;

/// What one call's Store holds.
pub struct GuestState {
    wasi: WasiCtx,
    table: ResourceTable,
    memory: MemoryCap,
    module: String,
    config_json: String,
    log_left: u64,
    /// What of the guest's log reaches rcbackup's log in this call.
    shown: Shown,
    /// Clones of the guest's stdout and stderr, read back after the call.
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
    /// wasi:http, for a hook granted HTTP: every request passes the gate.
    http: WasiHttpCtx,
    gate: Gate,
    /// Hides the values of the hook's secrets in whatever comes from it.
    redactor: Redactor,
}

impl WasiHttpView for GuestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.gate,
        }
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Bounds what one call's guest text costs rcbackup's log, counted as it is
/// written there (level, module tag, escaped text): a guest under its own
/// budget (`log_left`) that writes many short lines would otherwise make
/// megabytes of tagged lines. Lines over the bound are counted, not shown,
/// and the count is said once at the end of the call.
#[derive(Clone)]
struct Shown {
    left: u64,
    cap: u64,
    hidden_lines: u64,
}

/// The level column and the spaces around it, as the log writes them.
const LEVEL_WIDTH: u64 = 7;

impl Shown {
    fn new(cap: u64) -> Shown {
        Shown {
            left: cap,
            cap,
            hidden_lines: 0,
        }
    }

    /// Whether a line of `len` bytes (without the level) may be written.
    fn admit(&mut self, len: usize) -> bool {
        let cost = len as u64 + LEVEL_WIDTH + 1;
        if self.hidden_lines == 0 && cost <= self.left {
            self.left -= cost;
            true
        } else {
            self.hidden_lines += 1;
            false
        }
    }

    /// The one line that says what was not shown, if anything was not.
    fn report(&self, module: &str) {
        if self.hidden_lines > 0 {
            tracing::warn!(
                "[{module}] {} more lines of its log, stdout and stderr not shown: \
                 one call shows at most {} KiB (limits.log_kib)",
                self.hidden_lines,
                self.cap >> 10
            );
        }
    }
}

impl host::Host for GuestState {
    fn log(&mut self, level: host::Level, message: String) -> wasmtime::Result<()> {
        let cost = message.len() as u64 + 1;
        if cost > self.log_left {
            return Err(wasmtime::Error::new(LogLimitHit));
        }
        self.log_left -= cost;
        let line = format!(
            "[{}] {}",
            self.module,
            escape(&self.redactor.redact(&message))
        );
        if !self.shown.admit(line.len()) {
            return Ok(());
        }
        match level {
            host::Level::Trace => tracing::trace!("{line}"),
            host::Level::Debug => tracing::debug!("{line}"),
            host::Level::Info => tracing::info!("{line}"),
            host::Level::Warn => tracing::warn!("{line}"),
            host::Level::Error => tracing::error!("{line}"),
        }
        Ok(())
    }

    fn config(&mut self) -> wasmtime::Result<String> {
        Ok(self.config_json.clone())
    }
}

impl bindings::types::Host for GuestState {}

/// Caps the guest's linear memory; over the cap, the call fails as "memory".
struct MemoryCap {
    max_bytes: u64,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.max_bytes {
            return Err(wasmtime::Error::new(MemoryLimitHit));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// The process-wide engine and linker.
pub struct Runtime {
    engine: Engine,
    linker: Linker<GuestState>,
    /// The same, with wasi:http: for hooks granted HTTP only.
    http_linker: Linker<GuestState>,
    cache: Option<Cache>,
    /// Every module this process has compiled (or read from the cache),
    /// by the SHA-256 of its bytes: a module many tenants use (by one path
    /// or by copies) is compiled once per run. Only the compiled code and
    /// its linking are shared; each call still gets a Store and instance
    /// of its own, with its caller's config and limits.
    compiled: Mutex<HashMap<([u8; 32], Linking), Slot>>,
}

/// Which linker a module is instantiated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Linking {
    /// WASI without files, network or environment, and rcbackup's host.
    Plain,
    /// And wasi:http, every request through the gate.
    Http,
}

/// A module's place in [`Runtime::compiled`]: empty until compiled, and
/// locked while it is compiled.
type Slot = Arc<Mutex<Option<Arc<Compiled>>>>;

impl Runtime {
    /// The one runtime of this process, created (with its epoch ticker) on
    /// first use so that runs without policies never pay for it.
    pub fn global() -> Result<&'static Runtime> {
        static RUNTIME: OnceLock<std::result::Result<Runtime, String>> = OnceLock::new();
        RUNTIME
            .get_or_init(|| Runtime::new().map_err(|e| format!("{e:#}")))
            .as_ref()
            .map_err(|e| anyhow::anyhow!("cannot start the WebAssembly runtime: {e}"))
    }

    fn new() -> Result<Runtime> {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .consume_fuel(true)
            .epoch_interruption(true);
        let engine = Engine::new(&config).map_err(anyhow::Error::from)?;
        let mut linker = Linker::new(&engine);
        // Every interface of WASI 0.2 (cli, clocks, filesystem, io, random,
        // sockets), each granting nothing: docs/policies.md, "What a guest
        // can reach". Components built for wasm32-wasip2 (and by
        // componentize-py) import them through their standard library.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(anyhow::Error::from)?;
        bindings::Policy::add_to_linker::<GuestState, HasSelf<GuestState>>(&mut linker, |s| s)
            .map_err(anyhow::Error::from)?;
        let mut http_linker = linker.clone();
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut http_linker)
            .map_err(anyhow::Error::from)?;
        let ticker = engine.clone();
        std::thread::Builder::new()
            .name("rcbackup-epoch".into())
            .spawn(move || loop {
                std::thread::sleep(EPOCH_TICK);
                ticker.increment_epoch();
            })
            .context("starting the epoch ticker")?;
        let cache = cache_dir().map(|dir| Cache::new(dir, &engine));
        Ok(Runtime {
            engine,
            linker,
            http_linker,
            cache,
            compiled: Mutex::default(),
        })
    }

    /// Compiles (or loads from the cache) the module at `path`. A file that
    /// cannot be read, is not a component, or imports what is not granted is
    /// the config's mistake: a usage error (exit 2). `linking` says whether
    /// its config grants HTTP.
    pub fn load(&self, path: &Path, linking: Linking) -> Result<LoadedModule> {
        let bytes = std::fs::read(path).map_err(|e| {
            crate::exit::usage(format!("cannot read policy module {}: {e}", path.display()))
        })?;
        check_component(path, &bytes)?;
        let name = module_name(path);
        let sha: [u8; 32] = Sha256::digest(&bytes).into();
        // One slot per content, locked while it is compiled: a second
        // tenant's job loading the same bytes meanwhile waits for it.
        let slot = self
            .compiled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((sha, linking))
            .or_default()
            .clone();
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(compiled) = &*slot {
            tracing::debug!(
                "policy module {name}: already compiled in this run (the same bytes as a module loaded before); shared, with a fresh instance for every call"
            );
            return Ok(LoadedModule {
                name,
                compiled: compiled.clone(),
            });
        }
        let component = self.compile_cached(&name, &bytes).map_err(|e| {
            crate::exit::usage(format!(
                "policy module {} is not a WebAssembly component rcbackup can compile ({}): \
                 a damaged file, or one that needs features this runtime lacks; {BUILD_HINT}",
                path.display(),
                escape(&first_line(&e.root_cause().to_string()))
            ))
        })?;
        let linker = match linking {
            Linking::Plain => &self.linker,
            Linking::Http => &self.http_linker,
        };
        let pre = linker.instantiate_pre(&component).map_err(|e| {
            let wants_http = component
                .component_type()
                .imports(&self.engine)
                .any(|(name, _)| name.starts_with("wasi:http/"));
            if wants_http && linking == Linking::Plain {
                return crate::exit::usage(format!(
                    "policy module {} makes HTTP requests (it imports wasi:http), and its config \
                     grants none: a hook may be granted some with allow_http = [\"https://host\"] \
                     in its [[hooks]] entry (docs/policies.md, \"HTTP\"); other roles never are",
                    path.display()
                ));
            }
            crate::exit::usage(format!(
                "policy module {} imports something rcbackup does not grant \
                 (only rcbackup:policy/host, WASI without files, network or environment, \
                 and wasi:http for a hook granted allow_http): {}",
                path.display(),
                escape(&first_line(&format!("{e:#}")))
            ))
        })?;
        let compiled = Arc::new(Compiled {
            retention: retention::GuestIndices::new(&pre).ok(),
            naming: naming::GuestIndices::new(&pre).ok(),
            restore_approval: restore_approval::GuestIndices::new(&pre).ok(),
            hooks: hooks::GuestIndices::new(&pre).ok(),
            pre,
        });
        // Only a success is kept: a failure is said for each config that
        // names the module, with its own path.
        *slot = Some(compiled.clone());
        Ok(LoadedModule { name, compiled })
    }

    /// Compiles `bytes` and writes the result to the cache; returns where,
    /// or `None` without a cache folder. An error is the module's (it does
    /// not compile) or the cache's (the folder cannot be trusted or written).
    pub fn precompile(&self, bytes: &[u8]) -> Result<Option<PathBuf>> {
        let Some(cache) = &self.cache else {
            return Ok(None);
        };
        let compiled = self
            .engine
            .precompile_component(bytes)
            .map_err(anyhow::Error::from)?;
        cache.store(bytes, &compiled).map(Some).inspect_err(|e| {
            if e.is::<Untrusted>() {
                // The caller reports it: no warning besides.
                cache.said_untrusted();
            }
        })
    }

    /// The module from the cache (see `super::cache`), else compiled and,
    /// where the cache can be trusted, stored there.
    fn compile_cached(&self, name: &str, bytes: &[u8]) -> Result<Component> {
        let started = Instant::now();
        let writable = match &self.cache {
            None => false,
            Some(cache) => match cache.lookup(&self.engine, name, bytes) {
                Lookup::Hit(component, path) => {
                    tracing::debug!(
                        "policy module {name}: loaded from the cache ({}) in {:.2} ms",
                        path.display(),
                        started.elapsed().as_secs_f64() * 1e3
                    );
                    return Ok(component);
                }
                Lookup::Miss { writable } => writable,
            },
        };
        let component = Component::new(&self.engine, bytes).map_err(anyhow::Error::from)?;
        tracing::debug!(
            "policy module {name}: compiled in {} ms",
            started.elapsed().as_millis()
        );
        if let (true, Some(cache)) = (writable, &self.cache) {
            match component
                .serialize()
                .map_err(anyhow::Error::from)
                .and_then(|compiled| cache.store(bytes, &compiled))
            {
                Ok(path) => tracing::debug!("cached {name} in {}", path.display()),
                Err(e) => match e.downcast_ref::<Untrusted>() {
                    Some(why) => cache.warn_untrusted(why),
                    None => tracing::debug!("cannot cache a compiled policy: {e:#}"),
                },
            }
        }
        Ok(component)
    }

    /// A fresh Store for one call, with the limits in force; its deadline
    /// is `ends`. `now` is the operation's time and `seed` the hash of the
    /// call's input: the guest's clocks and random numbers.
    #[allow(clippy::too_many_arguments)]
    fn store(
        &self,
        module: &str,
        config_json: &str,
        limits: &Limits,
        now: i64,
        seed: [u8; 32],
        ends: Instant,
        grants: &Grants,
    ) -> Store<GuestState> {
        let log_cap = limits.log_bytes.max(1) as usize;
        let stdout = MemoryOutputPipe::new(log_cap);
        let stderr = MemoryOutputPipe::new(log_cap);
        // No preopened folders, no environment, no arguments, closed stdin,
        // no sockets: the builder grants nothing unless asked, and the
        // network is refused explicitly so that a change of wasmtime's
        // defaults cannot open it.
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .wall_clock(OperationClock(now))
            .monotonic_clock(CallClock(AtomicU64::new(0)))
            .secure_random(SeededRandom::new(&seed, b"random"))
            .insecure_random(SeededRandom::new(&seed, b"insecure"))
            .insecure_random_seed(u128::from_le_bytes(
                Sha256::new()
                    .chain_update(b"insecure-seed")
                    .chain_update(seed)
                    .finalize()[..16]
                    .try_into()
                    .expect("16 bytes"),
            ))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let state = GuestState {
            wasi,
            table: ResourceTable::new(),
            memory: MemoryCap {
                max_bytes: limits.memory_bytes,
            },
            module: module.to_string(),
            config_json: config_json.to_string(),
            log_left: limits.log_bytes,
            shown: Shown::new(limits.log_bytes),
            stdout,
            stderr,
            http: WasiHttpCtx::new(),
            gate: Gate::new(module, grants.http.clone(), ends, grants.journal.clone()),
            redactor: grants
                .http
                .as_ref()
                .map(|g| g.redactor.clone())
                .unwrap_or_default(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.memory);
        store.set_hostcall_fuel(HOSTCALL_BYTES);
        store.set_fuel(limits.fuel).expect("fuel is enabled");
        // A guest computing is stopped here, at every tick: by wall-clock
        // time (counting ticks alone would stretch the deadline on a loaded
        // machine, where the ticker's sleeps overrun and ticks are lost), or
        // by the interrupt. A guest waiting inside WASI is stopped by the
        // timeout around the call (`drive`).
        store.epoch_deadline_callback(move |_| {
            Ok(
                if Instant::now() >= ends || crate::interrupt::interrupted() {
                    wasmtime::UpdateDeadline::Interrupt
                } else {
                    wasmtime::UpdateDeadline::Continue(1)
                },
            )
        });
        store.set_epoch_deadline(1);
        store
    }
}

/// How to make a component, for errors about files that are not one.
pub const BUILD_HINT: &str = "rcbackup runs WebAssembly components built for its WIT contract: \
     in Rust, `cargo build --target wasm32-wasip2 --release` with the rcbackup-guest crate \
     (guest-sdk/README.md); in Python, `componentize-py -d guest-sdk/wit -w retention-policy \
     componentize app -o policy.wasm`, with the world of its role (docs/policies.md)";

/// Says what `bytes` is when it is not a component: empty, not WebAssembly,
/// or a core module (what `wasm32-unknown-unknown` or `wasm32-wasip1` build).
/// A file that claims to be a component is left to the compiler.
pub fn check_component(path: &Path, bytes: &[u8]) -> Result<()> {
    const MAGIC: &[u8] = b"\0asm";
    // The version and layer fields after the magic: 1 for a core module,
    // 0x0d and layer 1 for a component.
    const CORE: &[u8] = &[1, 0, 0, 0];
    let what = if bytes.is_empty() {
        "is empty, not a WebAssembly component".to_string()
    } else if !bytes.starts_with(MAGIC) {
        "is not WebAssembly (it does not start with the `\\0asm` magic number)".to_string()
    } else if bytes.get(4..8) == Some(CORE) {
        "is a core WebAssembly module, not a component".to_string()
    } else if bytes.len() < 8 || bytes[6..8] != [1, 0] {
        "is not a WebAssembly component (an unknown WebAssembly version)".to_string()
    } else {
        return Ok(());
    };
    Err(crate::exit::usage(format!(
        "policy module {} {what}; {BUILD_HINT}",
        path.display()
    )))
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_string()
}

/// `wasi:clocks/wall-clock` of a guest: the operation's time, fixed for the
/// call (whole seconds, as the host hands times to guests).
struct OperationClock(i64);

impl HostWallClock for OperationClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        // A time before 1970 reads as 1970; WASI's clock cannot show it.
        Duration::from_secs(self.0.max(0) as u64)
    }
}

/// `wasi:clocks/monotonic-clock` of a guest: 0 at the call's start, one
/// microsecond more at each read, whatever the real time. A guest that
/// times itself gets the same numbers every run, and a loop waiting for
/// time to pass still ends.
struct CallClock(AtomicU64);

/// What each read of [`CallClock`] advances it by, in nanoseconds.
const CALL_CLOCK_STEP: u64 = 1_000;

impl HostMonotonicClock for CallClock {
    fn resolution(&self) -> u64 {
        CALL_CLOCK_STEP
    }
    fn now(&self) -> u64 {
        self.0.fetch_add(CALL_CLOCK_STEP, Ordering::Relaxed)
    }
}

/// A guest's random numbers: SHA-256 in counter mode over the call's seed
/// and a label, so `random` and `insecure` draw different streams. Not
/// secret (the input decides them): for decisions, not for keys.
struct SeededRandom {
    key: [u8; 32],
    counter: u64,
    block: [u8; 32],
    used: usize,
}

impl SeededRandom {
    fn new(seed: &[u8; 32], label: &[u8]) -> SeededRandom {
        SeededRandom {
            key: Sha256::new()
                .chain_update(label)
                .chain_update(seed)
                .finalize()
                .into(),
            counter: 0,
            block: [0; 32],
            used: 32,
        }
    }
}

impl rand_core::TryRng for SeededRandom {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for byte in dst {
            if self.used == self.block.len() {
                self.block = Sha256::new()
                    .chain_update(self.key)
                    .chain_update(self.counter.to_le_bytes())
                    .finalize()
                    .into();
                self.counter += 1;
                self.used = 0;
            }
            *byte = self.block[self.used];
            self.used += 1;
        }
        Ok(())
    }
}

/// What a call is given, fed field by field into the seed of its random
/// numbers (no formatting, no copy: a fast hash of the fields).
trait CallInput {
    fn feed(&self, h: &mut FxHasher);
}

fn feed_str(h: &mut FxHasher, s: &str) {
    h.write_u64(s.len() as u64);
    h.write(s.as_bytes());
}

fn feed_opt(h: &mut FxHasher, s: &Option<String>) {
    match s {
        Some(s) => {
            h.write_u8(1);
            feed_str(h, s);
        }
        None => h.write_u8(0),
    }
}

impl CallInput for bindings::types::Backup {
    fn feed(&self, h: &mut FxHasher) {
        feed_str(h, &self.name);
        feed_str(h, &self.database);
        feed_opt(h, &self.tenant);
        feed_str(h, &self.engine);
        h.write_i64(self.created);
        h.write_u64(self.size);
        feed_str(h, &self.sha256);
    }
}

impl CallInput for [bindings::types::Backup] {
    fn feed(&self, h: &mut FxHasher) {
        h.write_u64(self.len() as u64);
        for b in self {
            b.feed(h);
        }
    }
}

impl CallInput for naming::NamingContext {
    fn feed(&self, h: &mut FxHasher) {
        feed_str(h, &self.database);
        feed_str(h, &self.engine);
        feed_opt(h, &self.tenant);
        feed_str(h, &self.extension);
        feed_str(h, &self.default_name);
    }
}

impl CallInput for restore_approval::RestoreRequest {
    fn feed(&self, h: &mut FxHasher) {
        feed_str(h, &self.database);
        feed_opt(h, &self.tenant);
        self.backup.feed(h);
        feed_str(h, &self.requested_by);
        h.write_u8(self.noinput as u8);
    }
}

impl CallInput for restore_approval::MediaRestoreRequest {
    fn feed(&self, h: &mut FxHasher) {
        feed_opt(h, &self.tenant);
        feed_str(h, &self.target);
        feed_str(h, &self.source);
        feed_opt(h, &self.backup_stamp);
        h.write_u64(self.files);
        h.write_u64(self.deletes);
        feed_str(h, &self.requested_by);
        h.write_u8(self.noinput as u8);
    }
}

impl CallInput for hooks::Event {
    fn feed(&self, h: &mut FxHasher) {
        feed_str(h, &format!("{:?}", self.kind));
        feed_opt(h, &self.database);
        feed_opt(h, &self.tenant);
        feed_opt(h, &self.backup);
        h.write_u64(self.size.unwrap_or(u64::MAX));
        feed_opt(h, &self.sha256);
        h.write_u64(self.duration_ms.unwrap_or(u64::MAX));
        feed_opt(h, &self.error);
    }
}

/// The seed of a call: its role, config, time and input.
fn call_seed(
    role: Role,
    config_json: &str,
    now: i64,
    input: &(impl CallInput + ?Sized),
) -> [u8; 32] {
    let mut fx = FxHasher::default();
    input.feed(&mut fx);
    Sha256::new()
        .chain_update(role.as_str())
        .chain_update([0])
        .chain_update((config_json.len() as u64).to_le_bytes())
        .chain_update(config_json)
        .chain_update(now.to_le_bytes())
        .chain_update(fx.finish().to_le_bytes())
        .finalize()
        .into()
}

/// How a call's future ended.
enum Ended<R> {
    Done(wasmtime::Result<R>),
    Deadline,
    Interrupted,
}

/// Runs a guest call to its end, its deadline (`ends`) or the interrupt,
/// whichever comes first, on this thread's tokio runtime.
fn drive<R>(call: impl Future<Output = wasmtime::Result<R>>, ends: Instant) -> Ended<R> {
    thread_local! {
        static TOKIO: Result<tokio::runtime::Runtime, String> =
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string());
    }
    TOKIO.with(|rt| {
        let rt = match rt {
            Ok(rt) => rt,
            Err(e) => {
                return Ended::Done(Err(wasmtime::Error::msg(format!(
                    "cannot start the runtime for guest calls: {e}"
                ))))
            }
        };
        rt.block_on(async {
            let mut call = std::pin::pin!(call);
            let mut signal = std::pin::pin!(crate::interrupt::wait());
            let first = std::future::poll_fn(|cx| {
                if let Poll::Ready(r) = call.as_mut().poll(cx) {
                    return Poll::Ready(Ended::Done(r));
                }
                if signal.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Ended::Interrupted);
                }
                Poll::Pending
            });
            tokio::time::timeout_at(tokio::time::Instant::from_std(ends), first)
                .await
                .unwrap_or(Ended::Deadline)
        })
    })
}

fn cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os(CACHE_ENV).filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("rcbackup").join("policies"))
}

/// The module's file name, as errors and logs call it.
pub fn module_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// A compiled module, ready to be instantiated for any role it exports.
pub struct LoadedModule {
    pub name: String,
    /// Shared by every load of the same bytes in this process.
    compiled: Arc<Compiled>,
}

/// A module's compiled code, linked, and where each role's exports are.
pub struct Compiled {
    pre: InstancePre<GuestState>,
    retention: Option<retention::GuestIndices>,
    naming: Option<naming::GuestIndices>,
    restore_approval: Option<restore_approval::GuestIndices>,
    hooks: Option<hooks::GuestIndices>,
}

/// `module.pre`, `module.retention`, ...: the shared compiled parts.
impl std::ops::Deref for LoadedModule {
    type Target = Compiled;

    fn deref(&self) -> &Compiled {
        &self.compiled
    }
}

/// The roles, as the config and `policy test --role` name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Retention,
    Naming,
    RestoreApproval,
    Hook,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Retention,
        Role::Naming,
        Role::RestoreApproval,
        Role::Hook,
    ];

    /// Where the config file puts a module of this role.
    pub fn config_section(self) -> &'static str {
        match self {
            Role::Retention => "[policies.retention]",
            Role::Naming => "[policies.naming]",
            Role::RestoreApproval => "[policies.restore_approval]",
            Role::Hook => "[[hooks]]",
        }
    }

    /// The role's name in the SDK's `export_policy!(T: ...)`.
    pub fn sdk_name(self) -> &'static str {
        match self {
            Role::Retention => "retention",
            Role::Naming => "naming",
            Role::RestoreApproval => "restore_approval",
            Role::Hook => "hooks",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Retention => "retention",
            Role::Naming => "naming",
            Role::RestoreApproval => "restore-approval",
            Role::Hook => "hooks",
        }
    }
}

impl LoadedModule {
    /// The roles the module exports.
    pub fn roles(&self) -> Vec<Role> {
        Role::ALL.into_iter().filter(|r| self.exports(*r)).collect()
    }

    pub fn exports(&self, role: Role) -> bool {
        match role {
            Role::Retention => self.retention.is_some(),
            Role::Naming => self.naming.is_some(),
            Role::RestoreApproval => self.restore_approval.is_some(),
            Role::Hook => self.hooks.is_some(),
        }
    }

    /// Runs `f` against a fresh instance, cancellable at the deadline and by
    /// the interrupt; classifies whatever goes wrong. `now` (the operation's
    /// time) and `input` make the guest's clock and random numbers.
    #[allow(clippy::too_many_arguments)]
    fn call<R>(
        &self,
        role: Role,
        config_json: &str,
        limits: &Limits,
        grants: &Grants,
        now: i64,
        input: &(impl CallInput + ?Sized),
        f: impl AsyncFnOnce(
            &mut Store<GuestState>,
            &wasmtime::component::Instance,
        ) -> wasmtime::Result<R>,
    ) -> Result<R, PolicyError> {
        let fail = |failure| PolicyError {
            module: self.name.clone(),
            role: role.as_str(),
            failure,
        };
        if !self.exports(role) {
            return Err(fail(GuestFailure::MissingRole(role.as_str())));
        }
        let runtime = Runtime::global().map_err(|e| fail(GuestFailure::Trap(format!("{e:#}"))))?;
        let seed = call_seed(role, config_json, now, input);
        let ends = Instant::now() + limits.deadline;
        let mut store = runtime.store(&self.name, config_json, limits, now, seed, ends, grants);
        crate::failpoint::reached("guest-call");
        if crate::interrupt::interrupted() {
            return Err(fail(GuestFailure::Interrupted));
        }
        let ended = {
            let store = &mut store;
            let pre = &self.pre;
            drive(
                async move {
                    let instance = pre.instantiate_async(&mut *store).await?;
                    f(store, &instance).await
                },
                ends,
            )
        };
        let stdio = drain_stdio(&self.name, &store, limits);
        match ended {
            Ended::Done(Ok(answer)) => Ok(answer),
            // Whatever the call's own error, the interrupt is the cause.
            _ if crate::interrupt::interrupted() => Err(fail(GuestFailure::Interrupted)),
            Ended::Done(Err(e)) => Err(fail(classify(&e, limits, &stdio))),
            Ended::Deadline => Err(fail(GuestFailure::Deadline(limits.deadline.as_millis()))),
            Ended::Interrupted => Err(fail(GuestFailure::Interrupted)),
        }
    }

    pub fn retention(
        &self,
        config_json: &str,
        limits: &Limits,
        series: &[bindings::types::Backup],
        now: i64,
    ) -> Result<Vec<retention::Decision>, PolicyError> {
        let idx = self.retention.as_ref();
        let answer = self.call(
            Role::Retention,
            config_json,
            limits,
            &Grants::NONE,
            now,
            series,
            async |store, inst| {
                let guest = idx.expect("checked").load(&mut *store, inst)?;
                guest.call_decide(&mut *store, series, now).await
            },
        )?;
        let decisions =
            answer.map_err(|e| self.failed(Role::Retention, GuestFailure::Returned(e)))?;
        let weight: u64 = decisions
            .iter()
            .map(|d| (d.name.len() + d.reason.len() + 1) as u64)
            .sum();
        self.bound(Role::Retention, weight, limits)?;
        Ok(decisions)
    }

    pub fn naming(
        &self,
        config_json: &str,
        limits: &Limits,
        ctx: &naming::NamingContext,
    ) -> Result<String, PolicyError> {
        let idx = self.naming.as_ref();
        let answer = self.call(
            Role::Naming,
            config_json,
            limits,
            &Grants::NONE,
            ctx.now,
            ctx,
            async |store, inst| {
                let guest = idx.expect("checked").load(&mut *store, inst)?;
                guest.call_name(&mut *store, ctx).await
            },
        )?;
        let name = answer.map_err(|e| self.failed(Role::Naming, GuestFailure::Returned(e)))?;
        self.bound(Role::Naming, name.len() as u64, limits)?;
        Ok(name)
    }

    pub fn approve(
        &self,
        config_json: &str,
        limits: &Limits,
        req: &restore_approval::RestoreRequest,
    ) -> Result<restore_approval::Approval, PolicyError> {
        let idx = self.restore_approval.as_ref();
        let answer = self.call(
            Role::RestoreApproval,
            config_json,
            limits,
            &Grants::NONE,
            req.now,
            req,
            async |store, inst| {
                let guest = idx.expect("checked").load(&mut *store, inst)?;
                guest.call_approve(&mut *store, req).await
            },
        )?;
        if let restore_approval::Approval::Deny(why) = &answer {
            self.bound(Role::RestoreApproval, why.len() as u64, limits)?;
        }
        Ok(answer)
    }

    pub fn approve_media(
        &self,
        config_json: &str,
        limits: &Limits,
        req: &restore_approval::MediaRestoreRequest,
    ) -> Result<restore_approval::Approval, PolicyError> {
        let idx = self.restore_approval.as_ref();
        let answer = self.call(
            Role::RestoreApproval,
            config_json,
            limits,
            &Grants::NONE,
            req.now,
            req,
            async |store, inst| {
                let guest = idx.expect("checked").load(&mut *store, inst)?;
                guest.call_approve_media(&mut *store, req).await
            },
        )?;
        if let restore_approval::Approval::Deny(why) = &answer {
            self.bound(Role::RestoreApproval, why.len() as u64, limits)?;
        }
        Ok(answer)
    }

    /// `Ok(Err(reason))` is the hook's own answer (a veto on a pre event),
    /// with the values of its secrets hidden.
    pub fn on_event(
        &self,
        config_json: &str,
        limits: &Limits,
        grants: &Grants,
        event: &hooks::Event,
    ) -> Result<Result<(), String>, PolicyError> {
        let idx = self.hooks.as_ref();
        let answer = self.call(
            Role::Hook,
            config_json,
            limits,
            grants,
            event.now,
            event,
            async |store, inst| {
                let guest = idx.expect("checked").load(&mut *store, inst)?;
                guest.call_on_event(&mut *store, event).await
            },
        )?;
        if let Err(why) = &answer {
            self.bound(Role::Hook, why.len() as u64, limits)?;
        }
        let redactor = grants
            .http
            .as_ref()
            .map(|g| g.redactor.clone())
            .unwrap_or_default();
        Ok(answer.map_err(|why| redactor.redact(&why).into_owned()))
    }

    pub fn failed(&self, role: Role, failure: GuestFailure) -> PolicyError {
        PolicyError {
            module: self.name.clone(),
            role: role.as_str(),
            failure,
        }
    }

    fn bound(&self, role: Role, weight: u64, limits: &Limits) -> Result<(), PolicyError> {
        if weight > limits.output_bytes {
            return Err(self.failed(
                role,
                GuestFailure::OutputTooLarge(limits.output_bytes >> 10),
            ));
        }
        Ok(())
    }
}

/// What a call is granted beyond the sandbox.
#[derive(Default)]
pub struct Grants {
    pub http: Option<Arc<HttpGrant>>,
    /// Where the requests of the call are written down (`policy test`).
    pub journal: Option<Arc<Mutex<Vec<Exchange>>>>,
}

impl Grants {
    pub const NONE: Grants = Grants {
        http: None,
        journal: None,
    };
}

/// What the guest printed, for classifying a failure.
struct Stdio {
    /// A stream reached its bound (the guest's writes then fail).
    full: bool,
    /// The last line of stderr: a Rust panic message, a Python traceback's end.
    last_err_line: Option<String>,
}

/// Logs what the guest printed, escaped, line by line, within what is left
/// of the call's bound on shown text; says once what was not shown. stdout
/// and stderr never reach the terminal.
fn drain_stdio(module: &str, store: &Store<GuestState>, limits: &Limits) -> Stdio {
    let state = store.data();
    let mut shown = state.shown.clone();
    let mut out = Stdio {
        full: false,
        last_err_line: None,
    };
    for (stream, pipe) in [("stdout", &state.stdout), ("stderr", &state.stderr)] {
        let bytes = pipe.contents();
        out.full |= bytes.len() as u64 >= limits.log_bytes;
        let text = String::from_utf8_lossy(&bytes);
        let text = state.redactor.redact(&text);
        for line in text.lines() {
            let line = format!("[{module} {stream}] {}", escape(line));
            if shown.admit(line.len()) {
                tracing::info!("{line}");
            }
        }
        if stream == "stderr" {
            out.last_err_line = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty() && !l.starts_with("note: "))
                .map(|l| escape(l).chars().take(300).collect());
        }
    }
    shown.report(module);
    out
}

/// Turns a wasmtime error into the cause people need.
fn classify(e: &wasmtime::Error, limits: &Limits, stdio: &Stdio) -> GuestFailure {
    for cause in e.chain() {
        if cause.downcast_ref::<MemoryLimitHit>().is_some() {
            return GuestFailure::Memory(limits.memory_bytes >> 20);
        }
        if cause.downcast_ref::<LogLimitHit>().is_some() {
            return GuestFailure::LogFlood(limits.log_bytes >> 10);
        }
    }
    if e.is::<MemoryLimitHit>() {
        return GuestFailure::Memory(limits.memory_bytes >> 20);
    }
    if e.is::<LogLimitHit>() {
        return GuestFailure::LogFlood(limits.log_bytes >> 10);
    }
    if stdio.full {
        return GuestFailure::LogFlood(limits.log_bytes >> 10);
    }
    if let Some(exit) = e
        .chain()
        .find_map(|c| c.downcast_ref::<wasmtime_wasi::I32Exit>())
    {
        return GuestFailure::Exited(exit.0);
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => GuestFailure::OutOfFuel(limits.fuel),
        Some(Trap::Interrupt) => GuestFailure::Deadline(limits.deadline.as_millis()),
        Some(trap) => GuestFailure::Trap(match &stdio.last_err_line {
            Some(line) => format!("{trap} (its stderr ends: {line})"),
            None => format!("{trap}"),
        }),
        None => {
            // The causes, one line each, without the wasm backtrace that
            // wasmtime adds as a context.
            let causes: Vec<String> = e
                .chain()
                .map(|c| first_line(&c.to_string()))
                .filter(|c| !c.starts_with("error while executing at wasm backtrace"))
                .collect();
            let text = causes.join(": ");
            if text.contains("MemoryOutputPipe") {
                GuestFailure::LogFlood(limits.log_bytes >> 10)
            } else if text.contains("too much data is being copied between the host and the guest")
            {
                // wasmtime's bound on what one call copies out of the guest
                // (its error type is private): the answer was too large. It
                // is surely over output_kib only if output_kib is well below
                // the bound: the runtime counts a list's element layout too
                // (20 bytes for a decision), output_kib only the text.
                if limits.output_bytes.saturating_mul(32) <= HOSTCALL_BYTES as u64 {
                    GuestFailure::OutputTooLarge(limits.output_bytes >> 10)
                } else {
                    GuestFailure::OutputBeyondRuntime
                }
            } else {
                GuestFailure::Trap(text)
            }
        }
    }
}
