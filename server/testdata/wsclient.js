#!/usr/bin/env node
// Independent fanwire client built on the npm `ws` package, driven by
// server/clients_test.go. Same modes and output as pyclient.py:
//
//   wsclient.js subscribe URL INBAND_TOPIC COUNT
//   wsclient.js echo URL SIZE
//
// Every line printed is one JSON object; the last has "event":"summary".
'use strict';

const crypto = require('crypto');
const WebSocket = require('ws');

const TIMEOUT = 20000; // ms per step; the Go test has its own overall deadline

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

// Must match clientData in clients_test.go.
function expectedData(seq) {
  return JSON.stringify({ n: seq, s: 'h\u00e9llo "quoted" \u2603 \u{1F680}' });
}

// messages turns the socket's events into an awaitable queue.
function messages(ws) {
  const queue = [];
  const waiters = [];
  let closed = null;
  ws.on('message', (data, isBinary) => {
    const m = { data, isBinary };
    if (waiters.length) waiters.shift().resolve(m);
    else queue.push(m);
  });
  ws.on('close', (code) => {
    closed = code;
    while (waiters.length) waiters.shift().reject(new Error('closed with ' + code));
  });
  return function next() {
    if (queue.length) return Promise.resolve(queue.shift());
    if (closed !== null) return Promise.reject(new Error('closed with ' + closed));
    return new Promise((resolve, reject) => {
      const w = { resolve, reject };
      waiters.push(w);
      setTimeout(() => {
        const i = waiters.indexOf(w);
        if (i >= 0) {
          waiters.splice(i, 1);
          reject(new Error('no message within ' + TIMEOUT + ' ms'));
        }
      }, TIMEOUT).unref();
    });
  };
}

function open(url) {
  // perMessageDeflate with threshold 0: offer permessage-deflate and
  // compress every message we send when the server accepts.
  const ws = new WebSocket(url, { maxPayload: 64 << 20, handshakeTimeout: TIMEOUT, perMessageDeflate: { threshold: 0 } });
  const next = messages(ws);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, next }));
    ws.once('error', reject);
  });
}

function closeNormally(ws) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), TIMEOUT);
    ws.once('close', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    ws.close(1000);
  });
}

async function subscribe(url, inband, count) {
  const errors = [];
  const urlTopics = [];
  for (const v of new URL(url).searchParams.getAll('topics')) {
    urlTopics.push(...v.split(',').filter((t) => t));
  }
  const got = {};
  for (const t of [...urlTopics, inband]) got[t] = 0;
  const { ws, next } = await open(url);
  ws.send(JSON.stringify({ op: 'subscribe', topics: [inband] }));
  const ack = JSON.parse((await next()).data.toString());
  if (ack.type !== 'subscribed' || JSON.stringify(ack.topics) !== JSON.stringify([inband]) || !(ack.epochs && ack.epochs[inband])) {
    errors.push('in-band subscribe: unexpected ack ' + JSON.stringify(ack));
  }
  emit({ event: 'ready', ack, extensions: ws.extensions });
  while (Math.min(...Object.values(got)) < count && errors.length < 20) {
    let m;
    try {
      m = await next();
    } catch (e) {
      errors.push(e.message + '; received so far ' + JSON.stringify(got));
      break;
    }
    if (m.isBinary) {
      errors.push('binary message from server');
      continue;
    }
    const msg = JSON.parse(m.data.toString());
    const fields = Object.keys(msg).sort().join(',');
    if (fields !== 'data,seq,topic') {
      errors.push('envelope fields ' + fields + ', want topic, seq, data');
      continue;
    }
    const t = msg.topic;
    if (!(t in got)) {
      errors.push('message on unsubscribed topic ' + t);
      continue;
    }
    if (msg.seq !== got[t] + 1) {
      errors.push(`topic ${t}: seq ${msg.seq} after ${got[t]} (want contiguous from 1)`);
    }
    got[t] = msg.seq;
    if (JSON.stringify(msg.data) !== expectedData(msg.seq)) {
      errors.push(`topic ${t} seq ${msg.seq}: data ${JSON.stringify(msg.data)}`);
    }
  }
  const closeCode = await closeNormally(ws);
  if (closeCode !== 1000) errors.push(`close handshake ended with ${closeCode}, want 1000`);
  emit({ event: 'summary', received: got, close_code: closeCode, errors });
}

async function echo(url, size) {
  const errors = [];
  const { ws, next } = await open(url);
  const text = Buffer.from('fanwire \u2603 \u{1F680} '.repeat(Math.ceil(size / 8)))
    .subarray(0, size)
    .toString('utf8')
    .replace(/\uFFFD+$/, ''); // drop a code point cut in half
  ws.send(text);
  let m = await next();
  const textOk = !m.isBinary && m.data.toString() === text;
  if (!textOk) errors.push(`text echo differs: sent ${text.length} chars, got ${m.data.length} bytes`);
  const data = crypto.randomBytes(size);
  ws.send(data);
  m = await next();
  const binaryOk = m.isBinary && Buffer.compare(m.data, data) === 0;
  if (!binaryOk) errors.push(`binary echo differs: sent ${size} bytes, got ${m.data.length}`);
  const pongOk = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), TIMEOUT);
    ws.once('pong', (payload) => {
      clearTimeout(timer);
      resolve(payload.toString() === 'fanwire-ping');
    });
    ws.ping('fanwire-ping');
  });
  if (!pongOk) errors.push('no pong with the ping payload');
  const closeCode = await closeNormally(ws);
  if (closeCode !== 1000) errors.push(`close handshake ended with ${closeCode}, want 1000`);
  emit({ event: 'summary', text_ok: textOk, binary_ok: binaryOk, pong_ok: pongOk, close_code: closeCode, extensions: ws.extensions, errors });
}

async function main() {
  const [mode, url, a, b] = process.argv.slice(2);
  if (mode === 'subscribe') await subscribe(url, a, parseInt(b, 10));
  else if (mode === 'echo') await echo(url, parseInt(a, 10));
  else throw new Error('usage: wsclient.js subscribe URL INBAND_TOPIC COUNT | echo URL SIZE');
}

main().then(
  () => process.exit(0),
  (e) => {
    emit({ event: 'summary', errors: ['fatal: ' + (e && e.stack ? e.stack : e)] });
    process.exit(1);
  },
);
