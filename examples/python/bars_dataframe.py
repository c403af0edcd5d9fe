#!/usr/bin/env python3
"""Loads historical bars from ibstream into a pandas DataFrame and prints it.

    python3 bars_dataframe.py 127.0.0.1:50051 AAPL --size 1m --duration "1800 S"

The frame is indexed by each bar's start (UTC) with open, high, low, close, volume,
wap and count columns. Exits non-zero when the call fails.
"""

import argparse
import os
import sys

import grpc
import pandas as pd

import ibstream_client as ib


def bars_frame(md, stub, symbol, size, duration, what, api_key, timeout):
    """The bars of `symbol` as a DataFrame, and whether they came from ibstream's cache."""
    request = md.GetHistoricalBarsRequest(
        instrument=md.Instrument(symbol=symbol.upper(), sec_type=md.SECURITY_TYPE_STOCK),
        bar_size=size,
        duration=duration,
        what_to_show=md.WhatToShow.Value(f"WHAT_TO_SHOW_{what.upper()}"),
        # Wait out IB's historical pacing instead of failing with RESOURCE_EXHAUSTED.
        wait_for_pacing=True,
    )
    answer = stub.GetHistoricalBars(request, timeout=timeout, metadata=ib.metadata(api_key))
    frame = pd.DataFrame(
        {
            "time": [b.time.seconds for b in answer.bars],
            "open": [b.open for b in answer.bars],
            "high": [b.high for b in answer.bars],
            "low": [b.low for b in answer.bars],
            "close": [b.close for b in answer.bars],
            "volume": [b.volume for b in answer.bars],
            "wap": [b.wap for b in answer.bars],
            "count": [b.count for b in answer.bars],
        }
    )
    frame["time"] = pd.to_datetime(frame["time"], unit="s", utc=True)
    return frame.set_index("time"), answer.from_cache


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("server", help="ibstream server address, e.g. 127.0.0.1:50051")
    parser.add_argument("symbol", help="stock symbol")
    parser.add_argument("--size", default="1m", help="bar size: 1s ... 1m ... 1d 1w 1mo")
    parser.add_argument("--duration", default="1 D", help='how far back: "1800 S", "1 D", "1w"')
    parser.add_argument("--what", default="trades", help="trades, midpoint, bid, ask, ...")
    parser.add_argument("--timeout", type=float, default=60.0, help="give up after this many seconds")
    parser.add_argument("--api-key", default=None, help="API key (default: $IBSTREAM_API_KEY)")
    args = parser.parse_args()
    api_key = args.api_key or os.environ.get("IBSTREAM_API_KEY")

    md, stub = ib.market_data(args.server)
    try:
        frame, cached = bars_frame(md, stub, args.symbol, args.size, args.duration, args.what, api_key, args.timeout)
    except grpc.RpcError as err:
        print(f"error: GetHistoricalBars failed: {err.code().name}: {err.details()}", file=sys.stderr)
        return 1
    with pd.option_context("display.max_rows", 20, "display.max_columns", None, "display.width", 120):
        print(frame)
    print(f"bars={len(frame)} from_cache={cached} first={frame.index.min()} last={frame.index.max()} "
          f"high={frame['high'].max()} low={frame['low'].min()} volume={frame['volume'].sum():.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
