//! The on-disk cache of compiled policies.
//!
//! A cache file is native code that wasmtime maps and runs in rcbackup's
//! own process, outside the sandbox (deserializing is `unsafe`): whoever can
//! write one runs code as the user rcbackup runs as (often root, from cron).
//! So:
//!
//! - Each file is bound to the module it was compiled from: it starts with a
//!   header holding the module's SHA-256 and the runtime key (wasmtime's
//!   compatibility hash and rcbackup's version). The file is read once, the
//!   header checked on those bytes and those same bytes deserialized, so
//!   nothing can change between the check and the use. A file whose header
//!   does not match (another module's artifact copied over it, a damaged
//!   file) is compiled again and replaced, with a warning.
//! - The folder is used only if it is owned by the user rcbackup runs as and
//!   writable by no one else, and every folder above it is owned by that user
//!   or root and writable by no one else unless sticky (as `/tmp` is). A file
//!   is loaded only if it is a regular file (not a symlink), owned by that
//!   user and writable by no one else. Otherwise the folder is neither read
//!   nor written (modules are compiled in memory, one warning says why and
//!   how to fix it), or the file is compiled again and replaced.
//! - What rcbackup writes is private: folders it creates are 0700, files
//!   0600, written to a temporary name and renamed into place.

use std::fs::{self, Metadata};
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use anyhow::{Context as _, Result};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

/// The first bytes of every cache file; the format's version is in it.
const MAGIC: &[u8; 16] = b"rcbackup-cwasm1\n";
/// Magic, the module's SHA-256, the runtime key.
const HEADER_LEN: usize = MAGIC.len() + 32 + 32;

/// Where compiled policies are cached, and whether that place can be trusted.
pub struct Cache {
    /// As configured (`$RCBACKUP_CACHE_DIR`, ...), for messages.
    dir: PathBuf,
    runtime_key: [u8; 32],
    /// The folder's check, made once it exists: its canonical path if it
    /// can be trusted, or why it cannot be.
    checked: Mutex<Option<Result<PathBuf, String>>>,
    warned: AtomicBool,
}

/// Why the cache folder is not used (what is wrong with it); shown with
/// how to fix it.
#[derive(Debug, thiserror::Error)]
#[error("{0}; {UNTRUSTED_FIX}")]
pub struct Untrusted(String);

/// What the cache has for a module.
pub enum Lookup {
    /// Loaded from this file.
    Hit(Component, PathBuf),
    /// Nothing usable: compile, then [`Cache::store`] if `writable`.
    Miss { writable: bool },
}

