// The SSE and long-poll transports of fanwire.js over a scripted
// EventSource, fetch and clock: URLs, opening, resume, fall-back order.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Fanwire, subscriptionQuery, TopicState } from "../fanwire.js";
import { Clock, fakeWebSocket, fakeEventSource, fakeFetch, env } from "./fake.mjs";

function setup(options = {}) {
  const clock = new Clock();
  const WS = fakeWebSocket();
  const ES = fakeEventSource();
  const net = fakeFetch();
  const errors = [];
  const states = [];
  const fw = new Fanwire("ws://node.test:8080/ws", {
    env: env(clock, WS, () => 0.5, { EventSource: ES, fetch: net.fetch }),
    ...options,
  });
  fw.on("error", (e) => errors.push(e));
  fw.on("state", (s) => states.push(s));
  return { clock, WS, ES, net, fw, errors, states };
}

function record(fw, topic) {
  const got = [];
  const resets = [];
  fw.subscribe(topic, { onMessage: (data, meta) => got.push({ data, ...meta }), onReset: (r) => resets.push(r) });
  return { got, resets };
}

const q = (url) => Object.fromEntries(new URL(url).searchParams);

test("subscriptionQuery puts topics and resume points in the URL form", () => {
  const a = new TopicState("a");
  a.ack("E1", 0);
  a.accept({ seq: 41 });
  const b = new TopicState("b");
  assert.deepEqual(subscriptionQuery([a, b]), { topics: "a,b", since: "a:41", epochs: "a:E1" });
  assert.deepEqual(subscriptionQuery([b]), { topics: "b" });
});

test("SSE: subscriptions in the URL, open at the first event, resume with the client's own positions", async () => {
  const { clock, ES, fw, errors, states } = setup({ transports: ["sse"] });
  const a = record(fw, "prices.a");
  const b = record(fw, "b");
  await clock.advance(0);
  let es = ES.last;
  assert.equal(new URL(es.url).origin + new URL(es.url).pathname, "http://node.test:8080/sse");
  assert.deepEqual(q(es.url), { topics: "prices.a,b" });
  assert.equal(fw.state, "connecting");
  es.emit("subscribed", { type: "subscribed", topics: ["prices.a", "b"], epochs: { "prices.a": "E", b: "E" }, seqs: { "prices.a": 7, b: 3 } });
  assert.equal(fw.state, "connected");
  es.emit("snapshot", { topic: "prices.a", seq: 7, data: 7, snapshot: true });
  es.emit("message", { topic: "prices.a", seq: 8, data: 8 });
  es.fail(); // the stream dropped: EventSource is closed, the client resumes itself
  assert.equal(es.closed, true);
  assert.equal(fw.state, "disconnected");
  await clock.advance(states.at(-1).delay);
  es = ES.last;
  assert.equal(ES.all.length, 2);
  assert.deepEqual(q(es.url), { topics: "prices.a,b", since: "prices.a:8,b:3", epochs: "prices.a:E,b:E" });
  es.emit("subscribed", { type: "subscribed", topics: ["prices.a", "b"], epochs: { "prices.a": "E", b: "E" }, seqs: { "prices.a": 9, b: 4 } });
  es.emit("message", { topic: "prices.a", seq: 8, data: 8 }); // a duplicate is dropped
  es.emit("message", { topic: "prices.a", seq: 9, data: 9 });
  es.emit("message", { topic: "b", seq: 4, data: 4 });
  es.emit("reset", { type: "reset", topic: "b", from: 10, epoch: "E2" });
  es.emit("message", { topic: "b", seq: 10, data: 10 });
  assert.deepEqual(a.got.map((m) => m.seq), [7, 8, 9]);
  assert.equal(a.got[0].snapshot, true);
  assert.deepEqual(b.got.map((m) => m.seq), [4, 10]);
  assert.deepEqual(b.resets.map((r) => [r.from, r.epoch]), [[10, "E2"]]);
  assert.deepEqual(errors, []);
  // The node going away: its close event's hint sets the delay.
  es.emit("close", { type: "close", code: 1001, reason: "going away; reconnect in 4000ms" });
  assert.equal(states.at(-1).delay, 4000 + 125);
  fw.close();
});

test("SSE: a subscription change while connected is a new stream with positions carried over", async () => {
  const { clock, ES, fw } = setup({ transports: ["sse"] });
  record(fw, "a");
  await clock.advance(0);
  ES.last.emit("subscribed", { type: "subscribed", topics: ["a"], epochs: { a: "E" }, seqs: { a: 0 } });
  ES.last.emit("message", { topic: "a", seq: 1, data: 1 });
  const sub = fw.subscribe("c", {});
  await clock.advance(0);
  assert.equal(ES.all.length, 2);
  assert.equal(ES.all[0].closed, true);
  assert.deepEqual(q(ES.last.url), { topics: "a,c", since: "a:1", epochs: "a:E" });
  ES.last.emit("subscribed", { type: "subscribed", topics: ["a", "c"], epochs: { a: "E", c: "E" }, seqs: { a: 1, c: 5 } });
  sub.unsubscribe();
  await clock.advance(0);
  assert.equal(ES.all.length, 3);
  assert.deepEqual(q(ES.last.url), { topics: "a", since: "a:1", epochs: "a:E" });
  fw.close();
});

