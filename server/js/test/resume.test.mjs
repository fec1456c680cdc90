// Resume bookkeeping: what the app gets of each delivery, and where to resume.
import { test } from "node:test";
import assert from "node:assert/strict";
import { TopicState, subscribeOps } from "../fanwire.js";

const seqs = (st, list) => list.map((m) => st.accept(typeof m === "number" ? { seq: m } : m));

test("contiguous deliveries pass, duplicates are dropped", () => {
  const st = new TopicState("a");
  st.ack("E1");
  const r = seqs(st, [1, 2, 3, 2, 3, 4]);
  assert.deepEqual(r.map((x) => x.deliver), [true, true, true, false, false, true]);
  assert.ok(r[3].duplicate);
  assert.equal(st.lastSeq, 4);
  assert.equal(r[0].meta.epoch, "E1");
  assert.equal(r[0].meta.gap, null);
  assert.deepEqual(st.resumePoint(), { since: 4, epoch: "E1" });
});

test("a gap without a reset is reported, never silent", () => {
  const st = new TopicState("a");
  const [, , r] = seqs(st, [5, 6, 9]);
  assert.ok(r.deliver);
  assert.deepEqual(r.meta.gap, [7, 8]);
});

test("snapshots are delivered as such", () => {
  const st = new TopicState("prices.X");
  st.ack("E1");
  const [s, n] = seqs(st, [{ seq: 41, snapshot: true }, 42]);
  assert.equal(s.meta.snapshot, true);
  assert.equal(s.meta.gap, null); // the first delivery of a fresh subscription
  assert.equal(n.meta.snapshot, false);
  assert.equal(n.meta.gap, null);
});

test("conflation surfaces skipped seqs and is not a gap", () => {
  const st = new TopicState("prices.X");
  const [, c, next] = seqs(st, [60, { seq: 90, conflated: true, skipped: [61, 89] }, 91]);
  assert.equal(c.meta.conflated, true);
  assert.deepEqual(c.meta.skipped, [61, 89]);
  assert.equal(c.meta.gap, null);
  assert.equal(next.meta.gap, null);
  // Conflation that does not cover everything missed still shows the rest.
  const st2 = new TopicState("p");
  const [, c2] = seqs(st2, [50, { seq: 90, conflated: true, skipped: [61, 89] }]);
  assert.deepEqual(c2.meta.gap, [51, 60]);
});

test("a reset moves the resume point and the epoch; delivery continues at from", () => {
  const st = new TopicState("a");
  st.ack("E1");
  seqs(st, [1, 2, 3]);
  const info = st.reset(57, "E2");
  assert.deepEqual(info, { topic: "a", from: 57, epoch: "E2", previousEpoch: "E1", lastSeq: 3 });
  const [s, n, d] = seqs(st, [{ seq: 57, snapshot: true }, 58, 58]);
  assert.ok(s.deliver && s.meta.snapshot && s.meta.gap === null && s.meta.epoch === "E2");
  assert.ok(n.deliver && n.meta.gap === null);
  assert.ok(!d.deliver);
  // A restarted node: the new epoch starts again at 1.
  st.reset(1, "E3");
  const [one] = seqs(st, [1]);
  assert.ok(one.deliver && one.meta.gap === null);
  assert.deepEqual(st.resumePoint(), { since: 1, epoch: "E3" });
});

test("resume points: fresh, acknowledged, acknowledged with a seq, delivered", () => {
  const st = new TopicState("a");
  assert.equal(st.resumePoint(), null);
  st.ack("E1");
  assert.deepEqual(st.resumePoint(), { since: 0, epoch: "E1" });
  st.ack("E1", 41);
  assert.deepEqual(st.resumePoint(), { since: 41, epoch: "E1" });
  seqs(st, [42]);
  assert.deepEqual(st.resumePoint(), { since: 42, epoch: "E1" });
  st.ack("E1", 99); // a later ack does not move a delivered resume point
  assert.deepEqual(st.resumePoint(), { since: 42, epoch: "E1" });
});

test("invalid seqs are not delivered", () => {
  const st = new TopicState("a");
  assert.ok(st.accept({ seq: "7" }).invalid);
  assert.ok(st.accept({}).invalid);
  assert.equal(st.lastSeq, null);
});

test("subscribe ops carry since and epochs only where known, in batches", () => {
  const a = new TopicState("a");
  a.ack("E1");
  seqs(a, [41]);
  const b = new TopicState("b");
  const ops = subscribeOps([a, b]);
  assert.deepEqual(ops, [{ op: "subscribe", topics: ["a", "b"], since: { a: 41 }, epochs: { a: "E1" } }]);
  assert.deepEqual(subscribeOps([b]), [{ op: "subscribe", topics: ["b"] }]);
  const many = Array.from({ length: 450 }, (_, i) => new TopicState("t" + i));
  assert.deepEqual(subscribeOps(many).map((o) => o.topics.length), [200, 200, 50]);
  assert.deepEqual(subscribeOps([]), []);
});
