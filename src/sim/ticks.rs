//! Market-data ticks and their encoding. An instrument update is a list of ticks encoded at
//! most twice (live tick ids, delayed tick ids), lazily, and shared by every subscriber.

use std::sync::OnceLock;

use super::frame::{TailFrame, outbound};
use crate::proto::tws;

/// IB tick type ids used by the simulator.
pub mod tick_type {
    pub const BID_SIZE: i32 = 0;
    pub const BID: i32 = 1;
    pub const ASK: i32 = 2;
    pub const ASK_SIZE: i32 = 3;
    pub const LAST: i32 = 4;
    pub const LAST_SIZE: i32 = 5;
    pub const HIGH: i32 = 6;
    pub const LOW: i32 = 7;
    pub const VOLUME: i32 = 8;
    pub const CLOSE: i32 = 9;
    pub const BID_OPTION: i32 = 10;
    pub const ASK_OPTION: i32 = 11;
    pub const LAST_OPTION: i32 = 12;
    pub const MODEL_OPTION: i32 = 13;
    pub const OPEN: i32 = 14;
    pub const OPTION_HISTORICAL_VOL: i32 = 23;
    pub const OPTION_IMPLIED_VOL: i32 = 24;
    pub const OPTION_CALL_OPEN_INTEREST: i32 = 27;
    pub const OPTION_PUT_OPEN_INTEREST: i32 = 28;
    pub const OPTION_CALL_VOLUME: i32 = 29;
    pub const OPTION_PUT_VOLUME: i32 = 30;
    pub const LAST_TIMESTAMP: i32 = 45;
    pub const HALTED: i32 = 49;
}

/// The delayed counterpart of a live tick id (66–76, 88, 90, 80–83); ids without one are
/// sent unchanged, as IB does.
pub fn delayed_id(live: i32) -> i32 {
    match live {
        0 => 69,
        1 => 66,
        2 => 67,
        3 => 70,
        4 => 68,
        5 => 71,
        6 => 72,
        7 => 73,
        8 => 74,
        9 => 75,
        14 => 76,
        45 => 88,
        49 => 90,
        10 => 80,
        11 => 81,
        12 => 82,
        13 => 83,
        other => other,
    }
}

/// Generic tick lists a subscription opted into, as a bit set; ticks tagged with a generic
/// code are only sent to subscriptions that asked for it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Generics(u8);

impl Generics {
    /// Generic tick codes this market serves, in bit order.
    pub const CODES: [u16; 4] = [100, 101, 104, 106];

    /// Bit of one code; `None` for codes outside [`Self::CODES`].
    fn bit(code: u16) -> Option<u8> {
        Self::CODES.iter().position(|&c| c == code).map(|i| 1 << i)
    }

    /// Adds a code; `false` when the code is not served.
    pub fn insert(&mut self, code: u16) -> bool {
        match Self::bit(code) {
            Some(b) => {
                self.0 |= b;
                true
            }
            None => false,
        }
    }

    /// Whether a tick gated on `gate` (0 = always sent) goes to this subscription.
    pub fn admits(self, gate: u16) -> bool {
        gate == 0 || Self::bit(gate).is_some_and(|b| self.0 & b != 0)
    }
}

/// Option computation values (IB units; see [`crate::greeks`]). `None` is sent as IB's
/// "not computed" sentinel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptionComputation {
    /// Implied volatility of `opt_price`.
    pub implied_vol: Option<f64>,
    /// Delta.
    pub delta: Option<f64>,
    /// The option price the values belong to.
    pub opt_price: Option<f64>,
    /// Present value of dividends to expiry.
    pub pv_dividend: f64,
    /// Gamma.
    pub gamma: Option<f64>,
    /// Vega per volatility point.
    pub vega: Option<f64>,
    /// Theta per calendar day.
    pub theta: Option<f64>,
    /// Underlying price.
    pub und_price: f64,
}

/// One tick.
#[derive(Debug, Clone, PartialEq)]
pub enum Tick {
    /// TickPrice; `size` only for bid/ask/last, which carry their size inside.
    Price {
        ty: i32,
        price: f64,
        size: Option<f64>,
    },
    /// TickSize.
    Size { ty: i32, size: f64 },
    /// TickString.
    Text { ty: i32, value: String },
    /// TickGeneric.
    Generic { ty: i32, value: f64 },
    /// TickOptionComputation.
    Option { ty: i32, value: OptionComputation },
}

/// A tick and the generic code that gates it (0 = always sent).
#[derive(Debug, Clone, PartialEq)]
pub struct GatedTick {
    /// The tick.
    pub tick: Tick,
    /// Generic tick code it needs, 0 when always sent.
    pub gate: u16,
}

/// Constructors for the three kinds the models emit most, so a model's tick list reads as
/// a list of (type, value, gate) rather than nested struct literals.
impl GatedTick {
    /// A TickPrice every subscriber gets; `size` only for bid/ask/last.
    pub fn price(ty: i32, price: f64, size: Option<f64>) -> GatedTick {
        Tick::Price { ty, price, size }.into()
    }

    /// A TickSize sent to subscribers that asked for generic tick `gate` (0 = all).
    pub fn size(ty: i32, size: f64, gate: u16) -> GatedTick {
        GatedTick {
            tick: Tick::Size { ty, size },
            gate,
        }
    }

