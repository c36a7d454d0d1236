//! `--state FILE`: URLs, authorizations and tokens survive restarts.
//!
//! Changes wake a persister task that waits a moment (so a burst of grants is one write), then
//! writes the whole state as JSON to a temporary file and renames it over the old one, so a crash
//! mid-write leaves the previous complete file. Pending notifications are not persisted.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use tokio::sync::{Notify, watch};

use super::{Shared, SimulatorError, state::StateData};

/// How long after a change the state is written.
const DEBOUNCE: Duration = Duration::from_millis(50);

/// Reads a state file; a missing file is a fresh start.
pub(crate) fn load(path: &Path) -> Result<Option<StateData>, SimulatorError> {
    let error = |message: String| SimulatorError::State {
        path: path.to_owned(),
        message,
    };
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| error(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(error(e.to_string())),
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
fn save(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Saves after every burst of changes, and once more at shutdown.
pub(crate) async fn run(
    sim: Arc<Shared>,
    path: PathBuf,
    dirty: Arc<Notify>,
    shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = dirty.notified() => tokio::time::sleep(DEBOUNCE).await,
            () = super::stopped(shutdown.clone()) => {
                write(&sim, &path).await;
                return;
            }
        }
        write(&sim, &path).await;
    }
}

async fn write(sim: &Shared, path: &Path) {
    let bytes = serde_json::to_vec(&sim.state().data).expect("state serializes");
    let target = path.to_owned();
    let written = tokio::task::spawn_blocking(move || save(&target, &bytes)).await;
    match written {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!(path = %path.display(), %error, "cannot save state"),
        Err(error) => tracing::error!(%error, "state writer panicked"),
    }
}
