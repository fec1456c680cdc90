// fanwire.js — the browser client of a fanwire node. A dependency-free ES
// module: load it from any node at /fanwire.js, or copy it next to your app.
//
//   import { Fanwire } from "http://127.0.0.1:8080/fanwire.js";
//   const fw = new Fanwire("ws://127.0.0.1:8080/ws");
//   fw.subscribe("prices.BTC-USD", { onMessage: (data, meta) => ... });
//
// It keeps each topic's epoch and last seq, resumes every topic with
// since+epochs after a reconnect, drops duplicates, reports gaps, and passes
// resets, snapshots and conflation on to the app. The wire contract it speaks
// is in the project README ("Wire contract", "Browser client").

export const VERSION = "0.1.0";

/** Option defaults (milliseconds where a time). */
export const DEFAULTS = Object.freeze({
  transports: ["websocket", "sse", "poll"],
  backoffBase: 500, // first retry waits up to this long (full jitter)
  backoffCap: 30000, // no retry waits longer
  hintJitter: 250, // added on top of a server's "reconnect in Nms" hint
  blockedAfter: 3, // connects that fail before opening, in a row, before trying the next transport
  connectTimeout: 10000, // a connect that has not opened by then counts as failed
  refreshAt: 0.8, // refresh the token at this fraction of its lifetime
  requestTimeout: 10000, // publish() and presence() reject after this long without an answer
  streamOpenTimeout: 5000, // an SSE stream without its first event by then is taken as blocked (a buffering proxy)
});

const TOPIC_RE = /^[A-Za-z0-9_.:-]{1,128}$/;
const MAX_TIMER = 2 ** 31 - 1; // setTimeout's limit
const SUBSCRIBE_BATCH = 200; // topics per subscribe op: keeps each op far below --max-message

// ---------------------------------------------------------------------------
// Pure helpers (exported for tests and for apps that want the same policy).

/** Full-jitter exponential backoff: uniform in [0, min(cap, base * 2^attempt)). */
export function backoffDelay(attempt, base = DEFAULTS.backoffBase, cap = DEFAULTS.backoffCap, random = Math.random) {
  const ceiling = Math.min(cap, base * 2 ** Math.min(Math.max(attempt, 0), 30));
  return Math.floor(random() * ceiling);
}

/**
 * The delay a node asks for when it goes away (1001) or disconnects this
 * user (4005): a close whose reason says "... reconnect in 4211ms". null
 * for any other close.
 */
export function reconnectHint(code, reason) {
  if ((code !== 1001 && code !== 4005) || typeof reason !== "string") return null;
  const m = /reconnect in (\d+)ms/.exec(reason);
  return m ? Number(m[1]) : null;
}

/** Topic names: 1-128 characters of [A-Za-z0-9_.:-]. */
export function validTopic(name) {
  return typeof name === "string" && TOPIC_RE.test(name);
}

/**
 * The claims of a JWT that matter for refreshing it, in milliseconds:
 * { exp, iat } (either may be null). The signature is not checked: the node
 * does that; the client only needs to know when to ask for a new token.
 * null if token is not a JWT.
 */
export function jwtTimes(token) {
  if (typeof token !== "string") return null;
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    let b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    b64 += "=".repeat((4 - (b64.length % 4)) % 4);
    const claims = JSON.parse(decodeBase64(b64));
    const ms = (v) => (typeof v === "number" && Number.isFinite(v) ? v * 1000 : null);
    return { exp: ms(claims.exp), iat: ms(claims.iat) };
  } catch {
    return null;
  }
}

function decodeBase64(b64) {
  const bin = atob(b64);
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/**
 * When to refresh token, in ms from now: at fraction of its lifetime (from
 * iat, or from obtainedAt when it has none). 0 when already due, null when
 * the token has no exp.
 */
export function refreshDelay(token, now, fraction = DEFAULTS.refreshAt, obtainedAt = now) {
  const t = jwtTimes(token);
  if (!t || t.exp === null) return null;
  const start = t.iat !== null && t.iat <= obtainedAt ? t.iat : obtainedAt;
  const at = start + (t.exp - start) * fraction;
  return Math.max(0, Math.min(at - now, MAX_TIMER));
}

// ---------------------------------------------------------------------------
// Fossil deltas (https://fossil-scm.org/home/doc/tip/www/delta_format.wiki).
// A node that allows it sends {"topic","seq","delta":"fossil","data":"..."}:
// data is the delta that turns seq-1's data into seq's, one character per
// byte (code points 0-255).

// Digit values of the format's base-64 numbers ("0-9A-Z_a-z~"); -1 ends a number.
const FOSSIL_DIGITS = (() => {
  const v = new Int8Array(256).fill(-1);
  const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~";
  for (let i = 0; i < 64; i++) v[alphabet.charCodeAt(i)] = i;
  return v;
})();

/** The format's checksum: the bytes as big-endian 32-bit words, zero padded, summed mod 2^32. */
export function fossilChecksum(b) {
  let sum = 0;
  const n = b.length;
  let i = 0;
  for (; i + 4 <= n; i += 4) sum = (sum + ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3])) >>> 0;
  let tail = 0;
  for (let k = 0; i + k < n; k++) tail |= b[i + k] << (24 - 8 * k);
  return (sum + (tail >>> 0)) >>> 0;
}

/**
 * Applies a Fossil delta (Uint8Array) to base (Uint8Array) and returns the
 * result; throws on a malformed delta, one that reaches outside base, or a
 * result whose size or checksum is not what the delta says.
 */
