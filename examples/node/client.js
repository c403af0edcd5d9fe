// Shared helpers of the ibstream Node examples: the .proto files are loaded at run time
// with @grpc/proto-loader, so nothing generated is checked in.
'use strict';

const path = require('node:path');
const fs = require('node:fs');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

// proto/ at the repository root, unless IBSTREAM_PROTO_DIR says otherwise.
const PROTO_DIR = process.env.IBSTREAM_PROTO_DIR || path.resolve(__dirname, '..', '..', 'proto');

/** Loads ibstream.v1 and returns its package object (services and enums). */
function loadIbstream() {
  const dir = path.join(PROTO_DIR, 'ibstream', 'v1');
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.proto')).map((f) => path.join('ibstream', 'v1', f));
  const definition = protoLoader.loadSync(files, {
    includeDirs: [PROTO_DIR],
    keepCase: true, // field names as in the .proto (snake_case)
    longs: String, // int64/uint64 (con ids, sequences) as strings: no precision loss
    enums: String, // enum values by name
    defaults: false, // absent optional prices stay absent
    oneofs: true, // `event` names the oneof member that is set
  });
  return grpc.loadPackageDefinition(definition).ibstream.v1;
}

/**
 * Parses `node script.js ADDR [positional…] [--updates N] [--timeout SECS] [--api-key K]`
 * plus the script's own `--name value` flags.
 */
function parseArgs(argv, defaults) {
  const options = { updates: 10, timeout: 30, apiKey: process.env.IBSTREAM_API_KEY, ...defaults };
  const positional = [];
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg.startsWith('--')) {
      const name = arg.slice(2).replace(/-([a-z])/g, (_, c) => c.toUpperCase());
      const value = argv[i + 1];
      if (value === undefined) fail(`missing value for ${arg}`);
      options[name] = typeof options[name] === 'number' ? Number(value) : value;
      i += 1;
    } else {
      positional.push(arg);
    }
  }
  if (positional.length === 0) fail('usage: node <script> ADDR [args…] (e.g. 127.0.0.1:50051)');
  options.server = positional.shift().replace(/^https?:\/\//, '');
  options.positional = positional;
  return options;
}

/** Call metadata: a bearer token when an API key is given. */
function metadata(apiKey) {
  const md = new grpc.Metadata();
  if (apiKey) md.add('authorization', `Bearer ${apiKey}`);
  return md;
}

/** A client of `Service` over a plaintext channel. */
function client(Service, server) {
  return new Service(server, grpc.credentials.createInsecure());
}

/** A deadline `seconds` from now. */
function deadline(seconds) {
  return new Date(Date.now() + seconds * 1000);
}

/** A proto3 optional number formatted, or '-' when absent. */
function fmt(value, digits = 2) {
  return value === undefined || value === null ? '-' : Number(value).toFixed(digits);
}

/**
 * Opens the market-data server stream `method` with the script's key and deadline and
 * ends the process once: `onData(message, finish)` calls `finish(0)` when enough arrived
 * or `finish(1, reason)`; a failed call exits 1 with gRPC's code and details, a stream
 * that ends first exits 1 with `ended()` as the reason (called then, to tell how far it got).
 */
function followStream(args, method, request, onData, ended) {
  const ibstream = loadIbstream();
  const stub = client(ibstream.MarketDataService, args.server);
  const call = stub[method](request, metadata(args.apiKey), { deadline: deadline(args.timeout) });
  let done = false;
  const finish = (code, message) => {
    if (done) return;
    done = true;
    if (message) console.error(`error: ${message}`);
    call.cancel();
    process.exit(code);
  };
  call.on('data', (message) => onData(message, finish));
  call.on('error', (err) => finish(1, `${method} failed: ${err.code}: ${err.details}`));
  call.on('end', () => finish(1, ended()));
}

function fail(message) {
  console.error(`error: ${message}`);
  process.exit(1);
}

module.exports = { loadIbstream, parseArgs, metadata, client, deadline, followStream, fmt, fail, grpc };
