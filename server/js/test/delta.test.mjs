// The Fossil delta decoder against deltas made by the node's Go encoder
// (fossil-fixtures.json, from go test ./server/js -run FossilFixtures
// -update), and the client's delta path over a scripted WebSocket.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Fanwire, applyFossilDelta, applyDelivery, deliveryBase, deltaBytes, fossilChecksum } from "../fanwire.js";
import { Clock, fakeWebSocket, env } from "./fake.mjs";

const fixtures = JSON.parse(readFileSync(new URL("./fossil-fixtures.json", import.meta.url), "utf8"));
const utf8 = (s) => new TextEncoder().encode(s);

test("decodes every delta the Go encoder made, byte for byte", () => {
  assert.ok(fixtures.length >= 5);
  for (const f of fixtures) {
    const full = JSON.parse(f.full);
    const base = deliveryBase(f.full, full);
    assert.deepEqual(base, utf8(f.base), f.name + ": base bytes");
    const r = applyDelivery(base, JSON.parse(f.delta));
    assert.equal(new TextDecoder().decode(r.bytes), f.target, f.name);
    assert.deepEqual(r.data, JSON.parse(f.target), f.name);
  }
});

test("rejects corrupt deltas and wrong bases", () => {
  const f = fixtures[0];
  const base = utf8(f.base);
  const delta = deltaBytes(JSON.parse(f.delta).data);
  assert.ok(applyFossilDelta(base, delta).length > 0);
  const wrongBase = utf8(f.base.replace("SYM-0", "SYM-9"));
  assert.throws(() => applyFossilDelta(wrongBase, delta), /checksum/);
  for (let cut = 1; cut < delta.length; cut += 7) {
    assert.throws(() => applyFossilDelta(base, delta.subarray(0, cut)), /fossil delta/, "truncated at " + cut);
  }
  assert.throws(() => applyFossilDelta(base, utf8("5\n999@0,5;")), /fossil delta/); // copy past the base
  assert.throws(() => applyFossilDelta(base, utf8("5\n5!abcde")), /unknown command/);
  assert.throws(() => deltaBytes("\u2603"), /not a byte/);
  assert.equal(fossilChecksum(utf8("")), 0);
  assert.equal(fossilChecksum(new Uint8Array([1, 2, 3, 4, 5])), 0x01020304 + 0x05000000);
  assert.equal(fossilChecksum(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 2])), 1); // mod 2^32
});

test("deliveryBase only for plain deliveries", () => {
  const text = '{"topic":"a","seq":3,"data":{"x":"é"}}';
  assert.deepEqual(deliveryBase(text, JSON.parse(text)), utf8('{"x":"é"}'));
  const snap = '{"topic":"a","seq":3,"data":{"x":1},"snapshot":true}';
  assert.equal(deliveryBase(snap, JSON.parse(snap)), null);
});

function setup() {
  const clock = new Clock();
  const WS = fakeWebSocket();
  const errors = [];
  const fw = new Fanwire("ws://node.test:8080/ws", { env: env(clock, WS) });
  fw.on("error", (e) => errors.push(e));
  return { clock, WS, fw, errors };
}

test("asks for deltas, applies them, the app sees full data", async () => {
  const { clock, WS, fw, errors } = setup();
  const got = [];
  const subscribed = [];
  fw.subscribe("t.x", { delta: true, onMessage: (data, m) => got.push({ seq: m.seq, data }), onSubscribed: (s) => subscribed.push(s) });
  fw.subscribe("plain", () => {});
  await clock.advance(0);
  const ws = WS.last;
  ws.open();
  assert.deepEqual(ws.sent, [{ op: "subscribe", topics: ["t.x"], delta: "fossil" }, { op: "subscribe", topics: ["plain"] }]);
  ws.recv({ type: "subscribed", topics: ["t.x"], epochs: { "t.x": "E" }, seqs: { "t.x": 40 }, delta: ["t.x"] });
  assert.deepEqual(subscribed, [{ topic: "t.x", epoch: "E", delta: true }]);
  const f = fixtures[0];
  ws.recv(f.full);
  ws.recv(f.delta);
  ws.recv(f.delta); // a duplicate: dropped before decoding
  assert.deepEqual(got, [
    { seq: 41, data: JSON.parse(f.base) },
    { seq: 42, data: JSON.parse(f.target) },
  ]);
  assert.deepEqual(errors, []);
});

test("falls back to full messages when a delta cannot be applied", async () => {
  const { clock, WS, fw, errors } = setup();
  const got = [];
  fw.subscribe("t.x", { delta: true, onMessage: (data, m) => got.push(m.seq) });
  await clock.advance(0);
  const ws = WS.last;
  ws.open();
  ws.recv({ type: "subscribed", topics: ["t.x"], epochs: { "t.x": "E" }, delta: ["t.x"] });
  const f = fixtures[0];
  ws.recv(f.full.replace("SYM-0", "SYM-9")); // the base the app got differs from the node's
  ws.sent.length = 0;
  ws.recv(f.delta);
  assert.deepEqual(got, [41]);
  assert.equal(errors.length, 1);
  assert.equal(errors[0].code, "delta");
  assert.deepEqual(ws.sent, [
    { op: "unsubscribe", topics: ["t.x"] },
    { op: "subscribe", topics: ["t.x"], since: { "t.x": 41 }, epochs: { "t.x": "E" } },
  ]);
  ws.recv(f.delta.replace('"seq":42', '"seq":43')); // in flight before the node heard us: dropped
  ws.recv({ type: "unsubscribed", topics: ["t.x"] });
  ws.recv({ type: "subscribed", topics: ["t.x"], epochs: { "t.x": "E" } });
  ws.recv(f.full.replace('"seq":41', '"seq":42'));
  ws.recv(f.full.replace('"seq":41', '"seq":43'));
  assert.deepEqual(got, [41, 42, 43]);
  assert.equal(errors.length, 1);
  // After a reconnect the topic no longer asks for deltas.
  ws.drop(1006);
  await clock.advance(500);
  WS.last.open();
  assert.deepEqual(WS.last.sent, [{ op: "subscribe", topics: ["t.x"], since: { "t.x": 43 }, epochs: { "t.x": "E" } }]);
});

test("a delta without its base (a gap) falls back too", async () => {
  const { clock, WS, fw, errors } = setup();
  fw.subscribe("t.x", { delta: true, onMessage: () => {} });
  await clock.advance(0);
  const ws = WS.last;
  ws.open();
  ws.recv(fixtures[0].full.replace('"seq":41', '"seq":40'));
  ws.recv(fixtures[0].delta); // seq 42 against 41, which never came
  assert.equal(errors[0]?.code, "delta");
});
