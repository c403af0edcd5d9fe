#!/usr/bin/env python3
"""Streams quotes from ibstream and prints one line per update.

    python3 stream_quotes.py 127.0.0.1:50051 AAPL MSFT --updates 10

Exits 0 after --updates quotes with both bid and ask; non-zero when the stream fails
or ends, an instrument is refused, or --timeout passes first.
"""

import argparse
import sys

import ibstream_client as ib


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ib.common_arguments(parser)
    parser.add_argument("symbols", nargs="*", default=["AAPL", "MSFT"], help="stock symbols")
    args = parser.parse_args()

    md, stub = ib.market_data(args.server)
    request = md.StreamQuotesRequest(
        instruments=[md.Instrument(symbol=s.upper(), sec_type=md.SECURITY_TYPE_STOCK) for s in args.symbols]
    )
    failures = (
        md.INSTRUMENT_STATUS_KIND_NOT_FOUND,
        md.INSTRUMENT_STATUS_KIND_NO_PERMISSION,
        md.INSTRUMENT_STATUS_KIND_LINE_LIMIT,
        md.INSTRUMENT_STATUS_KIND_FAILED,
    )
    complete = 0

    def on_message(message):
        nonlocal complete
        event = message.WhichOneof("event")
        if event == "status":
            status = message.status
            kind = md.InstrumentStatusKind.Name(status.kind)
            print(f"{status.instrument.symbol} status={kind} {status.message}".rstrip(), flush=True)
            if status.kind in failures:
                print(f"error: {status.instrument.symbol} refused: {status.message}", file=sys.stderr)
                return 1
            return None
        if event != "quote":
            return None
        q = message.quote
        stale = " STALE" if q.stale else ""
        print(
            f"{q.symbol} bid={ib.fmt(q, 'bid')} ask={ib.fmt(q, 'ask')} last={ib.fmt(q, 'last')} "
            f"bid_size={ib.fmt(q, 'bid_size', '{:.0f}')} ask_size={ib.fmt(q, 'ask_size', '{:.0f}')} "
            f"close={ib.fmt(q, 'close')} seq={q.sequence}{stale}",
            flush=True,
        )
        if q.HasField("bid") and q.HasField("ask") and not q.stale:
            complete += 1
            if complete >= args.updates:
                return 0
        return None

    def ended():
        return f"the stream ended after {complete} of {args.updates} quotes"

    return ib.follow(stub, "StreamQuotes", request, args, on_message, ended)


if __name__ == "__main__":
    sys.exit(main())
