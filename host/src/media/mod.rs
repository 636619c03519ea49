//! Media backups: a mirror of `media_root` on the remote, kept up to date by
//! `rclone sync`, plus what each sync overwrote or deleted in dated version
//! folders, from which earlier states can be put back together.
//!
//! Layout below the remote (with the default `media_backup_dir = "media"`):
//! ```text
//! media/                              the mirror: media_root as of the last backup
//! media-versions/<stamp>/...          what the backup started at <stamp> replaced or deleted
//! media-versions/<stamp>.json         the file list of the mirror after that backup
//! ```

pub mod changes;
pub mod history;
pub mod keep;
pub mod listing;
pub mod local;
pub mod names;
pub mod stamp;

pub use history::History;
pub use keep::VersionsKeep;

/// The folder beside the mirror that holds its version folders and file
/// lists: a sibling, so rclone's "--backup-dir must not overlap" rule holds.
pub fn versions_dir(media_dir: &str) -> String {
    format!("{media_dir}-versions")
}

/// Where the media backup lives, relative to the remote.
#[derive(Debug, Clone)]
pub struct Layout {
    pub mirror: String,
    pub versions: String,
}

impl Layout {
    pub fn new(media_dir: &str) -> Layout {
        Layout {
            mirror: media_dir.to_string(),
            versions: versions_dir(media_dir),
        }
    }

    /// The version folder of the backup started at `stamp`.
    pub fn version_folder(&self, stamp: &str) -> String {
        format!("{}/{stamp}", self.versions)
    }

    /// The file list written after the backup started at `stamp`.
    pub fn file_list(&self, stamp: &str) -> String {
        format!("{}/{stamp}{}", self.versions, history::FILE_LIST_SUFFIX)
    }
}
