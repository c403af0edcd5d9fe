//! Tick frames per second the simulated gateway delivers to subscribed clients, with the
//! whole simulator on one core (a current-thread runtime).
//!
//! Clients are raw sockets on another thread that only parse frame lengths and count tick
//! frames, so the figure is the simulator's, not a client library's.
//!
//! `cargo bench --bench sim_throughput` (optional: `-- <instruments> <connections> <seconds>`,
//! defaults 20 4 5). With the defaults the figure is bound by the model's step rate (one
//! step per instrument per millisecond); more connections show the fan-out capacity.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check here should panic

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, BytesMut};
use ibstream::proto::tws;
// A client frames its requests exactly as the gateway frames its messages.
use ibstream::sim::frame::encode as frame;
use ibstream::sim::{SimConfig, Simulator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SYMBOLS: &[&str] = &[
    "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "AMD", "NFLX", "INTC", "JPM", "BAC",
    "XOM", "KO", "PFE", "DIS", "WMT", "SPY", "QQQ", "IWM", "DIA", "GLD", "TLT", "XLF",
];

/// Wire ids of the tick messages counted: TickPrice, TickSize, TickOptionComputation,
/// TickGeneric, TickString.
const TICK_WIRE_IDS: [i32; 5] = [201, 202, 221, 245, 246];

/// Connects, subscribes to `instruments` stocks, then counts tick frames into `counter`.
async fn reader(
    addr: SocketAddr,
    client_id: i32,
    instruments: usize,
    counter: Arc<AtomicU64>,
) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(addr).await?;
    let mut hello = BytesMut::new();
    hello.put_slice(b"API\0");
    hello.put_u32(9);
    hello.put_slice(b"v213..226");
    stream.write_all(&hello).await?;
    stream
        .write_all(&frame(
            71,
            &tws::StartApiRequest {
                client_id: Some(client_id),
                optional_capabilities: None,
            },
        ))
        .await?;
    for (i, symbol) in SYMBOLS.iter().cycle().take(instruments).enumerate() {
        let contract = tws::Contract {
            symbol: Some(symbol.to_string()),
            sec_type: Some("STK".into()),
            exchange: Some("SMART".into()),
            currency: Some("USD".into()),
            ..Default::default()
        };
        let req = tws::MarketDataRequest {
            req_id: Some(1_500_000_000 + i as i32),
            contract: Some(contract),
            ..Default::default()
        };
        stream.write_all(&frame(1, &req)).await?;
    }
    let mut buf = BytesMut::with_capacity(256 * 1024);
    let mut handshake_done = false;
    loop {
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
        let mut ticks = 0;
        while buf.len() >= 4 {
            let len = (&buf[..4]).get_u32() as usize;
            if buf.len() < 4 + len {
                break;
            }
            if handshake_done {
                let id = (&buf[4..8]).get_i32();
                ticks += u64::from(TICK_WIRE_IDS.contains(&id));
            }
            handshake_done = true;
            buf.advance(4 + len);
        }
        counter.fetch_add(ticks, Ordering::Relaxed);
    }
}

fn arg(n: usize, default: u64) -> u64 {
    std::env::args()
        .filter(|a| !a.starts_with('-'))
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let instruments = arg(1, 20) as usize;
    let connections = arg(2, 4) as i32;
    let seconds = arg(3, 5);

    // The simulator: one thread.
    let sim_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let sim = sim_rt.block_on(Simulator::start(SimConfig {
        tick_interval: Duration::from_millis(1),
        max_messages_per_second: 10_000,
        ..SimConfig::default()
    }))?;
    let addr = sim.gateway_addr();

    // The readers: another thread, so they do not compete for the simulator's core.
    let counter = Arc::new(AtomicU64::new(0));
    let reader_counter = counter.clone();
    let readers = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("reader runtime");
        rt.block_on(async move {
            let tasks: Vec<_> = (0..connections)
                .map(|c| tokio::spawn(reader(addr, 100 + c, instruments, reader_counter.clone())))
                .collect();
            tokio::time::sleep(Duration::from_secs(seconds + 2)).await;
            for t in tasks {
                t.abort();
            }
        });
    });

    sim_rt.block_on(async {
        tokio::time::sleep(Duration::from_secs(1)).await; // warm-up: subscriptions and opening values
        let (start_count, start) = (counter.load(Ordering::Relaxed), Instant::now());
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let frames = counter.load(Ordering::Relaxed) - start_count;
        let elapsed = start.elapsed().as_secs_f64();
        let stats = sim.control().stats();
        println!("sim_throughput: {instruments} instruments x {connections} connections, tick interval 1 ms, simulator on one core");
        println!(
            "  {frames} tick frames in {elapsed:.2} s = {:.0} frames/s delivered ({:.0} per connection); {} subscriptions on {} producers",
            frames as f64 / elapsed,
            frames as f64 / elapsed / f64::from(connections),
            stats.active_market_data_subscriptions,
            stats.active_instruments,
        );
        sim.shutdown().await;
    });
    readers.join().map_err(|_| "reader thread panicked")?;
    Ok(())
}