export function applyFossilDelta(base, delta) {
  let pos = 0;
  const num = () => {
    let v = 0;
    const start = pos;
    while (pos < delta.length && FOSSIL_DIGITS[delta[pos]] >= 0) {
      v = v * 64 + FOSSIL_DIGITS[delta[pos++]];
      if (v > 0xffffffff) throw new Error("fossil delta: number too large");
    }
    if (pos === start) throw new Error("fossil delta: number expected at " + start);
    return v;
  };
  const size = num();
  if (delta[pos++] !== 0x0a) throw new Error("fossil delta: no newline after the size");
  const out = new Uint8Array(size);
  let n = 0;
  while (pos < delta.length) {
    const cnt = num();
    const cmd = delta[pos++];
    if (cmd === 0x40) { // '@': copy cnt bytes of base from offset
      const off = num();
      if (delta[pos++] !== 0x2c) throw new Error("fossil delta: no comma after a copy offset");
      if (off + cnt > base.length || n + cnt > size) throw new Error("fossil delta: copy out of range");
      out.set(base.subarray(off, off + cnt), n);
      n += cnt;
    } else if (cmd === 0x3a) { // ':': cnt literal bytes
      if (pos + cnt > delta.length || n + cnt > size) throw new Error("fossil delta: insert out of range");
      out.set(delta.subarray(pos, pos + cnt), n);
      n += cnt;
      pos += cnt;
    } else if (cmd === 0x3b) { // ';': end, cnt is the checksum
      if (n !== size) throw new Error("fossil delta: size mismatch");
      if (fossilChecksum(out) !== cnt) throw new Error("fossil delta: checksum mismatch");
      return out;
    } else {
      throw new Error("fossil delta: unknown command at " + (pos - 1));
    }
  }
  throw new Error("fossil delta: unterminated");
}

/** The bytes of a delta string as the node sends it (one character per byte). */
export function deltaBytes(s) {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) throw new Error("fossil delta: character U+" + c.toString(16) + " is not a byte");
    b[i] = c;
  }
  return b;
}

const utf8Encoder = typeof TextEncoder === "function" ? new TextEncoder() : null;
const utf8Decoder = typeof TextDecoder === "function" ? new TextDecoder("utf-8", { fatal: true }) : null;

/**
 * The raw data of a plain delivery's text, exactly as published, as UTF-8
 * bytes: the base of the next delta. null for any other shape (snapshot,
 * conflated): the node sends the next message in full after those.
 */
export function deliveryBase(text, msg) {
  if (!utf8Encoder || msg.snapshot !== undefined || msg.conflated !== undefined || msg.delta !== undefined) return null;
  const prefix = '{"topic":"' + msg.topic + '","seq":' + msg.seq + ',"data":';
  if (!text.startsWith(prefix) || !text.endsWith("}")) return null;
  return utf8Encoder.encode(text.slice(prefix.length, -1));
}

/** Reconstructs a delta delivery's data from base: { bytes, data }. Throws if it cannot. */
export function applyDelivery(base, msg) {
  if (!utf8Decoder || typeof msg.data !== "string") throw new Error("fossil delta: cannot decode here");
  const bytes = applyFossilDelta(base, deltaBytes(msg.data));
  return { bytes, data: JSON.parse(utf8Decoder.decode(bytes)) };
}

/**
 * A topic's resume bookkeeping: its epoch and the last seq delivered to the
 * app. accept() decides, for each delivery, whether the app gets it.
 */
export class TopicState {
  constructor(name) {
    this.name = name;
    this.epoch = null; // from the subscribe ack or a reset
    this.lastSeq = null; // last seq delivered to the app
    this.floor = null; // seq the server said this subscription starts after (ack "seqs"), while nothing was delivered
    this.delta = null; // "fossil": ask for deltas (null after a delta could not be applied)
    this.base = null; // the last delivered data as UTF-8 bytes, while deltas are asked for
  }

  /**
   * Where to resume: { since, epoch }, or null for a fresh subscription.
   * A topic acknowledged in an epoch but with nothing delivered yet resumes
   * after the ack's seq if the server named it, else after 0: the node then
   * replays what it holds of the epoch, or answers with an honest reset.
   */
  resumePoint() {
    if (this.lastSeq !== null) return { since: this.lastSeq, epoch: this.epoch };
    if (this.epoch !== null) return { since: this.floor ?? 0, epoch: this.epoch };
    return null;
  }

  /**
   * A subscribe ack: the topic's epoch, and (if the server sends it) the seq
   * live deliveries follow. A resumed topic keeps its epoch until the reset
   * that follows an ack in another epoch says where to continue.
   */
  ack(epoch, seq) {
    if (this.epoch === null && typeof epoch === "string" && epoch !== "") this.epoch = epoch;
    if (this.lastSeq === null && Number.isSafeInteger(seq)) this.floor = seq;
  }

  /**
   * A reset: the resume point is gone, deliveries continue at from in epoch.
   * Returns what onReset gets.
   */
  reset(from, epoch) {
    const info = { topic: this.name, from, epoch, previousEpoch: this.epoch, lastSeq: this.lastSeq };
    if (typeof epoch === "string" && epoch !== "") this.epoch = epoch;
    this.lastSeq = from - 1;
    this.floor = null;
    return info;
  }

