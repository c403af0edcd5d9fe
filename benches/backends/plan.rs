//! How big and how long each phase is: the full run (`cargo bench --bench backends`),
//! a quicker one (`-- --quick` or `IBSTREAM_BENCH_QUICK=1`), and the tiny one `cargo test`
//! runs (no `--bench` argument), which only checks that everything is delivered.

use std::time::Duration;

/// Subscribers each streaming the same instruments.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub instruments: usize,
    pub subscribers: usize,
}

impl Shape {
    pub fn label(&self) -> String {
        format!(
            "{} instr × {} subs",
            thousands(self.instruments as f64),
            thousands(self.subscribers as f64)
        )
    }

    /// Quote streams × instruments: the messages one update of every instrument makes.
    pub fn fan(&self) -> f64 {
        (self.instruments * self.subscribers) as f64
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub name: &'static str,
    /// Many instruments, many subscribers; many subscribers, few instruments; one
    /// subscriber, many instruments. `IBSTREAM_BENCH_SHAPES` (e.g. `0,2`) keeps some;
    /// the slow reader runs on the first kept.
    pub shapes: Vec<Shape>,
    /// After every stream is ready, before a window opens.
    pub warmup: Duration,
    pub window: Duration,
    pub idle_streams: usize,
    /// Instruments of each idle stream.
    pub idle_instruments: usize,
    /// How long one subscriber stops reading.
    pub slow_for: Duration,
    /// The chain window: expirations, and strikes either side of the money.
    pub chain_expirations: usize,
    pub chain_strikes_each_side: usize,
    /// Snapshots timed.
    pub chain_repeat: usize,
    /// Clients of the cold start.
    pub cold_clients: usize,
}

impl Plan {
    /// The plan the arguments ask for.
    pub fn from_args() -> Plan {
        let args: Vec<String> = std::env::args().collect();
        let quick = args.iter().any(|a| a == "--quick")
            || std::env::var("IBSTREAM_BENCH_QUICK").is_ok_and(|v| v == "1");
        let mut plan = if !args.iter().any(|a| a == "--bench") {
            Plan::tiny()
        } else if quick {
            Plan::quick()
        } else {
            Plan::full()
        };
        if let Ok(kept) = std::env::var("IBSTREAM_BENCH_SHAPES") {
            let kept: Vec<usize> = kept
                .split(',')
                .filter_map(|i| i.trim().parse().ok())
                .collect();
            plan.shapes = (plan.shapes.iter().enumerate())
                .filter(|(i, _)| kept.contains(i))
                .map(|(_, s)| *s)
                .collect();
            assert!(
                !plan.shapes.is_empty(),
                "IBSTREAM_BENCH_SHAPES keeps no shape"
            );
        }
        plan
    }

    fn full() -> Plan {
        Plan {
            name: "full",
            shapes: vec![
                Shape {
                    instruments: 100,
                    subscribers: 50,
                },
                Shape {
                    instruments: 5,
                    subscribers: 1_000,
                },
                Shape {
                    instruments: 500,
                    subscribers: 1,
                },
            ],
            warmup: Duration::from_secs(1),
            window: Duration::from_secs(5),
            idle_streams: 1_000,
            idle_instruments: 5,
            slow_for: Duration::from_secs(30),
            chain_expirations: 5,
            chain_strikes_each_side: 50,
            chain_repeat: 200,
            cold_clients: 50,
        }
    }

    fn quick() -> Plan {
        Plan {
            name: "quick",
            warmup: Duration::from_millis(500),
            window: Duration::from_secs(2),
            slow_for: Duration::from_secs(10),
            chain_repeat: 50,
            ..Plan::full()
        }
    }

    fn tiny() -> Plan {
        Plan {
            name: "tiny",
            shapes: vec![
                Shape {
                    instruments: 4,
                    subscribers: 3,
                },
                Shape {
                    instruments: 2,
                    subscribers: 10,
                },
                Shape {
                    instruments: 8,
                    subscribers: 1,
                },
            ],
            warmup: Duration::from_millis(100),
            window: Duration::from_millis(300),
            idle_streams: 20,
            idle_instruments: 2,
            slow_for: Duration::from_millis(500),
            chain_expirations: 1,
            chain_strikes_each_side: 2,
            chain_repeat: 3,
            cold_clients: 5,
        }
    }

    /// Options in the chain window.
    pub fn chain_options(&self) -> usize {
        self.chain_expirations * self.chain_strikes_each_side * 2 * 2
    }
}

/// `1234567.8` as `1,234,568`.
pub fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < -0.5 {
        out.insert(0, '-');
    }
    out
}
