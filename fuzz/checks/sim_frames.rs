//! The simulated gateway's reading side: `bytes` are sent on one TCP connection to a
//! running [`Simulator`], as a client would send them (the `API\0` handshake, then
//! length-prefixed frames that are decoded and dispatched). The simulator must survive
//! anything: no panic in any of its tasks, and the connection closes once the client has
//! closed its side.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ibstream::sim::{SimConfig, SimHandle, Simulator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

/// How long the simulator may take to close a connection whose client has sent
/// everything; far above the milliseconds it takes, so a loaded machine never trips it.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(60);

/// Panics seen anywhere in the process. The simulator's tasks run on tokio, which would
/// swallow a panic inside a connection task; the hook counts it so the check can fail.
static PANICS: AtomicUsize = AtomicUsize::new(0);

struct Gateway {
    runtime: Runtime,
    addr: SocketAddr,
    _handle: SimHandle,
}

fn gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let handle = runtime
            .block_on(Simulator::start(SimConfig::default()))
            .expect("simulator starts");
        Gateway {
            runtime,
            addr: handle.gateway_addr(),
            _handle: handle,
        }
    })
}

/// Sends `bytes` as one client's whole conversation and reads until the gateway closes.
pub fn check(bytes: &[u8]) {
    let gateway = gateway();
    let panics_before = PANICS.load(Ordering::SeqCst);
    gateway.runtime.block_on(async {
        let mut socket = TcpStream::connect(gateway.addr)
            .await
            .expect("connect to the simulator");
        // The gateway may close early (a bad frame ends the connection), so writes can
        // fail with a reset; that is an answer, not a failure.
        let _ = socket.write_all(bytes).await;
        let _ = socket.shutdown().await;
        let mut answer = Vec::new();
        let closed = tokio::time::timeout(CLOSE_TIMEOUT, socket.read_to_end(&mut answer)).await;
        assert!(
            closed.is_ok(),
            "the simulator kept the connection open {CLOSE_TIMEOUT:?} after the client closed"
        );
    });
    // Give a connection task that is still unwinding the chance to be counted.
    gateway.runtime.block_on(tokio::task::yield_now());
    assert_eq!(
        PANICS.load(Ordering::SeqCst),
        panics_before,
        "the simulator panicked on this input"
    );
}