  /**
   * One delivery {topic, seq, data, snapshot?, conflated?, skipped?}.
   * Returns { deliver: false } for a duplicate, else { deliver: true, meta }
   * where meta.gap = [first, last] names seqs that were missed without a
   * reset or conflation saying so (a bug somewhere: never silent).
   */
  accept(msg) {
    const from = msg.from && typeof msg.from === "object" ? msg.from : null;
    if (msg.ephemeral === true && msg.seq === undefined) {
      // Live only: no seq, nothing to track, never replayed.
      const meta = { topic: this.name, seq: null, epoch: this.epoch, snapshot: false, conflated: false, skipped: null, gap: null, ephemeral: true, from };
      return { deliver: true, meta };
    }
    const seq = msg.seq;
    if (!Number.isSafeInteger(seq) || seq < 0) return { deliver: false, invalid: true };
    if (this.lastSeq !== null && seq <= this.lastSeq) return { deliver: false, duplicate: true };
    const skipped = msg.conflated && Array.isArray(msg.skipped) && msg.skipped.length === 2 ? msg.skipped : null;
    let gap = null;
    if (this.lastSeq !== null) {
      const expected = this.lastSeq + 1;
      const covered = skipped ? Math.min(skipped[0], seq) : seq; // conflation accounts for skipped[0]..seq-1
      if (covered > expected) gap = [expected, covered - 1];
    }
    this.lastSeq = seq;
    this.floor = null;
    const meta = {
      topic: this.name,
      seq,
      epoch: this.epoch,
      snapshot: msg.snapshot === true,
      conflated: msg.conflated === true,
      skipped,
      gap,
      ephemeral: false,
      from,
    };
    return { deliver: true, meta };
  }
}

/**
 * The subscribe ops that resume topics (TopicState values): fresh topics and
 * resumed ones, batched. Each op is {"op":"subscribe","topics":[...],
 * "since":{t:seq},"epochs":{t:epoch}} with since/epochs only when needed;
 * topics that ask for deltas go in their own ops with "delta":"fossil".
 */
export function subscribeOps(states) {
  const ops = [];
  const open = new Map(); // delta encoding ("" = none) -> the op being filled
  for (const st of states) {
    const d = st.delta || "";
    let op = open.get(d);
    if (!op || op.topics.length >= SUBSCRIBE_BATCH) {
      op = d ? { op: "subscribe", topics: [], delta: d } : { op: "subscribe", topics: [] };
      open.set(d, op);
      ops.push(op);
    }
    op.topics.push(st.name);
    const r = st.resumePoint();
    if (r) {
      (op.since ??= {})[st.name] = r.since;
      if (r.epoch) (op.epochs ??= {})[st.name] = r.epoch;
    }
  }
  return ops;
}

// ---------------------------------------------------------------------------
// Transports. A transport carries server messages (text) to the client and
// client ops to the server. Constructor (endpoint, env, on) with
// on = { open(), message(text), close({code, reason, opened}) }; methods
// send(op) -> bool and close(). Static available(env) -> bool,
// static endpoint(url) -> string.

/** WebSocket: the node's native transport (GET /ws). */
export class WebSocketTransport {
  static available(env) {
    return typeof env.WebSocket === "function";
  }

  /** ws(s)://host/ws from a ws(s) or http(s) URL; a bare host gets the /ws path. */
  static endpoint(url) {
    const u = new URL(url);
    if (u.protocol === "http:") u.protocol = "ws:";
    else if (u.protocol === "https:") u.protocol = "wss:";
    if (u.pathname === "" || u.pathname === "/") u.pathname = "/ws";
    return u;
  }

  constructor(endpoint, env, on) {
    this.on = on;
    this.opened = false;
    this.done = false;
    try {
      this.ws = new env.WebSocket(String(endpoint));
    } catch (e) {
      this.ws = null;
      env.setTimeout(() => this._closed(1006, String(e && e.message ? e.message : e)), 0);
      return;
    }
    this.ws.onopen = () => {
      if (this.done) return;
      this.opened = true;
      on.open();
    };
    this.ws.onmessage = (ev) => {
      if (!this.done) on.message(ev.data);
    };
    this.ws.onclose = (ev) => this._closed(ev.code, ev.reason);
    this.ws.onerror = () => {}; // onclose follows with the code
  }

  _closed(code, reason) {
    if (this.done) return;
    this.done = true;
    this.on.close({ code, reason: reason || "", opened: this.opened });
  }

  send(op) {
    if (this.done || !this.opened || this.ws.readyState !== 1) return false;
    this.ws.send(JSON.stringify(op));
    return true;
  }

  /** Closes without reporting back (the client decided). */
  close(code = 1000, reason = "") {
    this.done = true;
    if (!this.ws) return;
    try {
      this.ws.close(code, reason);
    } catch {
      // already closed
    }
  }
}

/**
 * The URL query of a subscription set (TopicState values), as the node's
 * /sse and /poll endpoints take it: { topics: "a,b", since: "a:41,b:7",
 * epochs: "a:E1,b:E2" } (since and epochs only when some topic has one).
 */
export function subscriptionQuery(states) {
  const topics = [];
  const since = [];
  const epochs = [];
  for (const st of states) {
    topics.push(st.name);
    const r = st.resumePoint();
    if (r) {
      since.push(st.name + ":" + r.since);
      if (r.epoch) epochs.push(st.name + ":" + r.epoch);
    }
  }
  const q = { topics: topics.join(",") };
  if (since.length) q.since = since.join(",");
  if (epochs.length) q.epochs = epochs.join(",");
  return q;
}

