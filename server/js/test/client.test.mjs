// The Fanwire client over a scripted WebSocket and a manual clock:
// reconnects, resume across connections, tokens, requests.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Fanwire, transports } from "../fanwire.js";
import { Clock, fakeWebSocket, env, jwt, settle } from "./fake.mjs";

function setup(options = {}, random) {
  const clock = new Clock();
  const WS = fakeWebSocket();
  const errors = [];
  const states = [];
  const fw = new Fanwire("ws://node.test:8080/ws", { env: env(clock, WS, random), ...options });
  fw.on("error", (e) => errors.push(e));
  fw.on("state", (s) => states.push(s));
  return { clock, WS, fw, errors, states };
}

function record(fw, topic) {
  const got = [];
  const resets = [];
  fw.subscribe(topic, { onMessage: (data, meta) => got.push({ data, ...meta }), onReset: (r) => resets.push(r) });
  return { got, resets };
}

test("connects, subscribes every topic in one op, delivers in order", async () => {
  const { clock, WS, fw, states } = setup();
  const a = record(fw, "a");
  const b = record(fw, "b");
  await clock.advance(0);
  const ws = WS.last;
  assert.equal(ws.url, "ws://node.test:8080/ws");
  ws.open();
  assert.deepEqual(ws.sent, [{ op: "subscribe", topics: ["a", "b"] }]);
  assert.equal(fw.state, "connected");
  assert.equal(fw.transport, "websocket");
  ws.recv({ type: "subscribed", topics: ["a", "b"], epochs: { a: "E1", b: "E1" } });
  for (let i = 1; i <= 3; i++) ws.recv({ topic: "a", seq: i, data: { i } });
  ws.recv({ topic: "b", seq: 7, data: "x", snapshot: true });
  assert.deepEqual(a.got.map((m) => m.seq), [1, 2, 3]);
  assert.deepEqual(a.got[0].data, { i: 1 });
  assert.equal(b.got[0].snapshot, true);
  assert.deepEqual(states.map((s) => s.state), ["connecting", "connected"]);
  fw.close();
  assert.equal(fw.state, "closed");
});

