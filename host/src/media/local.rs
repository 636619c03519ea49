//! The local media folder: the checks a backup makes before it may sync
//! (a missing or empty folder must never wipe the remote copy), the file
//! list a restore compares against, and the deletions of `--mirror`.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::names;
use crate::config::Settings;
use crate::exit;

/// `media_root` from the config, made absolute (a relative path such as
/// `media:x` would otherwise read to rclone as a remote's name).
pub fn configured_root(settings: &Settings, config: &Path) -> Result<PathBuf> {
    let root = settings.media_root.as_ref().ok_or_else(|| {
        exit::usage(format!(
            "media_root is not set in {}; add media_root = \"/path/to/media\" (the folder to back up)",
            config.display()
        ))
    })?;
    std::path::absolute(root).map_err(|e| {
        exit::usage(format!(
            "media_root {} cannot be resolved: {e}",
            root.display()
        ))
    })
}

/// `root` as the argument rclone needs (see [`names::local_root_arg`]), or
/// a usage error when rclone cannot name it.
pub fn root_arg(root: &Path, config: &Path) -> Result<String> {
    names::local_root_arg(root).ok_or_else(|| {
        exit::usage(format!(
            "media_root {} cannot be handed to rclone (its path is not UTF-8 or holds a lone `\u{201b}`); nothing was changed. Move the media folder to a plainer path and point media_root in {} at it",
            names::shown_path(root),
            config.display()
        ))
    })
}

/// What `media_root` is on disk.
#[derive(Debug, PartialEq, Eq)]
pub enum RootState {
    Missing,
    NotAFolder,
    /// A folder without a single regular file (rclone skips symlinks, so a
    /// folder of only links syncs as empty too).
    Empty,
    HasFiles,
}

pub fn root_state(root: &Path) -> Result<RootState> {
    match std::fs::metadata(root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RootState::Missing),
        Err(e) => {
            return Err(exit::failed(format!(
                "cannot read media_root {}: {e}",
                root.display()
            )))
        }
        Ok(m) if !m.is_dir() => return Ok(RootState::NotAFolder),
        Ok(_) => {}
    }
    let mut found = false;
    walk(root, &mut |_: &Path| {
        found = true;
        false
    })?;
    Ok(if found {
        RootState::HasFiles
    } else {
        RootState::Empty
    })
}

/// A regular file below `media_root`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    /// Its path relative to `media_root`, exactly as on disk.
    pub rel: PathBuf,
    /// rclone can read it under its name (see [`names::representable`]).
    pub representable: bool,
}

/// The regular files below `root`, by the name rclone gives each (the text
/// form of [`names`]), so that they compare with a remote listing.
pub fn files(root: &Path) -> Result<BTreeMap<String, LocalFile>> {
    let mut out: BTreeMap<String, LocalFile> = BTreeMap::new();
    if !root.exists() {
        return Ok(out);
    }
    walk(root, &mut |rel| {
        let representable = rel
            .components()
            .all(|c| names::representable(c.as_os_str()));
        let file = LocalFile {
            rel: rel.to_path_buf(),
            representable,
        };
        // Two local names can share one rclone name only if one of them
        // is a name rclone cannot read; the readable one is rclone's.
        match out.entry(names::local_path_text(rel)) {
            Entry::Vacant(v) => {
                v.insert(file);
            }
            Entry::Occupied(mut o) if representable => {
                o.insert(file);
            }
            Entry::Occupied(_) => {}
        }
        true
    })?;
    Ok(out)
}

/// The files below `root` whose names rclone cannot read, as relative
/// paths for an error message (at most `limit` of them, and how many).
pub fn unreadable(files: &BTreeMap<String, LocalFile>, limit: usize) -> (Vec<String>, usize) {
    let bad: Vec<&LocalFile> = files.values().filter(|f| !f.representable).collect();
    let shown = bad
        .iter()
        .take(limit)
        .map(|f| names::shown_path(&f.rel))
        .collect();
    (shown, bad.len())
}

/// Calls `each` with every regular file's path relative to `root` until it
/// returns false.
fn walk(root: &Path, each: &mut dyn FnMut(&Path) -> bool) -> Result<bool> {
    let mut stack: Vec<PathBuf> = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| exit::failed(format!("cannot list {}: {e}", names::shown_path(&dir))))?;
        for entry in entries {
            let entry = entry.map_err(|e| {
                exit::failed(format!("cannot list {}: {e}", names::shown_path(&dir)))
            })?;
            let kind = entry.file_type().map_err(|e| {
                exit::failed(format!(
                    "cannot read {}: {e}",
                    names::shown_path(&entry.path())
                ))
            })?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                let path = entry.path();
                let rel = path.strip_prefix(root).unwrap_or(&path);
                if !each(rel) {
                    return Ok(false);
                }
            }
        }
    }
    Ok(true)
}

/// Deletes the files `rels` (relative to `root`, as on disk), then the
/// folders that this left empty (up to, not including, `root`).
pub fn delete_files(root: &Path, rels: &[PathBuf]) -> Result<()> {
    for rel in rels {
        let path = root.join(rel);
        std::fs::remove_file(&path).map_err(|e| {
            exit::failed(format!(
                "deleting {} (not in the backup, --mirror): {e}; the files before it in the list were deleted, the rest are still there",
                names::shown_path(&path)
            ))
        })?;
        let mut dir = path.parent();
        while let Some(d) = dir {
            if d == root || std::fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_deletes() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("m");
        assert_eq!(root_state(&root).unwrap(), RootState::Missing);
        std::fs::write(&root, b"x").unwrap();
        assert_eq!(root_state(&root).unwrap(), RootState::NotAFolder);
        std::fs::remove_file(&root).unwrap();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        assert_eq!(root_state(&root).unwrap(), RootState::Empty);
        std::fs::write(root.join("a/b/f"), b"x").unwrap();
        std::fs::write(root.join("g"), b"x").unwrap();
        assert_eq!(root_state(&root).unwrap(), RootState::HasFiles);
        std::fs::write(root.join("new\nline"), b"x").unwrap();
        std::fs::write(root.join("it\u{201b}s"), b"x").unwrap();
        let all = files(&root).unwrap();
        let keys: Vec<&str> = all.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            vec!["a/b/f", "g", "it\u{201b}\u{201b}s", "new\u{240a}line"]
        );
        assert_eq!(all["new\u{240a}line"].rel, PathBuf::from("new\nline"));
        assert!(!all["it\u{201b}\u{201b}s"].representable);
        assert_eq!(unreadable(&all, 5), (vec!["it\u{201b}s".to_string()], 1));
        delete_files(&root, &[PathBuf::from("a/b/f")]).unwrap();
        assert!(!root.join("a").exists() && root.join("g").exists());
    }
}
