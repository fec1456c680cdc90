// Publish and presence over the fallback transports: a POST next to the
// stream, answered like the in-band op and settled by id (fake fetch).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Fanwire } from "../fanwire.js";
import { Clock, fakeWebSocket, fakeEventSource, fakeFetch, env } from "./fake.mjs";

function setup(options = {}) {
  const clock = new Clock();
  const ES = fakeEventSource();
  const net = fakeFetch();
  const fw = new Fanwire("ws://node.test:8080/ws", {
    env: env(clock, fakeWebSocket(), () => 0.5, { EventSource: ES, fetch: net.fetch }),
    ...options,
  });
  return { clock, ES, net, fw };
}

const posts = (net) => net.calls.filter((c) => c.opts && c.opts.method === "POST");

test("SSE: publish is a POST /publish with the stream's token; the answer settles it", async () => {
  const { clock, ES, net, fw } = setup({ transports: ["sse"], getToken: async () => "tok" });
  fw.subscribe("chat.a", {});
  await clock.advance(0);
  ES.last.emit("subscribed", { type: "subscribed", topics: ["chat.a"], epochs: { "chat.a": "E" }, seqs: { "chat.a": 0 } });
  const ack = fw.publish("chat.a", { text: "hi" });
  await clock.advance(0);
  const [call] = posts(net);
  assert.equal(call.url, "http://node.test:8080/publish");
  assert.equal(call.opts.headers.Authorization, "Bearer tok");
  const body = JSON.parse(call.opts.body);
  assert.deepEqual({ op: body.op, topic: body.topic, data: body.data }, { op: "publish", topic: "chat.a", data: { text: "hi" } });
  call.answer({ type: "published", id: body.id, topic: "chat.a", seq: 1 });
  assert.equal((await ack).seq, 1);

  // An HTTP-level refusal without an id still rejects the right request, with its code.
  const refused = fw.publish("chat.a", 1);
  await clock.advance(0);
  posts(net)[1].answer({ type: "error", code: "forbidden", message: "no" }, 403);
  await assert.rejects(refused, (e) => e.code === "forbidden");

  // A network failure rejects too (the outcome is unknown).
  const lost = fw.publish("chat.a", 2);
  await clock.advance(0);
  posts(net)[2].fail();
  await assert.rejects(lost, (e) => e.code === "network");
  fw.close();
});

test("poll: presence and presence_stats go to POST /presence; a publish before the stream opens waits for it", async () => {
  const { clock, net, fw } = setup({ transports: ["poll"] });
  fw.subscribe("room.a", {});
  const early = fw.publish("room.a", 7); // not live yet: sent once the poll is open
  await clock.advance(0);
  assert.equal(posts(net).length, 0);
  net.calls[0].answer({ messages: [], since: { "room.a": 0 }, epochs: { "room.a": "E" } });
  await clock.advance(0);
  const [pub] = posts(net);
  assert.equal(pub.url, "http://node.test:8080/publish");
  pub.answer({ type: "published", id: JSON.parse(pub.opts.body).id, topic: "room.a", seq: 1 });
  assert.equal((await early).seq, 1);

  const who = fw.presence("room.a");
  const stats = fw.presenceStats("room.a");
  await clock.advance(0);
  const [p, s] = posts(net).slice(1);
  assert.equal(p.url, "http://node.test:8080/presence");
  assert.equal(JSON.parse(p.opts.body).op, "presence");
  p.answer({ type: "presence", id: JSON.parse(p.opts.body).id, topic: "room.a", users: [{ user: "alice" }] });
  assert.deepEqual((await who).users, [{ user: "alice" }]);
  assert.equal(JSON.parse(s.opts.body).op, "presence_stats");
  s.answer({ type: "presence_stats", id: JSON.parse(s.opts.body).id, topic: "room.a", users: 1 });
  assert.equal((await stats).users, 1);
  fw.close();
});
