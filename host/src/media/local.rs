//! The local media folder: the checks a backup makes before it may sync
//! (a missing or empty folder must never wipe the remote copy), the file
//! list a restore compares against, and the deletions of `--mirror`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Result;

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
    walk(root, &mut |_| {
        found = true;
        false
    })?;
    Ok(if found {
        RootState::HasFiles
    } else {
        RootState::Empty
    })
}

/// The regular files below `root`, as `/`-separated paths relative to it.
pub fn files(root: &Path) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    if !root.exists() {
        return Ok(out);
    }
    walk(root, &mut |rel| {
        out.insert(rel);
        true
    })?;
    Ok(out)
}

/// Calls `each` with every regular file's relative path until it returns false.
fn walk(root: &Path, each: &mut dyn FnMut(String) -> bool) -> Result<bool> {
    let mut stack: Vec<PathBuf> = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| exit::failed(format!("cannot list {}: {e}", dir.display())))?;
        for entry in entries {
            let entry =
                entry.map_err(|e| exit::failed(format!("cannot list {}: {e}", dir.display())))?;
            let kind = entry.file_type().map_err(|e| {
                exit::failed(format!("cannot read {}: {e}", entry.path().display()))
            })?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                let rel = entry.path();
                let rel = rel.strip_prefix(root).unwrap_or(&rel);
                let rel = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                if !each(rel) {
                    return Ok(false);
                }
            }
        }
    }
    Ok(true)
}

/// Deletes the files `rels` below `root`, then the folders that this left
/// empty (up to, not including, `root`).
pub fn delete_files(root: &Path, rels: &[String]) -> Result<()> {
    for rel in rels {
        let path = root.join(rel);
        std::fs::remove_file(&path).map_err(|e| {
            exit::failed(format!(
                "deleting {} (not in the backup, --mirror): {e}; the files before it in the list were deleted, the rest are still there",
                path.display()
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
        let all: Vec<String> = files(&root).unwrap().into_iter().collect();
        assert_eq!(all, vec!["a/b/f".to_string(), "g".to_string()]);
        delete_files(&root, &["a/b/f".to_string()]).unwrap();
        assert!(!root.join("a").exists() && root.join("g").exists());
    }
}