test("SSE with no first event within streamOpenTimeout is blocked: the client moves on to long-polling at once", async () => {
  const { clock, ES, net, fw, states } = setup({ transports: ["sse", "poll"], streamOpenTimeout: 3000 });
  const a = record(fw, "a");
  await clock.advance(0);
  assert.equal(ES.all.length, 1);
  await clock.advance(3000);
  assert.equal(ES.last.closed, true);
  assert.equal(fw.transport, "poll");
  await clock.advance(states.at(-1).delay);
  assert.equal(net.calls.length, 1);
  assert.equal(new URL(net.calls[0].url).pathname, "/poll");
  assert.deepEqual(q(net.calls[0].url), { topics: "a" });
  net.calls[0].answer({ messages: [], since: { a: 5 }, epochs: { a: "E" } });
  await clock.advance(0);
  assert.equal(fw.state, "connected");
  // The next poll continues after the fresh topic's starting seq: nothing is missed between polls.
  assert.equal(net.calls.length, 2);
  assert.deepEqual(q(net.calls[1].url), { topics: "a", since: "a:5", epochs: "a:E" });
  net.calls[1].answer({ messages: [{ topic: "a", seq: 6, data: 6 }, { topic: "a", seq: 7, data: 7 }], since: { a: 7 }, epochs: { a: "E" } });
  await clock.advance(0);
  assert.deepEqual(q(net.calls[2].url), { topics: "a", since: "a:7", epochs: "a:E" });
  assert.deepEqual(a.got.map((m) => m.seq), [6, 7]);
  // A failed poll reconnects with backoff, still on poll, from the same positions.
  net.calls[2].fail();
  await clock.advance(0);
  assert.equal(fw.state, "disconnected");
  await clock.advance(states.at(-1).delay);
  await clock.advance(0);
  assert.equal(fw.transport, "poll");
  assert.deepEqual(q(net.calls.at(-1).url), { topics: "a", since: "a:7", epochs: "a:E" });
  // The node's shutdown answer: close with its hint.
  net.calls.at(-1).answer({ messages: [], since: { a: 7 }, epochs: { a: "E" }, close: { code: 1001, reason: "going away; reconnect in 2000ms" } });
  await clock.advance(0);
  assert.equal(states.at(-1).state, "disconnected");
  assert.equal(states.at(-1).delay, 2000 + 125);
  fw.close();
});

test("a held poll counts as open after a second without an error", async () => {
  const { clock, net, fw } = setup({ transports: ["poll"] });
  record(fw, "a");
  await clock.advance(0);
  assert.equal(fw.state, "connecting");
  await clock.advance(1000);
  assert.equal(fw.state, "connected");
  net.calls[0].answer({ messages: [{ topic: "a", seq: 1, data: 1, snapshot: true }], since: { a: 1 }, epochs: { a: "E" } });
  await clock.advance(0);
  assert.deepEqual(q(net.calls[1].url), { topics: "a", since: "a:1", epochs: "a:E" });
  fw.close();
});

test("websocket → sse → poll: every seq exactly once across both switches", async () => {
  const { clock, WS, ES, net, fw, states, errors } = setup({ blockedAfter: 2, streamOpenTimeout: 2000 });
  const a = record(fw, "a");
  await clock.advance(0);
  WS.last.open();
  WS.last.recv({ type: "subscribed", topics: ["a"], epochs: { a: "E" }, seqs: { a: 0 } });
  WS.last.recv({ topic: "a", seq: 1, data: 1 });
  WS.last.drop(1006);
  for (let i = 0; i < 2; i++) {
    await clock.advance(states.at(-1).delay);
    WS.last.drop(1006); // refused upgrades
  }
  assert.equal(fw.transport, "sse");
  await clock.advance(states.at(-1).delay);
  assert.deepEqual(q(ES.last.url), { topics: "a", since: "a:1", epochs: "a:E" });
  ES.last.emit("subscribed", { type: "subscribed", topics: ["a"], epochs: { a: "E" }, seqs: { a: 3 } });
  ES.last.emit("message", { topic: "a", seq: 2, data: 2 });
  ES.last.emit("message", { topic: "a", seq: 3, data: 3 });
  ES.last.fail();
  for (let i = 0; i < 2; i++) {
    await clock.advance(states.at(-1).delay);
    ES.last.fail(); // errors before the first event
  }
  assert.equal(fw.transport, "poll");
  await clock.advance(states.at(-1).delay);
  assert.deepEqual(q(net.calls[0].url), { topics: "a", since: "a:3", epochs: "a:E" });
  net.calls[0].answer({ messages: [{ topic: "a", seq: 3, data: 3 }, { topic: "a", seq: 4, data: 4 }], since: { a: 4 }, epochs: { a: "E" } });
  await clock.advance(0);
  assert.deepEqual(a.got.map((m) => m.seq), [1, 2, 3, 4]);
  assert.deepEqual(errors, []);
  fw.close();
});