impl Cache {
    pub fn new(dir: PathBuf, engine: &Engine) -> Cache {
        let mut key = ShaHasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut key);
        env!("CARGO_PKG_VERSION").hash(&mut key);
        Cache {
            dir,
            runtime_key: key.0.finalize().into(),
            checked: Mutex::new(None),
            warned: AtomicBool::new(false),
        }
    }

    /// The cache file of a module, under the folder's canonical path.
    fn file(&self, folder: &Path, module_sha: &[u8; 32]) -> PathBuf {
        folder.join(format!(
            "{}-{}.cwasm",
            hex::encode(module_sha),
            hex::encode(&self.runtime_key[..8])
        ))
    }

    /// The folder's canonical path if it exists and can be trusted; `Ok(None)`
    /// if it does not exist yet; else why it cannot be trusted. Checked once,
    /// and used by its canonical path from then on, so that a symbolic link
    /// changed later does not move the cache.
    fn folder(&self) -> Result<Option<PathBuf>, String> {
        let mut checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(known) = &*checked {
            return known.clone().map(Some);
        }
        let found = match fs::canonicalize(&self.dir) {
            Ok(real) => check_folder(&self.dir, &real).map(|()| real),
            // Not there yet: look again next time (a write creates it).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => Err(format!(
                "the compiled-policy cache folder {} cannot be read ({e})",
                self.dir.display()
            )),
        };
        *checked = Some(found.clone());
        found.map(Some)
    }

    /// Says once per process why the folder is not used.
    pub fn warn_untrusted(&self, why: &Untrusted) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!("{}; {UNTRUSTED_CONSEQUENCE}; {UNTRUSTED_FIX}", why.0);
        }
    }

    /// The caller reports why the folder is not used: no warning after it.
    pub fn said_untrusted(&self) {
        self.warned.store(true, Ordering::Relaxed);
    }

    /// Looks a module up. `name` is how messages call it.
    pub fn lookup(&self, engine: &Engine, name: &str, module: &[u8]) -> Lookup {
        let folder = match self.folder() {
            Ok(Some(folder)) => folder,
            Ok(None) => return Lookup::Miss { writable: true },
            Err(why) => {
                self.warn_untrusted(&Untrusted(why));
                return Lookup::Miss { writable: false };
            }
        };
        let module_sha: [u8; 32] = Sha256::digest(module).into();
        let path = self.file(&folder, &module_sha);
        let bytes = match read_trusted_file(&path) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Lookup::Miss { writable: true },
            Err(why) => {
                tracing::warn!(
                    "compiled-policy cache file {} {why}: not loaded; compiling {name} \
                     again and replacing it",
                    path.display()
                );
                return Lookup::Miss { writable: true };
            }
        };
        let header_ok = bytes.len() >= HEADER_LEN
            && &bytes[..MAGIC.len()] == MAGIC
            && bytes[MAGIC.len()..MAGIC.len() + 32] == module_sha
            && bytes[MAGIC.len() + 32..HEADER_LEN] == self.runtime_key;
        if !header_ok {
            tracing::warn!(
                "compiled-policy cache file {} was not compiled from {name} by this \
                 rcbackup (it holds another module's code, or is damaged): not loaded; \
                 compiling {name} again and replacing it",
                path.display()
            );
            return Lookup::Miss { writable: true };
        }
        // SAFETY: these bytes were written by rcbackup (the file is owned by
        // this user, in a folder only this user can write) for this very
        // module and runtime (the header, checked on these same bytes);
        // wasmtime checks its own header and the engine's settings too.
        match unsafe { Component::deserialize(engine, &bytes[HEADER_LEN..]) } {
            Ok(component) => Lookup::Hit(component, path),
            Err(e) => {
                tracing::debug!("ignoring cache file {}: {e}", path.display());
                Lookup::Miss { writable: true }
            }
        }
    }

    /// Writes a module's compiled form (private, under a temporary name, then
    /// renamed); returns the file. Creates the folder (0700) if it does not
    /// exist. Errors say why the folder cannot be used ([`Untrusted`]) or
    /// written.
    pub fn store(&self, module: &[u8], compiled: &[u8]) -> Result<PathBuf> {
        let folder = match self.folder() {
            Ok(Some(folder)) => folder,
            Ok(None) => {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&self.dir)
                    .with_context(|| format!("creating {}", self.dir.display()))?;
                match self.folder() {
                    Ok(Some(folder)) => folder,
                    Ok(None) => anyhow::bail!("{} vanished as it was made", self.dir.display()),
                    Err(why) => return Err(Untrusted(why).into()),
                }
            }
            Err(why) => return Err(Untrusted(why).into()),
        };
        let module_sha: [u8; 32] = Sha256::digest(module).into();
        let path = self.file(&folder, &module_sha);
        static SERIAL: AtomicU64 = AtomicU64::new(0);
        let tmp = folder.join(format!(
            ".{}.{}.tmp",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_file(&tmp);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        let written = file
            .write_all(MAGIC)
            .and_then(|()| file.write_all(&module_sha))
            .and_then(|()| file.write_all(&self.runtime_key))
            .and_then(|()| file.write_all(compiled));
        drop(file);
        if let Err(e) = written.and_then(|()| fs::rename(&tmp, &path)) {
            let _ = fs::remove_file(&tmp);
            return Err(anyhow::Error::new(e).context(format!("writing {}", path.display())));
        }
        Ok(path)
    }
}

const UNTRUSTED_CONSEQUENCE: &str =
    "a file put there would run as code inside rcbackup, so the folder is not used \
     and policies are compiled on every run";
const UNTRUSTED_FIX: &str = "to cache compiled policies, `chmod go-w` the folder (and own it), \
     or set RCBACKUP_CACHE_DIR to a folder only you can write, e.g. \
     `mkdir -m 700 -p ~/.cache/rcbackup/policies`";

