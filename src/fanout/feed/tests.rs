//! A feed's own stale mark when its data pauses, on a paused clock.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::silence::SILENCE_FLOOR;
use super::{Feed, FeedStatus, FeedView};
use crate::fanout::fake::FakeSource;
use crate::fanout::source::MarketDataSource;
use crate::fanout::tick::{PriceField, Tick};
use crate::fanout::types::{ContractSpec, MarketDataType, SecType};
use crate::metrics::Metrics;

const STEP: Duration = Duration::from_millis(100);

/// Starts a feed of stock `con_id`; returns what it publishes.
fn spawn_feed(
    source: &Arc<FakeSource>,
    con_id: i64,
    cancel: &CancellationToken,
) -> watch::Receiver<Arc<FeedView>> {
    let contract = Arc::new(ContractSpec {
        con_id,
        symbol: format!("S{con_id}"),
        sec_type: SecType::Stock,
        exchange: "SMART".into(),
        currency: "USD".into(),
        ..ContractSpec::default()
    });
    let (tx, rx) = watch::channel(Arc::new(FeedView::new(&contract, MarketDataType::Live)));
    let source: Arc<dyn MarketDataSource> = source.clone();
    let feed = Feed {
        source,
        contract,
        tx,
        base_type: MarketDataType::Live,
        allow_fallback: Arc::new(AtomicBool::new(false)),
        cancel: cancel.clone(),
        metrics: Arc::new(Metrics::default()),
    };
    tokio::spawn(feed.run());
    rx
}

async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

/// One step of the clock; `ticking` instruments send an update first.
async fn step(source: &FakeSource, ticking: &[i64], price: f64) {
    for &con_id in ticking {
        assert!(source.tick(con_id, Tick::Price(PriceField::Bid, price)));
    }
    settle().await;
    tokio::time::advance(STEP).await;
    settle().await;
}

fn status(rx: &watch::Receiver<Arc<FeedView>>) -> FeedStatus {
    rx.borrow().status.clone()
}

#[tokio::test(start_paused = true)]
async fn a_pause_much_longer_than_usual_marks_only_that_instrument_stale() {
    let source = FakeSource::new();
    let cancel = CancellationToken::new();
    let a = spawn_feed(&source, 1, &cancel);
    let b = spawn_feed(&source, 2, &cancel);
    settle().await;
    let mut price = 1.0;
    for _ in 0..30 {
        price += 0.01;
        step(&source, &[1, 2], price).await;
    }
    assert_eq!(status(&a), FeedStatus::Live);
    // A stops; B goes on. Until the floor has passed, A is still live.
    let floor_steps = (SILENCE_FLOOR.as_millis() / STEP.as_millis()) as usize;
    for _ in 0..floor_steps - 2 {
        price += 0.01;
        step(&source, &[2], price).await;
    }
    assert_eq!(status(&a), FeedStatus::Live, "stale before the floor");
    for _ in 0..3 {
        price += 0.01;
        step(&source, &[2], price).await;
    }
    assert_eq!(status(&a), FeedStatus::Stale);
    assert!(a.borrow().quote.stale);
    assert_eq!(
        status(&b),
        FeedStatus::Live,
        "the other instrument stays fresh"
    );
    // A's next update clears the mark.
    step(&source, &[1, 2], price + 0.01).await;
    assert_eq!(status(&a), FeedStatus::Live);
    assert!(!a.borrow().quote.stale);
    assert_eq!(a.borrow().resumes, 1);
    cancel.cancel();
}
