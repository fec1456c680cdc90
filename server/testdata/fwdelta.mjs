#!/usr/bin/env node
// fanwire.js in Node over the npm `ws` package (which offers
// permessage-deflate), asking for Fossil deltas; driven by
// server/delta_clients_test.go:
//
//   fwdelta.mjs FANWIRE_JS_PATH WS_URL TOPIC COUNT
//
// Prints {"event":"subscribed",...}, one {"event":"msg","seq":N,"data":...}
// per delivery the app gets, then {"event":"summary"} with how many raw
// messages were deltas.
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const require = createRequire(import.meta.url);
const WebSocket = require("ws");
const [src, url, topic, countArg] = process.argv.slice(2);
const count = Number(countArg);
const { Fanwire } = await import(pathToFileURL(src).href);

const emit = (o) => process.stdout.write(JSON.stringify(o) + "\n");
let deltas = 0;
let raw = 0;
let socket = null;
class CountingWS extends WebSocket {
  constructor(u) {
    super(u);
    socket = this;
    this.on("message", (data, isBinary) => {
      raw++;
      if (!isBinary && data.toString().includes('"delta":"fossil"')) deltas++;
    });
  }
}
const errors = [];
let got = 0;
const fw = new Fanwire(url, { env: { WebSocket: CountingWS } });
fw.on("error", (e) => errors.push(e.message || e.code));
fw.subscribe(topic, {
  delta: true,
  onSubscribed: (s) => emit({ event: "subscribed", ...s }),
  onMessage: (data, meta) => {
    emit({ event: "msg", seq: meta.seq, data });
    if (++got === count) {
      emit({ event: "summary", deltas, raw, extensions: socket.extensions, errors });
      fw.close();
    }
  },
});
setTimeout(() => {
  emit({ event: "summary", deltas, raw, errors: [...errors, `timeout after ${got} of ${count} messages`] });
  process.exit(1);
}, 30000).unref();
