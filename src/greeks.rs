//! Black-Scholes prices, Greeks and implied volatility.