/// The user rcbackup runs as.
fn euid() -> u32 {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

/// Why `meta` lets someone other than this user write there, if it does. A
/// folder above the cache (`above`) may also be root's, and writable by
/// others if sticky (as `/tmp` is): others cannot rename what is not theirs.
fn foreign_writer(meta: &Metadata, above: bool) -> Option<String> {
    let mode = meta.mode() & 0o7777;
    let me = euid();
    if meta.uid() != me && !(above && meta.uid() == 0) {
        return Some(format!(
            "is owned by another user (uid {}, not {me}, the user rcbackup runs as)",
            meta.uid()
        ));
    }
    if mode & 0o022 != 0 && !(above && mode & 0o1000 != 0) {
        return Some(format!("is writable by other users (mode {mode:04o})"));
    }
    None
}

/// Checks the cache folder (`real`, the canonical form of `dir`) and every
/// folder above it.
fn check_folder(dir: &Path, real: &Path) -> Result<(), String> {
    let shown = if dir == real {
        dir.display().to_string()
    } else {
        format!("{} ({})", dir.display(), real.display())
    };
    let meta = fs::symlink_metadata(real)
        .map_err(|e| format!("the compiled-policy cache folder {shown} cannot be read ({e})"))?;
    if !meta.is_dir() {
        return Err(format!(
            "the compiled-policy cache folder {shown} is not a folder"
        ));
    }
    if let Some(why) = foreign_writer(&meta, false) {
        return Err(format!("the compiled-policy cache folder {shown} {why}"));
    }
    for above in real.ancestors().skip(1) {
        let Ok(meta) = fs::symlink_metadata(above) else {
            continue;
        };
        if let Some(why) = foreign_writer(&meta, true) {
            return Err(format!(
                "the folder {} above the compiled-policy cache folder {shown} {why}, \
                 so another user could replace the cache",
                above.display()
            ));
        }
    }
    Ok(())
}

/// A cache file's bytes if it exists and only this user can have written
/// it; `Ok(None)` if it does not exist; else why it is not trusted.
fn read_trusted_file(path: &Path) -> Result<Option<Vec<u8>>, String> {
    let mut file = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err("is a symbolic link".into()),
        Err(e) => return Err(format!("cannot be read ({e})")),
    };
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot be read ({e})"))?;
    if !meta.is_file() {
        return Err("is not a regular file".into());
    }
    if let Some(why) = foreign_writer(&meta, false) {
        return Err(why);
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut bytes)
        .map_err(|e| format!("cannot be read ({e})"))?;
    Ok(Some(bytes))
}

/// Feeds what is hashed into SHA-256: a stable digest of wasmtime's
/// compatibility hash (std's hashers promise no stability).
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        let d = self.0.clone().finalize();
        u64::from_le_bytes(d[..8].try_into().expect("8 bytes"))
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn engine() -> Engine {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        Engine::new(&config).unwrap()
    }

    /// The smallest component: no imports, no exports.
    const EMPTY: &[u8] = b"\0asm\x0d\0\x01\0";

    #[test]
    fn a_file_is_loaded_only_for_its_own_module() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let cache = Cache::new(dir.path().join("c"), &engine);
        assert!(matches!(
            cache.lookup(&engine, "a", EMPTY),
            Lookup::Miss { writable: true }
        ));
        let compiled = engine.precompile_component(EMPTY).unwrap();
        let path = cache.store(EMPTY, &compiled).unwrap();
        let mode = fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let folder_mode = fs::metadata(dir.path().join("c")).unwrap().mode() & 0o777;
        assert_eq!(folder_mode, 0o700);
        assert!(matches!(cache.lookup(&engine, "a", EMPTY), Lookup::Hit(..)));
        // The same artifact under another module's header is refused.
        let mut other = fs::read(&path).unwrap();
        other[MAGIC.len()] ^= 1;
        fs::write(&path, &other).unwrap();
        assert!(matches!(
            cache.lookup(&engine, "a", EMPTY),
            Lookup::Miss { writable: true }
        ));
        // A file without a header (what rcbackup wrote before) too.
        fs::write(&path, &compiled).unwrap();
        assert!(matches!(
            cache.lookup(&engine, "a", EMPTY),
            Lookup::Miss { writable: true }
        ));
        // A symbolic link is not followed.
        let real = dir.path().join("elsewhere.cwasm");
        cache.store(EMPTY, &compiled).unwrap();
        fs::rename(&path, &real).unwrap();
        std::os::unix::fs::symlink(&real, &path).unwrap();
        assert!(matches!(
            cache.lookup(&engine, "a", EMPTY),
            Lookup::Miss { writable: true }
        ));
    }

    #[test]
    fn a_folder_others_can_write_is_neither_read_nor_written() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let folder = dir.path().join("c");
        fs::create_dir(&folder).unwrap();
        fs::set_permissions(&folder, fs::Permissions::from_mode(0o1777)).unwrap();
        let cache = Cache::new(folder.clone(), &engine);
        assert!(matches!(
            cache.lookup(&engine, "a", EMPTY),
            Lookup::Miss { writable: false }
        ));
        let compiled = engine.precompile_component(EMPTY).unwrap();
        let e = format!("{:#}", cache.store(EMPTY, &compiled).unwrap_err());
        assert!(
            e.contains("writable by other users (mode 1777)") && e.contains("chmod go-w"),
            "{e}"
        );
        assert_eq!(fs::read_dir(&folder).unwrap().count(), 0);

        // A group-writable folder above a private one.
        let above = dir.path().join("shared");
        fs::create_dir_all(above.join("c")).unwrap();
        fs::set_permissions(&above, fs::Permissions::from_mode(0o775)).unwrap();
        let cache = Cache::new(above.join("c"), &engine);
        let e = format!("{:#}", cache.store(EMPTY, &compiled).unwrap_err());
        assert!(e.contains("above the compiled-policy cache folder"), "{e}");
    }
}
