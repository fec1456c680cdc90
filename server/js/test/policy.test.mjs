// Pure policy of fanwire.js: backoff, the server's reconnect hint, tokens.
import { test } from "node:test";
import assert from "node:assert/strict";
import { backoffDelay, reconnectHint, jwtTimes, refreshDelay, validTopic, DEFAULTS } from "../fanwire.js";
import { jwt } from "./fake.mjs";

test("backoff is full jitter under an exponential ceiling, capped", () => {
  assert.equal(backoffDelay(0, 500, 30000, () => 0), 0);
  assert.equal(backoffDelay(0, 500, 30000, () => 0.999999), 499);
  assert.equal(backoffDelay(3, 500, 30000, () => 0.5), 2000); // ceiling 4000
  assert.equal(backoffDelay(10, 500, 30000, () => 0.999999), 29999); // capped
  assert.equal(backoffDelay(1e6, 500, 30000, () => 0.5), 15000); // huge attempts do not overflow
  assert.equal(DEFAULTS.backoffBase, 500);
  assert.equal(DEFAULTS.backoffCap, 30000);
});

test("backoff spreads clients: no lockstep", () => {
  const delays = new Set();
  for (let i = 0; i < 200; i++) delays.add(backoffDelay(4));
  assert.ok(delays.size > 150, `only ${delays.size} distinct delays in 200 draws`);
  for (const d of delays) assert.ok(d >= 0 && d < 8000);
});

test("the 1001 reconnect hint is read exactly as the node words it", () => {
  // server/drain.go: "going away; reconnect in " + delay + "ms"
  assert.equal(reconnectHint(1001, "going away; reconnect in 4211ms"), 4211);
  assert.equal(reconnectHint(1001, "going away; reconnect in 0ms"), 0);
  assert.equal(reconnectHint(1001, "idle timeout: no data from client"), null);
  assert.equal(reconnectHint(1006, "going away; reconnect in 4211ms"), null);
  assert.equal(reconnectHint(1001, undefined), null);
  assert.equal(reconnectHint(4005, "logged out; reconnect in 250ms"), 250); // POST /disconnect with reconnect_ms
  assert.equal(reconnectHint(4005, "disconnected by server"), null);
});

test("JWT exp and iat are read without verification", () => {
  const tok = jwt({ sub: "u1", iat: 1000, exp: 1100 });
  assert.deepEqual(jwtTimes(tok), { exp: 1100_000, iat: 1000_000 });
  assert.deepEqual(jwtTimes(jwt({ sub: "ü-ñ" })), { exp: null, iat: null });
  assert.equal(jwtTimes("not-a-jwt"), null);
  assert.equal(jwtTimes("a.%%%.c"), null);
  assert.equal(jwtTimes(42), null);
});

test("token refresh is due at 80% of its lifetime", () => {
  const tok = jwt({ iat: 1000, exp: 1100 });
  assert.equal(refreshDelay(tok, 1000_000), 80_000);
  assert.equal(refreshDelay(tok, 1050_000), 30_000);
  assert.equal(refreshDelay(tok, 1099_000), 0);
  // No iat: the lifetime counts from when the client got it.
  assert.equal(refreshDelay(jwt({ exp: 1100 }), 1000_000, 0.8, 1000_000), 80_000);
  assert.equal(refreshDelay(jwt({ sub: "x" }), 0), null);
});

test("topic names", () => {
  assert.ok(validTopic("prices.BTC-USD"));
  assert.ok(validTopic("a:b_c"));
  assert.ok(!validTopic(""));
  assert.ok(!validTopic("a/b"));
  assert.ok(!validTopic("x".repeat(129)));
});
