//! What the reference app keeps in its persistent storage (`start`'s `storage_dir`), which
//! survives `kill`: the current access token (the documented pre-fetch for a faster start) and
//! the push registration it last made. Nothing secret is kept anywhere else; the token is
//! written here and nowhere else (never to a log).
//!
//! One JSON file, read at start and rewritten on every change; a missing or unreadable file is
//! an empty storage (a fresh install).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::clock::VirtualInstant;

/// The file inside `storage_dir`.
const FILE: &str = "reference-client.json";

/// A token kept for the next start.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct StoredToken {
    /// Whose it is.
    pub(crate) identity: String,
    /// The JWT.
    pub(crate) token: String,
    /// When it expires (virtual time).
    pub(crate) expires_at: VirtualInstant,
}

/// The push registration last made from this device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredRegistration {
    /// For whom.
    pub(crate) identity: String,
    /// With which device token.
    pub(crate) device_token: String,
}

/// Everything stored.
#[derive(Clone, Default, Serialize, Deserialize)]
pub(crate) struct Stored {
    /// The current token.
    #[serde(default)]
    pub(crate) token: Option<StoredToken>,
    /// The last push registration.
    #[serde(default)]
    pub(crate) registration: Option<StoredRegistration>,
}

/// The app's storage directory (none: nothing survives a kill).
#[derive(Clone, Debug, Default)]
pub(crate) struct Storage {
    dir: Option<PathBuf>,
}

impl Storage {
    /// Storage in `dir`, if the app was given one.
    pub(crate) fn new(dir: Option<&str>) -> Self {
        Self {
            dir: dir.map(PathBuf::from),
        }
    }

    fn file(&self) -> Option<PathBuf> {
        self.dir.as_deref().map(|d| Path::new(d).join(FILE))
    }

    /// What is stored (empty when nothing is, or the file cannot be read).
    pub(crate) fn load(&self) -> Stored {
        self.file()
            .and_then(|f| std::fs::read(f).ok())
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Changes what is stored; an unwritable directory loses the change (as a full disk would).
    pub(crate) fn update(&self, change: impl FnOnce(&mut Stored)) {
        let Some(file) = self.file() else {
            return;
        };
        let mut stored = self.load();
        change(&mut stored);
        if let Ok(text) = serde_json::to_vec(&stored) {
            let _ = std::fs::write(file, text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_stored_survives_a_new_storage_value_on_the_same_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().display().to_string();
        Storage::new(Some(&path)).update(|s| {
            s.registration = Some(StoredRegistration {
                identity: "alice".into(),
                device_token: "d1".into(),
            });
        });
        let again = Storage::new(Some(&path)).load();
        assert_eq!(again.registration.unwrap().device_token, "d1");
        assert!(Storage::new(None).load().token.is_none());
    }
}