test("reconnects and resumes every topic with since+epochs; replays are not delivered twice", async () => {
  const { clock, WS, fw, errors } = setup();
  const a = record(fw, "a");
  const c = record(fw, "c"); // acknowledged, nothing delivered yet
  await clock.advance(0);
  let ws = WS.last;
  ws.open();
  ws.recv({ type: "subscribed", topics: ["a", "c"], epochs: { a: "E1", c: "E1" } });
  for (let i = 1; i <= 5; i++) ws.recv({ topic: "a", seq: i, data: i });
  ws.drop(1006);
  assert.equal(fw.state, "disconnected");
  await clock.advance(500);
  assert.equal(WS.all.length, 2);
  ws = WS.last;
  ws.open();
  assert.deepEqual(ws.sent[0], { op: "subscribe", topics: ["a", "c"], since: { a: 5, c: 0 }, epochs: { a: "E1", c: "E1" } });
  ws.recv({ type: "subscribed", topics: ["a", "c"], epochs: { a: "E1", c: "E1" } });
  // A replay that overlaps what was seen (as a proxy or a second path might):
  for (const s of [4, 5, 6, 7]) ws.recv({ topic: "a", seq: s, data: s });
  ws.recv({ topic: "c", seq: 1, data: "c1" });
  assert.deepEqual(a.got.map((m) => m.seq), [1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(c.got.map((m) => m.seq), [1]);
  assert.deepEqual(errors, []);
  fw.close();
});

test("a 1001 reconnect hint is honoured: hint plus a small jitter, no backoff", async () => {
  const { clock, WS, fw, states } = setup({ hintJitter: 200 }, () => 0.5);
  record(fw, "a");
  await clock.advance(0);
  WS.last.open();
  WS.last.recv({ type: "subscribed", topics: ["a"], epochs: { a: "E1" } });
  WS.last.drop(1001, "going away; reconnect in 4211ms");
  const last = states.at(-1);
  assert.equal(last.state, "disconnected");
  assert.equal(last.delay, 4311);
  await clock.advance(4310);
  assert.equal(WS.all.length, 1);
  await clock.advance(1);
  assert.equal(WS.all.length, 2);
  fw.close();
});

test("failed connects back off exponentially with jitter; a served connection resets it", async () => {
  const { clock, WS, fw, states } = setup({ backoffBase: 100, backoffCap: 1000 }, () => 0.999);
  record(fw, "a");
  await clock.advance(0);
  const delays = [];
  for (let i = 0; i < 6; i++) {
    WS.last.drop(1006);
    delays.push(states.at(-1).delay);
    await clock.advance(states.at(-1).delay);
  }
  assert.deepEqual(delays, [99, 199, 399, 799, 999, 999]);
  WS.last.open();
  WS.last.recv({ type: "subscribed", topics: ["a"], epochs: { a: "E" } });
  WS.last.drop(1006);
  assert.equal(states.at(-1).delay, 99);
  fw.close();
});

test("transports not built yet are skipped; none available is an error", () => {
  const clock = new Clock();
  const WS = fakeWebSocket();
  const fw = new Fanwire("http://node.test:8080", { env: env(clock, WS), transports: ["sse", "poll", "websocket"] });
  assert.equal(fw.transport, "websocket");
  fw.close();
  assert.throws(() => new Fanwire("ws://x/ws", { env: env(clock, WS), transports: ["sse", "poll"] }), /none of the transports/);
  assert.throws(() => new Fanwire("ws://x/ws", { env: { ...env(clock, WS), WebSocket: undefined } }), /none of the transports/);
});

test("an http URL becomes the WebSocket endpoint; the token rides along", async () => {
  const tok = jwt({ sub: "u", exp: 9e9 });
  const { clock, WS, fw } = setup({ getToken: async () => tok });
  fw.close();
  const s2 = setup({ getToken: async () => tok });
  await s2.clock.advance(0);
  const u = new URL(s2.WS.last.url);
  assert.equal(u.origin + u.pathname, "ws://node.test:8080/ws");
  assert.equal(u.searchParams.get("token"), tok);
  s2.fw.close();
  const clock3 = new Clock();
  const WS3 = fakeWebSocket();
  const fw3 = new Fanwire("https://edge.test", { env: env(clock3, WS3) });
  await clock3.advance(0);
  assert.equal(WS3.last.url, "wss://edge.test/ws");
  fw3.close();
  void clock, WS;
});

test("a 4001 token-expired close gets a new token and reconnects at once", async () => {
  let n = 0;
  const { clock, WS, fw, states } = setup({ getToken: async () => jwt({ n: ++n, exp: 9e9 }) });
  record(fw, "a");
  await clock.advance(0);
  assert.equal(n, 1);
  WS.last.open();
  WS.last.recv({ type: "subscribed", topics: ["a"], epochs: { a: "E" } });
  WS.last.drop(4001, "token expired");
  assert.equal(states.at(-1).delay, 0);
  await clock.advance(0);
  assert.equal(n, 2);
  assert.equal(WS.all.length, 2);
  assert.equal(JSON.parse(Buffer.from(new URL(WS.last.url).searchParams.get("token").split(".")[1], "base64url")).n, 2);
  // A second 4001 before anything was served is not retried in a tight loop.
  WS.last.open();
  WS.last.drop(4001, "token expired");
  assert.ok(states.at(-1).delay >= 0 && states.at(-1).state === "disconnected");
  await clock.advance(states.at(-1).delay);
  assert.equal(n, 3);
  fw.close();
});

test("the token is refreshed in band at 80% of its lifetime", async () => {
  const clock = new Clock();
  const WS = fakeWebSocket();
  const now = () => clock.now();
  let n = 0;
  const fw = new Fanwire("ws://x/ws", {
    env: env(clock, WS),
    getToken: async () => jwt({ n: ++n, iat: Math.floor(now() / 1000), exp: Math.floor(now() / 1000) + 100 }),
  });
  fw.on("error", () => {});
  await clock.advance(0);
  WS.last.open();
  await clock.advance(79_000);
  assert.equal(n, 1);
  await clock.advance(1_000);
  assert.equal(n, 2);
  const refresh = WS.last.sent.find((op) => op.op === "refresh");
  assert.ok(refresh, "no refresh op sent");
  assert.equal(JSON.parse(Buffer.from(refresh.token.split(".")[1], "base64url")).n, 2);
  // A node without refresh answers an error: reported, the connection stays.
  WS.last.recv({ type: "error", code: "unknown_op", message: 'unknown op "refresh"' });
  assert.equal(fw.state, "connected");
  fw.close();
});

test("an expired cached token is replaced before a reconnect", async () => {
  let n = 0;
  const { clock, WS, fw } = setup({ getToken: async () => jwt({ n: ++n, exp: Math.floor(clock.now() / 1000) + 10 }) });
  fw.on("error", () => {});
  await clock.advance(0);
  WS.last.open();
  WS.last.drop(1006);
  await clock.advance(20_000); // the 10 s token is gone by the reconnect
  assert.ok(n >= 2);
  fw.close();
});

test("reset: onReset, then deliveries continue from the new point", async () => {
  const { clock, WS, fw, errors } = setup();
  const a = record(fw, "a");
  await clock.advance(0);
  WS.last.open();
  WS.last.recv({ type: "subscribed", topics: ["a"], epochs: { a: "E1" } });
  for (let i = 1; i <= 3; i++) WS.last.recv({ topic: "a", seq: i, data: i });
  WS.last.drop(1001, "going away; reconnect in 10ms");
  await clock.advance(1000);
  WS.last.open();
  assert.deepEqual(WS.last.sent[0], { op: "subscribe", topics: ["a"], since: { a: 3 }, epochs: { a: "E1" } });
  WS.last.recv({ type: "subscribed", topics: ["a"], epochs: { a: "E2" } });
  WS.last.recv({ type: "reset", topic: "a", from: 1, epoch: "E2" });
  WS.last.recv({ topic: "a", seq: 1, data: "new" });
  WS.last.recv({ topic: "a", seq: 2, data: "new2" });
  assert.deepEqual(a.resets, [{ topic: "a", from: 1, epoch: "E2", previousEpoch: "E1", lastSeq: 3 }]);
  assert.deepEqual(a.got.map((m) => [m.epoch, m.seq]), [["E1", 1], ["E1", 2], ["E1", 3], ["E2", 1], ["E2", 2]]);
  assert.deepEqual(errors, []);
  fw.close();
});

test("a gap is reported to the topic's onError and the error event", async () => {
  const { clock, WS, fw, errors } = setup();
  const topicErrors = [];
  fw.subscribe("a", { onError: (e) => topicErrors.push(e) });
  await clock.advance(0);
  WS.last.open();
  WS.last.recv({ topic: "a", seq: 1, data: 1 });
  WS.last.recv({ topic: "a", seq: 4, data: 4 });
  assert.equal(topicErrors.length, 1);
  assert.equal(errors[0].code, "gap");
  assert.equal(errors[0].from, 2);
  assert.equal(errors[0].to, 3);
  fw.close();
});

test("subscribe and unsubscribe while connected; a throwing handler does not stop others", async () => {
  const { clock, WS, fw } = setup();
  await clock.advance(0);
  WS.last.open();
  assert.deepEqual(WS.last.sent, []);
  const got = [];
  const origError = console.error;
  console.error = () => {};
  try {
    fw.subscribe("x", () => {
      throw new Error("app bug");
    });
    const s = fw.subscribe("x", (d) => got.push(d));
    fw.subscribe("y", () => {});
    await settle();
    assert.deepEqual(WS.last.sent, [{ op: "subscribe", topics: ["x", "y"] }]);
    WS.last.recv({ topic: "x", seq: 1, data: "d1" });
    assert.deepEqual(got, ["d1"]);
    s.unsubscribe();
    assert.equal(WS.last.sent.length, 1); // another handler still listens to x
    fw.subscribe("z", () => {}).unsubscribe(); // never reaches the server
    await settle();
    assert.equal(WS.last.sent.length, 1);
  } finally {
    console.error = origError;
  }
  assert.throws(() => fw.subscribe("bad/topic", {}), /invalid topic/);
  fw.close();
});

test("publish and presence resolve on the answer with their id, reject on error, timeout or loss", async () => {
  const { clock, WS, fw } = setup({ requestTimeout: 5000 });
  const early = fw.publish("a", { hi: 1 }); // queued until connected
  await clock.advance(0);
  WS.last.open();
  const op = WS.last.sent.find((o) => o.op === "publish");
  assert.deepEqual({ ...op, id: undefined }, { op: "publish", topic: "a", data: { hi: 1 }, id: undefined });
  WS.last.recv({ type: "published", id: op.id, topic: "a", seq: 9 });
  assert.deepEqual(await early, { type: "published", id: op.id, topic: "a", seq: 9 });

  const bad = fw.publish("a", 1);
  const badOp = WS.last.sent.at(-1);
  WS.last.recv({ type: "error", id: badOp.id, code: "forbidden", message: "not allowed" });
  await assert.rejects(bad, (e) => e.code === "forbidden");

  const who = fw.presence("a");
  const pOp = WS.last.sent.at(-1);
  assert.equal(pOp.op, "presence");
  WS.last.recv({ type: "presence", id: pOp.id, topic: "a", clients: [] });
  assert.equal((await who).type, "presence");

  const slow = fw.publish("a", 2);
  const slowCheck = assert.rejects(slow, /no answer to publish within 5000ms/);
  await clock.advance(5000);
  await slowCheck;

  const lost = fw.publish("a", 3);
  WS.last.drop(1006);
  await assert.rejects(lost, /outcome is unknown/);
  await assert.rejects(fw.publish("bad topic", 1), /invalid topic/);
  fw.close();
  await assert.rejects(fw.publish("a", 1), /closed/);
});

test("a connect that never opens times out and counts as failed", async () => {
  const { clock, WS, fw, states } = setup({ connectTimeout: 3000 });
  await clock.advance(0);
  await clock.advance(3000);
  assert.equal(WS.all[0].closedBy.reason, "connect timeout");
  assert.equal(states.at(-1).state, "disconnected");
  await clock.advance(states.at(-1).delay);
  assert.equal(WS.all.length, 2);
  fw.close();
});

test("a topic acknowledged with a seq but with nothing delivered resumes after that seq", async () => {
  const { clock, WS, fw } = setup();
  const c = record(fw, "c");
  await clock.advance(0);
  WS.last.open();
  WS.last.recv({ type: "subscribed", topics: ["c"], epochs: { c: "E1" }, seqs: { c: 12 } });
  WS.last.drop(1006);
  await clock.advance(500);
  WS.last.open();
  assert.deepEqual(WS.last.sent[0], { op: "subscribe", topics: ["c"], since: { c: 12 }, epochs: { c: "E1" } });
  WS.last.recv({ type: "subscribed", topics: ["c"], epochs: { c: "E1" }, seqs: { c: 14 } });
  WS.last.recv({ topic: "c", seq: 13, data: 13 });
  WS.last.recv({ topic: "c", seq: 14, data: 14 });
  assert.deepEqual(c.got.map((m) => [m.seq, m.gap]), [[13, null], [14, null]]);
  fw.close();
});

test("a token refused at the upgrade (closed before open) is replaced from the second failure", async () => {
  let n = 0;
  const { clock, WS, fw, states } = setup({ getToken: async () => jwt({ n: ++n, exp: 9e9 }) });
  fw.on("error", () => {});
  await clock.advance(0);
  WS.last.drop(1006);
  await clock.advance(states.at(-1).delay);
  assert.equal(n, 1); // one failure: maybe just the network
  WS.last.drop(1006);
  await clock.advance(states.at(-1).delay);
  assert.equal(n, 2);
  fw.close();
});

test("after blockedAfter failed opens the next transport is tried, kept, and topics resume across the switch", async () => {
  // A stand-in for a transport that does not exist yet, registered by name.
  const made = [];
  class FakeSSE {
    static available() {
      return true;
    }
    static endpoint(url) {
      return new URL("/sse", url);
    }
    constructor(endpoint, _env, on) {
      Object.assign(this, { endpoint: String(endpoint), on, sent: [] });
      made.push(this);
    }
    send(op) {
      this.sent.push(op);
      return true;
    }
    close() {}
  }
  const real = transports.sse;
  transports.sse = FakeSSE;
  try {
    const { clock, WS, fw, states } = setup({ transports: ["websocket", "sse"], blockedAfter: 3 });
    const a = record(fw, "a");
    await clock.advance(0);
    WS.last.open();
    WS.last.recv({ type: "subscribed", topics: ["a"], epochs: { a: "E1" } });
    WS.last.recv({ topic: "a", seq: 1, data: 1 });
    WS.last.drop(1006); // opened: not a sign of blocking
    for (let i = 0; i < 3; i++) {
      await clock.advance(states.at(-1).delay);
      assert.equal(fw.transport, "websocket");
      WS.last.drop(1006); // closed before open
    }
    assert.equal(fw.transport, "sse");
    await clock.advance(states.at(-1).delay);
    assert.equal(made.length, 1);
    assert.equal(made[0].endpoint, "ws://node.test:8080/sse");
    made[0].on.open();
    assert.deepEqual(made[0].sent[0], { op: "subscribe", topics: ["a"], since: { a: 1 }, epochs: { a: "E1" } });
    made[0].on.message(JSON.stringify({ topic: "a", seq: 1, data: 1 }));
    made[0].on.message(JSON.stringify({ topic: "a", seq: 2, data: 2 }));
    assert.deepEqual(a.got.map((m) => m.seq), [1, 2]);
    assert.equal(states.at(-1).transport, "sse");
    made[0].on.close({ code: 1006, reason: "", opened: true });
    await clock.advance(states.at(-1).delay);
    assert.equal(made.length, 2); // the transport that worked is kept
    fw.close();
  } finally {
    transports.sse = real;
  }
});

test("ephemeral messages and sender stamps reach onMessage without touching seq tracking", async () => {
  const { clock, WS, fw, errors } = setup();
  const a = record(fw, "chat.a");
  await clock.advance(0);
  const ws = WS.last;
  ws.open();
  ws.recv({ type: "subscribed", topics: ["chat.a"], epochs: { "chat.a": "E1" } });
  ws.recv({ topic: "chat.a", seq: 1, data: "hi", from: { user: "alice" } });
  ws.recv({ topic: "chat.a", ephemeral: true, data: { typing: true }, from: { user: "bob" } });
  ws.recv({ topic: "chat.a", seq: 2, data: "yo" });
  assert.deepEqual(a.got.map((m) => [m.seq, m.ephemeral, m.from && m.from.user]), [[1, false, "alice"], [null, true, "bob"], [2, false, null]]);
  assert.deepEqual(errors, []);
  const p = fw.publish("chat.a", 1, { ephemeral: true });
  assert.deepEqual({ ...ws.sent.at(-1), id: undefined }, { op: "publish", topic: "chat.a", data: 1, ephemeral: true, id: undefined });
  ws.recv({ type: "published", id: ws.sent.at(-1).id, topic: "chat.a", ephemeral: true });
  assert.equal((await p).ephemeral, true);
  fw.close();
});
