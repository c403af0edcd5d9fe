// Streams quotes from ibstream and prints one line per update.
//
//   node stream_quotes.js 127.0.0.1:50051 AAPL MSFT --updates 10
//
// Exits 0 after --updates quotes with both bid and ask; non-zero when the stream fails
// or ends, an instrument is refused, or --timeout passes first.
'use strict';

const { parseArgs, followStream, fmt, fail } = require('./client');

const FAILURES = new Set([
  'INSTRUMENT_STATUS_KIND_NOT_FOUND',
  'INSTRUMENT_STATUS_KIND_NO_PERMISSION',
  'INSTRUMENT_STATUS_KIND_LINE_LIMIT',
  'INSTRUMENT_STATUS_KIND_FAILED',
]);

function main() {
  const args = parseArgs(process.argv.slice(2), {});
  const symbols = args.positional.length ? args.positional : ['AAPL', 'MSFT'];
  const request = {
    instruments: symbols.map((s) => ({ symbol: s.toUpperCase(), sec_type: 'SECURITY_TYPE_STOCK' })),
  };
  let complete = 0;
  const onData = (message, finish) => {
    if (message.event === 'status') {
      const s = message.status;
      console.log(`${s.instrument.symbol} status=${s.kind} ${s.message || ''}`.trimEnd());
      if (FAILURES.has(s.kind)) finish(1, `${s.instrument.symbol} refused: ${s.message}`);
      return;
    }
    if (message.event !== 'quote') return;
    const q = message.quote;
    console.log(
      `${q.symbol} bid=${fmt(q.bid)} ask=${fmt(q.ask)} last=${fmt(q.last)} ` +
        `bid_size=${fmt(q.bid_size, 0)} ask_size=${fmt(q.ask_size, 0)} close=${fmt(q.close)} ` +
        `seq=${q.sequence}${q.stale ? ' STALE' : ''}`,
    );
    if (q.bid !== undefined && q.ask !== undefined && !q.stale) {
      complete += 1;
      if (complete >= args.updates) finish(0);
    }
  };
  followStream(args, 'StreamQuotes', request, onData, () => `the stream ended after ${complete} of ${args.updates} quotes`);
}

try {
  main();
} catch (err) {
  fail(err.message);
}
