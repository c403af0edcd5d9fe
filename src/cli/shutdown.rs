//! The signals that end a foreground command: SIGINT (Ctrl-C) and SIGTERM.

/// SIGINT and SIGTERM handlers, installed when created: a signal that arrives between
/// start-up and the first wait is kept, not left to the default action (which would
/// kill the process without a clean shutdown).
#[derive(Debug)]
pub struct Termination {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Termination {
    /// Installs the handlers (needs a tokio runtime).
    pub fn install() -> std::io::Result<Termination> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Termination {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Termination {})
    }

    /// Resolves at the next SIGINT or SIGTERM (or one received since installation).
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
