//! A service manager stops kiosk-sim's long-running commands with SIGTERM: each must
//! end, cleanly and promptly, not keep running after its servers stopped.

use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{wait_for_line, KillOnDrop, TempDir};

/// How long a command may take to stop after SIGTERM.
const STOP_BOUND: Duration = Duration::from_secs(20);

/// Starts `args`, waits for a line of its standard output starting with `ready`, sends
/// SIGTERM and returns how the process ended (panics past [`STOP_BOUND`]).
fn start_then_terminate(args: &[&std::ffi::OsStr], ready: &str) -> ExitStatus {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiosk-sim"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("kiosk-sim");
    let stdout = child.stdout.take().expect("stdout");
    let mut running = KillOnDrop(child);
    wait_for_line(stdout, ready, Duration::from_secs(120)).expect("the command says it is ready");
    let pid = running.0.id().to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(sent.success());
    let started = Instant::now();
    loop {
        if let Some(status) = running.0.try_wait().expect("wait") {
            return status;
        }
        assert!(
            started.elapsed() < STOP_BOUND,
            "still running {STOP_BOUND:?} after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn sandbox_dir(tmp: &TempDir) -> PathBuf {
    let dir = tmp.0.join("sandbox");
    sandbox::init(&dir).expect("sandbox init");
    dir
}

#[test]
fn sandbox_run_stops_on_sigterm() {
    let tmp = TempDir::new("signals-sandbox");
    let dir = sandbox_dir(&tmp);
    let status = start_then_terminate(
        &["sandbox".as_ref(), "run".as_ref(), dir.as_os_str()],
        "kiosk settings rewritten",
    );
    assert!(status.success(), "{status:?}");
}

#[test]
fn control_serve_stops_on_sigterm() {
    let tmp = TempDir::new("signals-control");
    let dir = sandbox_dir(&tmp);
    let config = dir.join("kiosk-seven.toml");
    let state = tmp.0.join("state");
    let status = start_then_terminate(
        &[
            "control".as_ref(),
            "serve".as_ref(),
            "--config".as_ref(),
            config.as_os_str(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--state-dir".as_ref(),
            state.as_os_str(),
        ],
        "kiosk control interface on",
    );
    assert!(status.success(), "{status:?}");
}