/** An http(s) URL for path on the node of url (ws(s) or http(s)): /ws becomes path. */
function httpEndpoint(url, path) {
  const u = new URL(url);
  if (u.protocol === "ws:") u.protocol = "http:";
  else if (u.protocol === "wss:") u.protocol = "https:";
  if (u.pathname === "" || u.pathname === "/") u.pathname = path;
  else if (u.pathname.endsWith("/ws")) u.pathname = u.pathname.slice(0, -3) + path;
  return u;
}

function setQuery(u, q) {
  for (const k of ["topics", "since", "epochs"]) {
    if (q[k] !== undefined) u.searchParams.set(k, q[k]);
    else u.searchParams.delete(k);
  }
}

/**
 * Client ops a stream (SSE, long-poll) carries as a POST to the node,
 * since it has no channel back: the same JSON as over WebSocket.
 */
const POST_PATHS = { publish: "/publish", presence: "/presence", presence_stats: "/presence" };

/**
 * postOp sends op (with its id) as POST /publish or /presence next to the
 * stream's endpoint, with the stream's token as a Bearer header, and hands
 * the answer to on.message as if the stream had carried it (same settle
 * path by id). An HTTP-level error without an id gets op's. It returns
 * false for ops a stream cannot send (subscribe changes are a new stream).
 */
function postOp(env, endpoint, op, on, isDone) {
  const path = POST_PATHS[op.op];
  if (!path || typeof env.fetch !== "function") return false;
  const src = new URL(endpoint);
  const u = new URL(src);
  u.search = "";
  u.pathname = u.pathname.replace(/\/(sse|poll)$/, "") + path;
  const headers = { "Content-Type": "application/json" };
  const token = src.searchParams.get("token");
  if (token) headers.Authorization = "Bearer " + token;
  const answer = (msg) => {
    if (isDone()) return;
    if (msg && typeof msg === "object" && msg.id === undefined) msg.id = op.id;
    on.message(JSON.stringify(msg));
  };
  env
    .fetch(String(u), { method: "POST", headers, body: JSON.stringify(op), cache: "no-store" })
    .then(async (res) => {
      let msg;
      try {
        msg = await res.json();
      } catch {
        msg = null;
      }
      if (!msg || typeof msg !== "object") msg = { type: "error", code: "http_" + res.status, message: op.op + " answered HTTP " + res.status };
      answer(msg);
    })
    .catch((e) => answer({ type: "error", code: "network", message: op.op + " request failed (the outcome is unknown): " + errText(e) }));
  return true;
}

/**
 * Server-Sent Events (GET /sse): the subscriptions and resume points ride
 * in the URL, so a subscription change is a new stream. The stream counts
 * as open at its first event ("subscribed"), not at EventSource's open:
 * behind a proxy that buffers streamed responses nothing arrives, and after
 * openTimeout the transport reports itself blocked. EventSource's own
 * reconnect is not used: the client resumes with its own positions.
 */
export class SSETransport {
  static subscribesInURL = true;

  static available(env) {
    return typeof env.EventSource === "function";
  }

  static endpoint(url) {
    return httpEndpoint(url, "/sse");
  }

  constructor(endpoint, env, on) {
    this.on = on;
    this.env = env;
    this.endpoint = String(endpoint);
    this.opened = false;
    this.done = false;
    const u = new URL(endpoint);
    setQuery(u, on.query ? on.query() : {});
    try {
      this.es = new env.EventSource(String(u));
    } catch (e) {
      this.es = null;
      env.setTimeout(() => this._closed({ code: 1006, reason: errText(e) }), 0);
      return;
    }
    this.openTimer = env.setTimeout(() => {
      this.openTimer = null;
      if (!this.opened) this._closed({ code: 1006, reason: "no event from the SSE stream (a buffering proxy?)", blocked: true });
    }, on.openTimeout ?? DEFAULTS.streamOpenTimeout);
    const pass = (ev) => {
      if (this.done) return;
      if (!this.opened) {
        this.opened = true;
        this._clearOpenTimer();
        on.open();
      }
      on.message(ev.data);
    };
    for (const name of ["subscribed", "message", "snapshot", "conflated", "reset"]) this.es.addEventListener(name, pass);
    this.es.addEventListener("close", (ev) => {
      let info = {};
      try {
        info = JSON.parse(ev.data);
      } catch {
        // keep the defaults
      }
      this._closed({ code: Number.isInteger(info.code) ? info.code : 1006, reason: typeof info.reason === "string" ? info.reason : "" });
    });
    this.es.onerror = () => this._closed({ code: 1006, reason: "SSE stream lost" });
  }

  _clearOpenTimer() {
    if (this.openTimer) {
      this.env.clearTimeout(this.openTimer);
      this.openTimer = null;
    }
  }

  _closed({ code, reason, blocked = false }) {
    if (this.done) return;
    this.done = true;
    this._clearOpenTimer();
    if (this.es) this.es.close();
    this.on.close({ code, reason: reason || "", opened: this.opened, blocked });
  }

  /**
   * Subscriptions are in the URL (a change is a new stream); publish and
   * presence go as a POST next to the stream (postOp).
   */
  send(op) {
    if (this.done || !this.opened) return false;
    return postOp(this.env, this.endpoint, op, this.on, () => this.done);
  }

  close() {
    this.done = true;
    this._clearOpenTimer();
    if (this.es) this.es.close();
  }
}

/**
 * Long-polling (GET /poll): each request carries the current resume points
 * and is answered with everything after them (at once, or when something
 * arrives, or empty after the node's poll timeout); the next request follows
 * at once. Complete responses pass proxies that buffer streams.
 */
export class PollTransport {
  static subscribesInURL = true;

  static available(env) {
    return typeof env.fetch === "function";
  }

