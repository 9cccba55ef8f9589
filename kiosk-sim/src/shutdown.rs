//! Waiting for the operator's stop: Ctrl-C (SIGINT) or SIGTERM (a service manager,
//! `kill`). The in-process servers of a sandbox each stop on those signals by
//! themselves; the process must stop with them, not wait for a Ctrl-C that a service
//! manager never sends.

/// Resolves on the first Ctrl-C or SIGTERM.
pub async fn stop_requested() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result,
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
