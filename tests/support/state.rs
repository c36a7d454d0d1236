//! The state directory of a cluster a test binary starts, and the watchdog that stops it.

use std::{
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{SystemTime, UNIX_EPOCH},
};

/// A fresh state directory `<tmp>/<prefix>-<pid>-<nanos>` (printed, so a failed test's output
/// names it), and whether to keep it afterwards (`ACQP_KEEP_CONTROL_PLANE=1`).
pub fn dir(prefix: &str) -> (PathBuf, bool) {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
    let keep = std::env::var_os("ACQP_KEEP_CONTROL_PLANE").is_some_and(|v| v != "0");
    eprintln!("{prefix} state: {}", dir.display());
    (dir, keep)
}

/// Starts the watchdog that runs `script down dir [--keep]` once this process is gone. It
/// outlives this process however it ends (exit, panic, SIGKILL) and then stops exactly what
/// `script up dir` started; its own process group keeps it alive through Ctrl-C.
pub fn watchdog(script: &Path, dir: &Path, keep: bool) -> Result<(), String> {
    Command::new("sh")
        .args([
            "-c",
            r#"while kill -0 "$0" 2>/dev/null; do sleep 1; done; exec "$1" down "$2" $3"#,
        ])
        .arg(std::process::id().to_string())
        .arg(script)
        .arg(dir)
        .arg(if keep { "--keep" } else { "" })
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map(drop)
        .map_err(|e| format!("starting the watchdog of {}: {e}", dir.display()))
}