    /// A TickGeneric sent to subscribers that asked for generic tick `gate` (0 = all).
    pub fn generic(ty: i32, value: f64, gate: u16) -> GatedTick {
        GatedTick {
            tick: Tick::Generic { ty, value },
            gate,
        }
    }
}

impl From<Tick> for GatedTick {
    fn from(tick: Tick) -> Self {
        GatedTick { tick, gate: 0 }
    }
}

/// One encoded tick ready to be sent to any subscriber.
#[derive(Debug, Clone)]
pub struct EncodedTick {
    /// The shared frame tail.
    pub frame: TailFrame,
    /// Generic tick code it needs, 0 when always sent.
    pub gate: u16,
}

/// A decimal string for a size: integers without a fraction, as IB sends them.
fn decimal(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

impl Tick {
    /// The shared part of the frame; `delayed` maps tick ids to their delayed ids.
    pub fn encode(&self, delayed: bool) -> TailFrame {
        let id = |ty: i32| Some(if delayed { delayed_id(ty) } else { ty });
        match self {
            Tick::Price { ty, price, size } => TailFrame::encode(
                outbound::TICK_PRICE,
                &tws::TickPrice {
                    req_id: None,
                    tick_type: id(*ty),
                    price: Some(*price),
                    size: size.map(decimal),
                    attr_mask: Some(0),
                },
            ),
            Tick::Size { ty, size } => TailFrame::encode(
                outbound::TICK_SIZE,
                &tws::TickSize {
                    req_id: None,
                    tick_type: id(*ty),
                    size: Some(decimal(*size)),
                },
            ),
            Tick::Text { ty, value } => TailFrame::encode(
                outbound::TICK_STRING,
                &tws::TickString {
                    req_id: None,
                    tick_type: id(*ty),
                    value: Some(value.clone()),
                },
            ),
            Tick::Generic { ty, value } => TailFrame::encode(
                outbound::TICK_GENERIC,
                &tws::TickGeneric {
                    req_id: None,
                    tick_type: id(*ty),
                    value: Some(*value),
                },
            ),
            Tick::Option { ty, value: c } => TailFrame::encode(
                outbound::TICK_OPTION_COMPUTATION,
                &tws::TickOptionComputation {
                    req_id: None,
                    tick_type: id(*ty),
                    tick_attrib: Some(1),
                    implied_vol: Some(c.implied_vol.unwrap_or(-1.0)),
                    delta: Some(c.delta.unwrap_or(-2.0)),
                    opt_price: Some(c.opt_price.unwrap_or(-1.0)),
                    pv_dividend: Some(c.pv_dividend),
                    gamma: Some(c.gamma.unwrap_or(-2.0)),
                    vega: Some(c.vega.unwrap_or(-2.0)),
                    theta: Some(c.theta.unwrap_or(-2.0)),
                    und_price: Some(c.und_price),
                },
            ),
        }
    }
}

/// Encodes a list of ticks.
pub fn encode_all(ticks: &[GatedTick], delayed: bool) -> Vec<EncodedTick> {
    ticks
        .iter()
        .map(|t| EncodedTick {
            frame: t.tick.encode(delayed),
            gate: t.gate,
        })
        .collect()
}

/// One model step of one instrument, shared by every subscriber through an `Arc`.
#[derive(Debug)]
pub struct TickUpdate {
    /// Underlying price after the step (option feeds price from it).
    pub spot: f64,
    ticks: Vec<GatedTick>,
    live: OnceLock<Vec<EncodedTick>>,
    delayed: OnceLock<Vec<EncodedTick>>,
}

impl TickUpdate {
    /// An update whose frames are encoded on first use.
    pub fn new(spot: f64, ticks: Vec<GatedTick>) -> Self {
        Self {
            spot,
            ticks,
            live: OnceLock::new(),
            delayed: OnceLock::new(),
        }
    }

    /// The ticks of the update.
    pub fn ticks(&self) -> &[GatedTick] {
        &self.ticks
    }

    /// The encoded frames with live or delayed tick ids (encoded once each).
    pub fn frames(&self, delayed: bool) -> &[EncodedTick] {
        let cell = if delayed { &self.delayed } else { &self.live };
        cell.get_or_init(|| encode_all(&self.ticks, delayed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generics_gate_ticks() {
        let mut g = Generics::default();
        assert!(g.insert(101));
        assert!(!g.insert(999));
        assert!(g.admits(0) && g.admits(101) && !g.admits(100));
    }

    #[test]
    fn delayed_frames_use_delayed_ids() {
        let update = TickUpdate::new(
            1.0,
            vec![
                Tick::Price {
                    ty: 1,
                    price: 1.0,
                    size: Some(100.0),
                }
                .into(),
            ],
        );
        let live = &update.frames(false)[0].frame.tail;
        let delayed = &update.frames(true)[0].frame.tail;
        assert_eq!(&live[..2], &[0x10, 1]);
        assert_eq!(&delayed[..2], &[0x10, 66]);
        assert_eq!(decimal(100.0), "100");
        assert_eq!(decimal(0.5), "0.5");
    }
}
