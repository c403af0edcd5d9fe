// Streams a window of an option chain with Greeks from ibstream.
//
//   node stream_chain.js 127.0.0.1:50051 SPY --expirations 1 --strikes 4 --updates 8
//
// Prints the window, then one line per option update (bid/ask, implied volatility,
// delta, gamma, vega, theta). Exits 0 after --updates option updates that carry a quote
// and Greeks; non-zero when the stream fails or ends, or --timeout passes first.
'use strict';

const { parseArgs, followStream, fmt, fail } = require('./client');

function optionName(o) {
  const right = { OPTION_RIGHT_CALL: 'C', OPTION_RIGHT_PUT: 'P' }[o.right] || '?';
  return `${o.symbol} ${o.expiry} ${o.strike} ${right}`;
}

function printOption(o) {
  const q = o.quote || {};
  const g = o.greeks || {};
  console.log(
    `${optionName(o.option)} bid=${fmt(q.bid)} ask=${fmt(q.ask)} iv=${fmt(g.implied_volatility, 4)} ` +
      `delta=${fmt(g.delta, 4)} gamma=${fmt(g.gamma, 4)} vega=${fmt(g.vega, 4)} theta=${fmt(g.theta, 4)} ` +
      `underlying=${fmt(g.underlying_price)} source=${(g.source || '-').replace('GREEKS_SOURCE_', '')}`,
  );
}

/** Whether an option update carries a price and Greeks. */
function isComplete(o) {
  const q = o.quote || {};
  const g = o.greeks || {};
  return (q.bid !== undefined || q.ask !== undefined) && g.delta !== undefined && g.implied_volatility !== undefined;
}

function main() {
  const args = parseArgs(process.argv.slice(2), { expirations: 1, strikes: 4 });
  const symbol = (args.positional[0] || 'SPY').toUpperCase();
  const request = {
    underlying: { symbol, sec_type: 'SECURITY_TYPE_STOCK' },
    expiration_count: args.expirations,
    strike_count: args.strikes,
    rights: 'RIGHTS_BOTH',
  };
  let complete = 0;
  const onData = (message, finish) => {
    switch (message.event) {
      case 'window':
        console.log(`window options=${message.window.options.length} center=${fmt(message.window.center_price)}`);
        break;
      case 'underlying': {
        const u = message.underlying;
        console.log(`underlying ${u.symbol} bid=${fmt(u.bid)} ask=${fmt(u.ask)} last=${fmt(u.last)}`);
        break;
      }
      case 'snapshot_complete':
        console.log(`snapshot complete options=${message.snapshot_complete.options}`);
        break;
      case 'status': {
        const s = message.status;
        console.log(`status ${s.instrument ? s.instrument.symbol : symbol} ${s.kind} ${s.message || ''}`.trimEnd());
        break;
      }
      case 'options':
        // Options that changed together arrive in one batch.
        for (const o of message.options.options) {
          printOption(o);
          if (isComplete(o)) complete += 1;
        }
        if (complete >= args.updates) finish(0);
        break;
      default:
        break;
    }
  };
  followStream(
    args,
    'StreamOptionChain',
    request,
    onData,
    () => `the stream ended after ${complete} of ${args.updates} option updates with Greeks`,
  );
}

try {
  main();
} catch (err) {
  fail(err.message);
}
