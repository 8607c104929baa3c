//! The `dev` API key and the local sink's client secret, kept in `dev-secrets.json` in the data
//! directory (owner-only) so the banner's curl keeps working across restarts. Development
//! values only: `serve` never reads this file.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

const FILE: &str = "dev-secrets.json";
const SESSION_SECRET_FILE: &str = "session-secret";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct DevSecrets {
    /// Sent as `KEY` to the built-in Identify API.
    pub api_key: String,
    /// The client-credentials secret of the sink's client at the development provider.
    pub sink_client_secret: String,
}

impl DevSecrets {
    /// Read the file, or create it with fresh values. `create_new`, so two `dev` processes
    /// starting at once agree: the loser reads the winner's file.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<DevSecrets> {
        let path = data_dir.join(FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => return parse(&path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
        let fresh = DevSecrets {
            api_key: super::random_secret(),
            sink_client_secret: super::random_secret(),
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&path) {
            Ok(mut file) => {
                file.write_all(serde_json::to_string_pretty(&fresh)?.as_bytes())
                    .and_then(|()| file.sync_all())
                    .with_context(|| format!("cannot write {}", path.display()))?;
                Ok(fresh)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                parse(&path, &text)
            }
            Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
        }
    }
}

/// The session key, kept in `session-secret` (owner-only) beside the other values; created on
/// first use, the same way (`create_new`: two processes starting at once agree).
pub(super) fn session_secret(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join(SESSION_SECRET_FILE);
    let read = |path: &Path| -> anyhow::Result<String> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        crate::sealed::Keys::parse(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}; delete it to get a new key", path.display()))?;
        Ok(text.trim().to_string())
    };
    if path.exists() {
        return read(&path);
    }
    let fresh = crate::sealed::random_key_text();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut file) => {
            file.write_all(format!("{fresh}\n").as_bytes())
                .and_then(|()| file.sync_all())
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(fresh)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(&path),
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

fn parse(path: &Path, text: &str) -> anyhow::Result<DevSecrets> {
    let secrets: DevSecrets = serde_json::from_str(text).with_context(|| {
        format!(
            "{} is not the dev secrets file; delete it to get new values",
            path.display()
        )
    })?;
    let usable = |s: &str| s.len() >= 20 && s.bytes().all(|b| b.is_ascii_alphanumeric());
    anyhow::ensure!(
        usable(&secrets.api_key) && usable(&secrets.sink_client_secret),
        "{} holds values that are not 20+ letters and digits; delete it to get new ones",
        path.display()
    );
    Ok(secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secrets_survive_a_restart_and_are_readable_by_the_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let first = DevSecrets::load_or_create(dir.path()).unwrap();
        let again = DevSecrets::load_or_create(dir.path()).unwrap();
        assert_eq!(first.api_key, again.api_key);
        assert_eq!(first.sink_client_secret, again.sink_client_secret);
        assert_ne!(first.api_key, first.sink_client_secret);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
    }

    #[test]
    fn the_session_key_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let first = session_secret(dir.path()).unwrap();
        assert_eq!(session_secret(dir.path()).unwrap(), first);
        assert!(crate::sealed::Keys::parse(&first).is_ok());
    }

    #[test]
    fn a_damaged_file_is_reported_by_path_not_silently_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(FILE),
            r#"{"api_key":"x'; rm -rf /","sink_client_secret":"y"}"#,
        )
        .unwrap();
        let err = DevSecrets::load_or_create(dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains(FILE), "{err}");
    }
}