  static endpoint(url) {
    return httpEndpoint(url, "/poll");
  }

  constructor(endpoint, env, on) {
    this.on = on;
    this.env = env;
    this.endpoint = String(endpoint);
    this.opened = false;
    this.done = false;
    this.acked = false;
    this.abort = null;
    this._poll();
  }

  _open() {
    if (this.opened || this.done) return;
    this.opened = true;
    this.on.open();
  }

  async _poll() {
    while (!this.done) {
      const u = new URL(this.endpoint);
      setQuery(u, this.on.query ? this.on.query() : {});
      this.abort = typeof this.env.AbortController === "function" ? new this.env.AbortController() : null;
      // A request the node holds (nothing new yet) has not failed: after a
      // moment without an error the transport counts as open.
      const held = this.opened ? null : this.env.setTimeout(() => this._open(), 1000);
      let body;
      try {
        const res = await this.env.fetch(String(u), { cache: "no-store", signal: this.abort ? this.abort.signal : undefined });
        if (!res.ok) throw new Error("poll answered HTTP " + res.status);
        body = await res.json();
      } catch (e) {
        if (held !== null) this.env.clearTimeout(held);
        this._closed(1006, errText(e));
        return;
      }
      if (held !== null) this.env.clearTimeout(held);
      if (this.done) return;
      this._open();
      this._answer(body);
    }
  }

  /** One answer: its positions as an ack (first) or silently, then its messages, then any close. */
  _answer(body) {
    if (!body || typeof body !== "object") return;
    const since = body.since && typeof body.since === "object" ? body.since : {};
    const ack = { type: this.acked ? "positions" : "subscribed", topics: Object.keys(since), epochs: body.epochs || {}, seqs: since };
    this.acked = true;
    this.on.message(JSON.stringify(ack));
    for (const m of Array.isArray(body.messages) ? body.messages : []) {
      if (this.done) return;
      this.on.message(JSON.stringify(m));
    }
    if (body.close && !this.done) this._closed(body.close.code, body.close.reason);
  }

  _closed(code, reason) {
    if (this.done) return;
    this.done = true;
    this.on.close({ code, reason: reason || "", opened: this.opened });
  }

  /** As SSETransport's: publish and presence as a POST, nothing else. */
  send(op) {
    if (this.done || !this.opened) return false;
    return postOp(this.env, this.endpoint, op, this.on, () => this.done);
  }

  close() {
    this.done = true;
    if (this.abort) this.abort.abort();
  }
}

/**
 * Transport registry, in the names of options.transports. A transport not
 * available in this environment (no EventSource, no fetch) is skipped.
 */
export const transports = {
  websocket: WebSocketTransport,
  sse: SSETransport,
  poll: PollTransport,
};

// ---------------------------------------------------------------------------
// The client.

export class Fanwire {
  /**
   * @param url the node's WebSocket listener: "ws://host:8080/ws" (or
   *   "http://host:8080": the transport picks its path)
   * @param options see DEFAULTS, plus getToken, onError and env
   */
  constructor(url, options = {}) {
    const g = globalThis;
    this.opts = { ...DEFAULTS, ...options };
    this.env = {
      WebSocket: g.WebSocket,
      EventSource: g.EventSource,
      fetch: typeof g.fetch === "function" ? (u, o) => g.fetch(u, o) : undefined,
      AbortController: g.AbortController,
      setTimeout: (f, ms) => g.setTimeout(f, ms),
      clearTimeout: (id) => g.clearTimeout(id),
      now: () => Date.now(),
      random: Math.random,
      ...(options.env || {}),
    };
    this.url = new URL(url, g.location ? g.location.href : undefined).href;
    this.names = this.opts.transports.filter((n) => transports[n] && transports[n].available(this.env));
    if (this.names.length === 0) {
      throw new Error("fanwire: none of the transports " + JSON.stringify(this.opts.transports) + " is available here");
    }
    this.tIndex = 0; // transport in use; kept once one has worked
    this.topics = new Map(); // name -> { st: TopicState, subs: Set<handlers> }
    this.listeners = { state: new Set(), error: new Set() };
    this.pending = new Map(); // request id -> { resolve, reject, timer, op, sent }
    this.nextId = 1;
    this.conn = null;
    this.live = false; // conn is open
    this.served = false; // conn has answered something
    this.attempt = 0; // failed connects since the last served one: drives the backoff
    this.failedOpens = 0; // connects in a row that closed before opening
    this.token = null;
    this.tokenAt = 0;
    this.tokenRetry = false; // a 4001 was just answered with a new token
    this.timer = null; // reconnect
    this.refreshTimer = null;
    this.connectTimer = null;
    this.newTopics = null; // subscribed while live, sent in one op at the end of the task
    this.closed = false;
    this._state = { state: "disconnected", transport: this.names[0] };
    this.env.setTimeout(() => this._connect(), 0); // after the caller's synchronous subscribe() calls
  }

  /** The last state event: { state, transport, ... }. */
  get state() {
    return this._state.state;
  }

  /** The transport in use or being tried. */
  get transport() {
    return this.names[this.tIndex];
  }

  /**
   * Listens to "state" ({state: "connecting"|"connected"|"disconnected"|
   * "closed", transport, attempt?, delay?, code?, reason?}) or "error"
   * ({code, message, topic?, ...}). Returns a function that stops listening.
   */
  on(event, fn) {
    const set = this.listeners[event];
    if (!set) throw new TypeError("fanwire: unknown event " + event + ' (want "state" or "error")');
    set.add(fn);
    return () => set.delete(fn);
  }

