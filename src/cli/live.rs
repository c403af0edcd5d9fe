//! The loop shared by the streaming client commands: read a server stream, fold each
//! message into a view, and show it — redrawn in a terminal, one line per update in a
//! pipe — until the stream ends, enough updates arrived, or the user interrupts.

use std::time::Duration;

use super::remote::{RemoteArgs, RemoteError};
use super::table::LiveOutput;
use crate::proto::ibstream::v1 as pb;

/// The options every streaming command takes: which data, when to stop, which server.
#[derive(Debug, clap::Args)]
pub struct LiveArgs {
    /// Fall back to delayed data where live data is not permitted.
    #[arg(long)]
    pub delayed: bool,
    /// Exit after this many data updates.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Exit after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<u64>,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

impl LiveArgs {
    /// The data policy `--delayed` asks for.
    pub fn data_policy(&self) -> pb::DataPolicy {
        if self.delayed {
            pb::DataPolicy::LiveOrDelayed
        } else {
            pb::DataPolicy::Unspecified
        }
    }

    /// Where `--count` and `--duration` end the command.
    pub fn limits(&self) -> Limits {
        Limits {
            count: self.count,
            duration: self.duration.map(Duration::from_secs),
        }
    }
}

/// What one message produced for plain output.
#[derive(Debug, Clone, PartialEq)]
pub enum Printed {
    /// A data update (counts towards `--count`).
    Update(String),
    /// A status line (does not count).
    Notice(String),
}

/// A live view of one stream.
pub trait View {
    /// The stream's message type.
    type Message;

    /// Folds one message into the view; returns what plain output should print.
    fn apply(&mut self, message: Self::Message) -> Vec<Printed>;

    /// The whole view as lines for a screen (`ansi`: with colours).
    fn frame(&self, ansi: bool) -> Vec<String>;

    /// Set when nothing more can arrive (e.g. every instrument failed): the reason.
    fn hopeless(&self) -> Option<String> {
        None
    }
}

/// How a live command ends on its own.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// Exit after this many data updates.
    pub count: Option<u64>,
    /// Exit after this long.
    pub duration: Option<Duration>,
}

/// Runs `view` over `stream` until it ends (an error unless a limit was reached first),
/// `limits` are reached, or SIGINT/SIGTERM. The terminal is restored on every path.
pub async fn run<V: View>(
    view: &mut V,
    mut stream: tonic::Streaming<V::Message>,
    call: &'static str,
    limits: Limits,
) -> anyhow::Result<()> {
    let mut termination = super::shutdown::Termination::install()?;
    let mut out = LiveOutput::detect()?;
    let mut updates = 0u64;
    let mut dirty = true;
    let mut redraw = tokio::time::interval(super::table::FRAME_INTERVAL);
    redraw.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let deadline = async {
        match limits.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = termination.recv() => return Ok(()),
            _ = &mut deadline => return Ok(()),
            _ = redraw.tick(), if out.is_screen() && dirty => {
                draw(&mut out, view)?;
                dirty = false;
            }
            message = stream.message() => {
                let message = match message {
                    Ok(Some(message)) => message,
                    Ok(None) => anyhow::bail!("the server ended the {call} stream"),
                    Err(status) => return Err(RemoteError::call(call, status).into()),
                };
                for printed in view.apply(message) {
                    let (Printed::Update(text) | Printed::Notice(text)) = &printed;
                    out.line(text)?;
                    if matches!(printed, Printed::Update(_)) {
                        updates += 1;
                    }
                }
                dirty = true;
                if limits.count.is_some_and(|n| updates >= n) {
                    draw(&mut out, view)?;
                    return Ok(());
                }
                if let Some(reason) = view.hopeless() {
                    // Leave the screen first so the reason stays readable.
                    drop(out);
                    anyhow::bail!("{reason}");
                }
            }
        }
    }
}

fn draw<V: View>(out: &mut LiveOutput, view: &V) -> std::io::Result<()> {
    match out {
        LiveOutput::Screen(screen) => screen.draw(&view.frame(true)),
        LiveOutput::Lines(_) => Ok(()),
    }
}
