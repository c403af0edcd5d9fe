#!/usr/bin/env python3
"""Streams a window of an option chain with Greeks from ibstream.

    python3 stream_chain.py 127.0.0.1:50051 SPY --expirations 1 --strikes 4 --updates 8

Prints the window, then one line per option update (bid/ask, implied volatility,
delta, gamma, vega, theta). Exits 0 after --updates option updates that carry a quote
and Greeks; non-zero when the stream fails or ends, or --timeout passes first.
"""

import argparse
import sys

import ibstream_client as ib


def option_name(option):
    right = {1: "C", 2: "P"}.get(option.right, "?")
    return f"{option.symbol} {option.expiry} {option.strike:g} {right}"


def print_option(md, o):
    q, g = o.quote, o.greeks
    source = md.GreeksSource.Name(g.source).removeprefix("GREEKS_SOURCE_")
    print(
        f"{option_name(o.option)} bid={ib.fmt(q, 'bid')} ask={ib.fmt(q, 'ask')} "
        f"iv={ib.fmt(g, 'implied_volatility', '{:.4f}')} delta={ib.fmt(g, 'delta', '{:.4f}')} "
        f"gamma={ib.fmt(g, 'gamma', '{:.4f}')} vega={ib.fmt(g, 'vega', '{:.4f}')} "
        f"theta={ib.fmt(g, 'theta', '{:.4f}')} underlying={ib.fmt(g, 'underlying_price')} source={source}",
        flush=True,
    )


def complete_option(o):
    """Whether an option update carries a price and Greeks."""
    has_quote = o.quote.HasField("bid") or o.quote.HasField("ask")
    return has_quote and o.greeks.HasField("delta") and o.greeks.HasField("implied_volatility")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ib.common_arguments(parser)
    parser.add_argument("symbol", nargs="?", default="SPY", help="the underlying")
    parser.add_argument("--expirations", type=int, default=1, help="nearest expirations")
    parser.add_argument("--strikes", type=int, default=4, help="strikes around the money")
    args = parser.parse_args()

    md, stub = ib.market_data(args.server)
    request = md.StreamOptionChainRequest(
        underlying=md.Instrument(symbol=args.symbol.upper(), sec_type=md.SECURITY_TYPE_STOCK),
        expiration_count=args.expirations,
        strike_count=args.strikes,
        rights=md.RIGHTS_BOTH,
    )
    complete = 0

    def on_message(message):
        nonlocal complete
        event = message.WhichOneof("event")
        if event == "window":
            w = message.window
            print(f"window options={len(w.options)} center={ib.fmt(w, 'center_price')}", flush=True)
        elif event == "underlying":
            u = message.underlying
            print(f"underlying {u.symbol} bid={ib.fmt(u, 'bid')} ask={ib.fmt(u, 'ask')} last={ib.fmt(u, 'last')}", flush=True)
        elif event == "snapshot_complete":
            print(f"snapshot complete options={message.snapshot_complete.options}", flush=True)
        elif event == "status":
            s = message.status
            print(f"status {s.instrument.symbol} {md.InstrumentStatusKind.Name(s.kind)} {s.message}".rstrip(), flush=True)
        elif event == "options":
            # Options that changed together arrive in one batch.
            for o in message.options.options:
                print_option(md, o)
                if complete_option(o):
                    complete += 1
            if complete >= args.updates:
                return 0
        return None

    def ended():
        return f"the stream ended after {complete} of {args.updates} option updates with Greeks"

    return ib.follow(stub, "StreamOptionChain", request, args, on_message, ended)


if __name__ == "__main__":
    sys.exit(main())