  off(event, fn) {
    this.listeners[event]?.delete(fn);
  }

  /**
   * Subscribes to topic. handlers: onMessage(data, meta), onReset(info),
   * onSubscribed({topic, epoch, delta}), onJoin(info), onLeave(info),
   * onError(err); delta: true asks the node for Fossil deltas (applied here:
   * onMessage always gets full data; where the node does not allow them,
   * full messages arrive). Returns { topic, unsubscribe() }.
   */
  subscribe(topic, handlers = {}) {
    if (!validTopic(topic)) throw new TypeError("fanwire: invalid topic " + JSON.stringify(topic) + ": want 1-128 characters of [A-Za-z0-9_.:-]");
    if (typeof handlers === "function") handlers = { onMessage: handlers };
    let t = this.topics.get(topic);
    if (!t) {
      t = { st: new TopicState(topic), subs: new Set() };
      this.topics.set(topic, t);
      if (this.live) this._queueSubscribe(t.st);
    }
    if (handlers.delta && t.subs.size === 0) t.st.delta = "fossil";
    const h = { ...handlers };
    t.subs.add(h);
    return {
      topic,
      unsubscribe: () => {
        if (!t.subs.delete(h) || t.subs.size > 0 || this.topics.get(topic) !== t) return;
        this.topics.delete(topic);
        if (this.live && !(this.newTopics && this.newTopics.delete(t.st))) {
          if (this.conn.constructor.subscribesInURL) {
            const conn = this.conn;
            queueMicrotask(() => this._restartStream(conn));
          } else {
            this.conn.send({ op: "unsubscribe", topics: [topic] });
          }
        }
      },
    };
  }

  /**
   * Publishes data on topic through this connection; resolves with the
   * server's ack {type:"published",id,topic,seq} ({...,ephemeral:true} for
   * an ephemeral message). Requires a namespace with client publish: the
   * promise rejects with err.code "forbidden" otherwise.
   * options.ephemeral: live subscribers only, no seq, not kept.
   */
  publish(topic, data, options) {
    if (!validTopic(topic)) return Promise.reject(new TypeError("fanwire: invalid topic " + JSON.stringify(topic)));
    const op = { op: "publish", topic, data };
    if (options && options.ephemeral) op.ephemeral = true;
    return this._request(op);
  }

  /** Counts only: {conns, users, anonymous, truncated}. Requires a namespace with presence. */
  presenceStats(topic) {
    if (!validTopic(topic)) return Promise.reject(new TypeError("fanwire: invalid topic " + JSON.stringify(topic)));
    return this._request({ op: "presence_stats", topic });
  }

  /** Who is subscribed to topic: {conns, users, anonymous, truncated, members:[{user,info,conns}]}. Requires a namespace with presence. */
  presence(topic) {
    if (!validTopic(topic)) return Promise.reject(new TypeError("fanwire: invalid topic " + JSON.stringify(topic)));
    return this._request({ op: "presence", topic });
  }

  /** Closes the connection for good; pending requests reject. */
  close() {
    if (this.closed) return;
    this.closed = true;
    this._clearTimers();
    if (this.conn) this.conn.close(1000, "client closed");
    this.conn = null;
    this.live = false;
    this._failPending(new Error("fanwire: client closed"));
    this._setState({ state: "closed", transport: this.transport });
  }

  // --- connection lifecycle ------------------------------------------------

  async _connect() {
    this.timer = null;
    if (this.closed) return;
    const name = this.transport;
    this._setState({ state: "connecting", transport: name, attempt: this.attempt });
    let token = null;
    if (this.opts.getToken) {
      try {
        token = await this._currentToken();
      } catch (e) {
        this._error({ code: "token", message: "getToken failed: " + errText(e) });
        this._retry({ code: 0, reason: "getToken failed", opened: false });
        return;
      }
      if (this.closed) return;
    }
    const T = transports[name];
    const endpoint = T.endpoint(this.url);
    if (token) endpoint.searchParams.set("token", token);
    const conn = new T(endpoint, this.env, {
      open: () => conn === this.conn && this._onOpen(),
      message: (text) => conn === this.conn && this._onMessage(text),
      close: (info) => conn === this.conn && this._onClose(info),
      // Transports that subscribe in the URL (SSE, long-poll) read the
      // current resume points on every (re)quest.
      query: () => subscriptionQuery([...this.topics.values()].map((t) => t.st)),
      openTimeout: this.opts.streamOpenTimeout,
    });
    this.conn = conn;
    this.served = false;
    this.connectTimer = this.env.setTimeout(() => {
      this.connectTimer = null;
      if (conn === this.conn && !this.live) {
        conn.close(1000, "connect timeout");
        this._onClose({ code: 1006, reason: "connect timeout", opened: false });
      }
    }, this.opts.connectTimeout);
  }

  _onOpen() {
    this._clear("connectTimer");
    this.live = true;
    this.failedOpens = 0;
    this.newTopics = null;
    const states = [...this.topics.values()].map((t) => t.st);
    if (!this.conn.constructor.subscribesInURL) {
      for (const op of subscribeOps(states)) this.conn.send(op);
    }
    if (states.length === 0) this._served();
    this._setState({ state: "connected", transport: this.transport });
    for (const [id, p] of this.pending) {
      if (!p.sent) {
        p.sent = true;
        this.conn.send({ ...p.op, id });
      }
    }
    this._scheduleRefresh();
  }

  _served() {
    if (this.served) return;
    this.served = true;
    this.attempt = 0;
    this.tokenRetry = false;
  }

