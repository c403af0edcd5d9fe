//! A reader merges the latest values of the instruments one client watches.
//!
//! Each instrument is a `watch` receiver: a reader that falls behind sees only the newest
//! value when it polls again (the sequence gap shows what it skipped), so the memory a
//! stream holds grows with its instruments, never with the update rate, and a slow
//! client never slows a fast one. Status changes (stale, resumed, refused …) become
//! events of their own.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::stream::{AbortHandle, Abortable, BoxStream, SelectAll, Stream, StreamExt};
use tokio_stream::wrappers::WatchStream;

use super::error::FanoutError;
use super::feed::{FeedStatus, FeedView};
use super::registry::FeedRef;
use crate::metrics::Metrics;

/// What happened to one instrument of a reader.
#[derive(Debug, Clone, PartialEq)]
pub enum StatusKind {
    /// Held; data follows.
    Subscribed,
    /// The session or the instrument's farm is down; values are old.
    Stale,
    /// Fresh values flow again after a stale period of `gap`.
    Resumed { gap: Option<Duration> },
    /// Live data was refused; delayed data follows instead.
    DelayedFallback,
    /// IB refused the instrument; the reader dropped it.
    Failed(FanoutError),
}

/// One event of a reader.
#[derive(Debug, Clone)]
pub enum ReaderEvent {
    /// The newest value of slot `slot`; `skipped` values were replaced before it was read.
    Update {
        slot: usize,
        view: Arc<FeedView>,
        skipped: u64,
    },
    Status {
        slot: usize,
        kind: StatusKind,
    },
}

struct Slot {
    feed: Option<FeedRef>,
    abort: AbortHandle,
    allow_delayed: bool,
    last_seq: u64,
    stale: bool,
    resumes: u32,
    fallback_seen: bool,
}

/// Merged, conflated view of several instruments. Dropping it releases them all.
pub struct Reader {
    slots: Vec<Option<Slot>>,
    merged: SelectAll<BoxStream<'static, (usize, Arc<FeedView>)>>,
    pending: VecDeque<ReaderEvent>,
    metrics: Arc<Metrics>,
    /// Stay open with no instruments (a chain re-centres; a quote stream ends).
    keep_open: bool,
}

impl Reader {
    pub fn new(metrics: Arc<Metrics>, keep_open: bool) -> Reader {
        Reader {
            slots: Vec::new(),
            merged: SelectAll::new(),
            pending: VecDeque::new(),
            metrics,
            keep_open,
        }
    }

    /// Watches one more instrument; its current value (if any) is the next event for it.
    pub fn add(&mut self, feed: FeedRef, allow_delayed: bool) -> usize {
        let slot = self.slots.len();
        let (abort, registration) = AbortHandle::new_pair();
        let updates = WatchStream::new(feed.watch()).map(move |v| (slot, v));
        self.merged
            .push(Abortable::new(updates, registration).boxed());
        self.slots.push(Some(Slot {
            feed: Some(feed),
            abort,
            allow_delayed,
            last_seq: 0,
            stale: false,
            resumes: 0,
            fallback_seen: false,
        }));
        self.pending.push_back(ReaderEvent::Status {
            slot,
            kind: StatusKind::Subscribed,
        });
        slot
    }

    /// Stops watching a slot and releases its instrument.
    pub fn remove(&mut self, slot: usize) {
        if let Some(s) = self.slots.get_mut(slot).and_then(Option::take) {
            s.abort.abort();
        }
    }

    /// The feed of a slot still watched.
    pub fn feed(&self, slot: usize) -> Option<&FeedRef> {
        self.slots.get(slot)?.as_ref()?.feed.as_ref()
    }

    /// Slots still watched.
    pub fn active(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    fn on_view(&mut self, slot_id: usize, view: Arc<FeedView>) {
        let Some(slot) = self.slots.get_mut(slot_id).and_then(Option::as_mut) else {
            return;
        };
        let mut failure = None;
        if let FeedStatus::Failed(e) = &view.status {
            failure = Some(FanoutError::from(e.clone()));
        } else if view.fallback && !slot.allow_delayed {
            failure = Some(FanoutError::NoPermission(format!(
                "{} has no live market-data permission",
                view.quote.symbol
            )));
        }
        if let Some(error) = failure {
            self.pending.push_back(ReaderEvent::Status {
                slot: slot_id,
                kind: StatusKind::Failed(error),
            });
            self.remove(slot_id);
            return;
        }
        if view.fallback && !slot.fallback_seen {
            slot.fallback_seen = true;
            self.pending.push_back(ReaderEvent::Status {
                slot: slot_id,
                kind: StatusKind::DelayedFallback,
            });
        }
        let stale = view.status == FeedStatus::Stale;
        if view.resumes > slot.resumes {
            if slot.last_seq > 0 || slot.stale {
                // A reader that fell behind may never have seen the stale value: the
                // episode is still told, late, so no outage is conflated away.
                if !slot.stale {
                    self.pending.push_back(ReaderEvent::Status {
                        slot: slot_id,
                        kind: StatusKind::Stale,
                    });
                }
                self.pending.push_back(ReaderEvent::Status {
                    slot: slot_id,
                    kind: StatusKind::Resumed { gap: view.last_gap },
                });
            }
            slot.resumes = view.resumes;
            slot.stale = false;
        }
        if stale && !slot.stale {
            slot.stale = true;
            self.pending.push_back(ReaderEvent::Status {
                slot: slot_id,
                kind: StatusKind::Stale,
            });
        } else if !stale {
            slot.stale = false;
        }
        let seq = view.quote.sequence;
        if seq > slot.last_seq && (view.quote.has_data() || view.extras.model.is_some()) {
            let skipped = if slot.last_seq == 0 {
                0
            } else {
                seq - slot.last_seq - 1
            };
            self.metrics.conflated.inc_by(skipped);
            slot.last_seq = seq;
            self.pending.push_back(ReaderEvent::Update {
                slot: slot_id,
                view,
                skipped,
            });
        }
    }
}

impl Stream for Reader {
    type Item = ReaderEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ReaderEvent>> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Poll::Ready(Some(e));
            }
            match self.merged.poll_next_unpin(cx) {
                Poll::Ready(Some((slot, view))) => self.on_view(slot, view),
                Poll::Ready(None) => {
                    return if self.keep_open {
                        Poll::Pending
                    } else {
                        Poll::Ready(None)
                    };
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