  _onClose(info) {
    this.conn = null;
    this.live = false;
    this.newTopics = null;
    this._clear("connectTimer");
    this._clear("refreshTimer");
    // A sent request's fate is unknown once its connection is gone.
    for (const [id, p] of this.pending) {
      if (p.sent) this._settle(id, null, new Error("fanwire: connection lost before the answer (the outcome is unknown)"));
    }
    if (this.closed) return;
    this._retry(info);
  }

  _retry({ code, reason, opened, blocked = false }) {
    if (!opened) {
      // A refused upgrade looks like any failed connect from JavaScript
      // (1006): after a few in a row, assume this transport is blocked.
      this.failedOpens++;
      // A node that refuses the token (401 on the upgrade) looks the same:
      // from the second failure on, connect with a fresh token.
      if (this.failedOpens >= 2) this.token = null;
      // A stream that opened but carried nothing (a buffering proxy) is blocked outright.
      if (blocked) this.failedOpens = Math.max(this.failedOpens, this.opts.blockedAfter);
      if (this.failedOpens >= this.opts.blockedAfter && this.names.length > 1) {
        this.failedOpens = 0;
        this.tIndex = (this.tIndex + 1) % this.names.length;
      }
    }
    let delay;
    const hint = reconnectHint(code, reason);
    if (code === 4001 && !this.tokenRetry) {
      this.token = null; // "token expired": a new one, at once
      this.tokenRetry = true;
      delay = 0;
    } else if (hint !== null) {
      delay = hint + Math.floor(this.env.random() * this.opts.hintJitter);
    } else {
      if (code === 4001) this.token = null;
      delay = backoffDelay(this.attempt++, this.opts.backoffBase, this.opts.backoffCap, this.env.random);
    }
    this._setState({ state: "disconnected", transport: this.transport, code, reason, delay });
    this.timer = this.env.setTimeout(() => this._connect(), delay);
  }

  // --- server messages -----------------------------------------------------

  _onMessage(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      this._error({ code: "bad_frame", message: "the server sent a message that is not JSON: " + String(text).slice(0, 100) });
      return;
    }
    if (!msg || typeof msg !== "object") return;
    this._served();
    if (msg.type === undefined) {
      if (typeof msg.topic === "string") this._delivery(msg, text);
      return;
    }
    switch (msg.type) {
      case "subscribed":
        for (const name of msg.topics || []) {
          const t = this.topics.get(name);
          if (!t) continue;
          t.st.ack(msg.epochs && msg.epochs[name], msg.seqs && msg.seqs[name]);
          const delta = Array.isArray(msg.delta) && msg.delta.includes(name);
          this._call(t, "onSubscribed", { topic: name, epoch: t.st.epoch, delta });
        }
        return;
      case "positions": // long-poll: where each topic stands after an answer
        for (const name of msg.topics || []) {
          const t = this.topics.get(name);
          if (t) t.st.ack(msg.epochs && msg.epochs[name], msg.seqs && msg.seqs[name]);
        }
        return;
      case "unsubscribed":
      case "close": // a stream's last event; its transport reports the close
        return;
      case "reset": {
        const t = this.topics.get(msg.topic);
        if (!t || !Number.isSafeInteger(msg.from)) return;
        const info = t.st.reset(msg.from, msg.epoch);
        this._call(t, "onReset", info);
        return;
      }
      case "join":
      case "leave": {
        const t = this.topics.get(msg.topic);
        if (t) this._call(t, msg.type === "join" ? "onJoin" : "onLeave", msg);
        return;
      }
      case "error":
        if (msg.id !== undefined && this.pending.has(msg.id)) {
          const err = new Error("fanwire: " + (msg.message || msg.code));
          err.code = msg.code;
          this._settle(msg.id, null, err);
          return;
        }
        this._error({ code: msg.code || "error", message: msg.message || "", server: true });
        return;
      default:
        if (msg.id !== undefined && this.pending.has(msg.id)) this._settle(msg.id, msg, null);
    }
  }

  _delivery(msg, text) {
    const t = this.topics.get(msg.topic);
    if (!t) return; // unsubscribed meanwhile
    const st = t.st;
    let bytes = null;
    if (msg.delta !== undefined) {
      if (st.lastSeq !== null && Number.isSafeInteger(msg.seq) && msg.seq <= st.lastSeq) return; // duplicate
      if (!st.delta) return; // sent before the node heard our fallback: the resubscription replays it
      try {
        if (msg.delta !== "fossil" || !st.base || st.lastSeq !== msg.seq - 1) throw new Error("no base for seq " + msg.seq);
        const r = applyDelivery(st.base, msg);
        bytes = r.bytes;
        msg = { topic: msg.topic, seq: msg.seq, data: r.data };
      } catch (e) {
        this._deltaFallback(t, e);
        return;
      }
    }
    const r = st.accept(msg);
    if (!r.deliver) {
      if (r.invalid) this._error({ code: "bad_frame", message: "delivery without a valid seq", topic: msg.topic });
      return;
    }
    if (st.delta && !r.meta.ephemeral) st.base = bytes || deliveryBase(text, msg); // deltas are against the previous seq, never an ephemeral message
    if (r.meta.gap) {
      const [a, b] = r.meta.gap;
      this._error({ code: "gap", topic: msg.topic, from: a, to: b, message: `missed seq ${a}..${b} of ${msg.topic} without a reset` }, t);
    }
    for (const h of t.subs) {
      if (!h.onMessage) continue;
      try {
        h.onMessage(msg.data, r.meta);
      } catch (e) {
        this._appError(e);
      }
    }
  }

  _call(t, name, arg) {
    for (const h of t.subs) {
      if (!h[name]) continue;
      try {
        h[name](arg);
      } catch (e) {
        this._appError(e);
      }
    }
  }

  /**
   * A delta that cannot be applied: stop asking for deltas on this topic and
   * subscribe again from the last delivered seq, so the node replays what
   * was missed in full (or answers a reset).
   */
  _deltaFallback(t, e) {
    t.st.delta = null;
    t.st.base = null;
    this._error({ code: "delta", topic: t.st.name, message: `cannot apply a delta of ${t.st.name} (${errText(e)}): continuing with full messages` }, t);
    if (!this.live) return; // the next open subscribes without delta
    this.conn.send({ op: "unsubscribe", topics: [t.st.name] });
    for (const op of subscribeOps([t.st])) this.conn.send(op);
  }

  // --- subscriptions while connected --------------------------------------

  _queueSubscribe(st) {
    if (this.newTopics) {
      this.newTopics.add(st);
      return;
    }
    this.newTopics = new Set([st]);
    const conn = this.conn;
    queueMicrotask(() => {
      const batch = this.newTopics;
      this.newTopics = null;
      if (!batch || conn !== this.conn || !this.live) return; // the next open subscribes everything
      if (conn.constructor.subscribesInURL) {
        this._restartStream(conn);
        return;
      }
      for (const op of subscribeOps(batch)) conn.send(op);
    });
  }

  /**
   * A new stream for a changed subscription set (SSE, long-poll), at once:
   * every topic's position carries over in the new URL.
   */
  _restartStream(conn) {
    if (conn !== this.conn || this.closed) return;
    conn.close();
    this.conn = null;
    this.live = false;
    this._clear("connectTimer");
    this._clear("refreshTimer");
    this._clear("timer");
    this._connect();
  }

  // --- requests (publish, presence) ---------------------------------------

  _request(op) {
    if (this.closed) return Promise.reject(new Error("fanwire: client closed"));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const p = { resolve, reject, op, sent: false, timer: null };
      p.timer = this.env.setTimeout(() => this._settle(id, null, new Error(`fanwire: no answer to ${op.op} within ${this.opts.requestTimeout}ms`)), this.opts.requestTimeout);
      this.pending.set(id, p);
      if (this.live) {
        p.sent = this.conn.send({ ...op, id });
      }
    });
  }

  _settle(id, value, err) {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    this.env.clearTimeout(p.timer);
    if (err) p.reject(err);
    else p.resolve(value);
  }

  _failPending(err) {
    for (const id of [...this.pending.keys()]) this._settle(id, null, err);
  }

  // --- tokens ----------------------------------------------------------------

  /** The cached token while it has more than a few seconds left, else a new one. */
  async _currentToken() {
    if (this.token) {
      const t = jwtTimes(this.token);
      if (!t || t.exp === null || t.exp - this.env.now() > 5000) return this.token;
    }
    const token = await this.opts.getToken();
    if (typeof token !== "string" || token === "") throw new Error("getToken must resolve to a non-empty string");
    this.token = token;
    this.tokenAt = this.env.now();
    return token;
  }

  _scheduleRefresh() {
    this._clear("refreshTimer");
    if (!this.opts.getToken || !this.token) return;
    const delay = refreshDelay(this.token, this.env.now(), this.opts.refreshAt, this.tokenAt);
    if (delay === null) return;
    const conn = this.conn;
    this.refreshTimer = this.env.setTimeout(async () => {
      this.refreshTimer = null;
      let token;
      try {
        token = await this.opts.getToken();
      } catch (e) {
        this._error({ code: "token", message: "getToken failed: " + errText(e) });
        return; // the node closes with 4001 when the old one expires; we get a new one then
      }
      if (typeof token !== "string" || token === "" || conn !== this.conn || !this.live) return;
      this.token = token;
      this.tokenAt = this.env.now();
      // A node without token refresh answers an error event; the next
      // reconnect carries the new token anyway.
      conn.send({ op: "refresh", token });
      this._scheduleRefresh();
    }, Math.max(delay, 1000));
  }

  // --- plumbing -----------------------------------------------------------

  _setState(s) {
    this._state = s;
    for (const fn of this.listeners.state) {
      try {
        fn(s);
      } catch (e) {
        this._appError(e);
      }
    }
  }

  _error(err, topic) {
    let handled = false;
    if (topic) {
      for (const h of topic.subs) {
        if (h.onError) {
          handled = true;
          try {
            h.onError(err);
          } catch (e) {
            this._appError(e);
          }
        }
      }
    }
    for (const fn of this.listeners.error) {
      handled = true;
      try {
        fn(err);
      } catch (e) {
        this._appError(e);
      }
    }
    if (!handled && this.opts.onError) {
      handled = true;
      this.opts.onError(err);
    }
    if (!handled && typeof console !== "undefined") console.warn("fanwire:", err.message || err.code, err);
  }

  _appError(e) {
    // An exception in the app's handler must not break delivery to others.
    if (typeof console !== "undefined") console.error("fanwire: a handler threw", e);
  }

  _clear(name) {
    if (this[name] !== null) {
      this.env.clearTimeout(this[name]);
      this[name] = null;
    }
  }

  _clearTimers() {
    this._clear("timer");
    this._clear("refreshTimer");
    this._clear("connectTimer");
  }
}

function errText(e) {
  return e && e.message ? e.message : String(e);
}

export default Fanwire;
