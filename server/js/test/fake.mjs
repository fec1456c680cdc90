// Test doubles for fanwire.js: a manual clock and a scriptable WebSocket.

/** A clock whose timers run only when advance() passes them. */
export class Clock {
  constructor() {
    this.t = 1_000_000;
    this.timers = new Map();
    this.nextId = 1;
  }
  setTimeout(fn, ms) {
    const id = this.nextId++;
    this.timers.set(id, { at: this.t + Math.max(0, ms || 0), fn, id });
    return id;
  }
  clearTimeout(id) {
    this.timers.delete(id);
  }
  now() {
    return this.t;
  }
  /** The delay of the earliest pending timer, or null. */
  nextDelay() {
    let min = null;
    for (const tm of this.timers.values()) if (min === null || tm.at < min) min = tm.at;
    return min === null ? null : min - this.t;
  }
  /** Runs every timer due within ms, in order, letting promises settle in between. */
  async advance(ms) {
    const end = this.t + ms;
    for (;;) {
      await settle();
      let due = null;
      for (const tm of this.timers.values()) if (tm.at <= end && (due === null || tm.at < due.at || (tm.at === due.at && tm.id < due.id))) due = tm;
      if (!due) break;
      this.timers.delete(due.id);
      this.t = due.at;
      due.fn();
    }
    this.t = end;
    await settle();
  }
}

export function settle() {
  return new Promise((r) => setImmediate(r));
}

/** A fake WebSocket class; every instance is recorded in FakeWS.all. */
export function fakeWebSocket() {
  class FakeWS {
    static all = [];
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      FakeWS.all.push(this);
    }
    static get last() {
      return FakeWS.all[FakeWS.all.length - 1];
    }
    send(text) {
      if (this.readyState !== 1) throw new Error("send on a socket that is not open");
      this.sent.push(JSON.parse(text));
    }
    close(code = 1000, reason = "") {
      this.readyState = 3;
      this.closedBy = { code, reason };
    }
    // Test side:
    open() {
      this.readyState = 1;
      this.onopen?.({});
    }
    recv(obj) {
      this.onmessage?.({ data: typeof obj === "string" ? obj : JSON.stringify(obj) });
    }
    drop(code = 1006, reason = "") {
      this.readyState = 3;
      this.onclose?.({ code, reason });
    }
  }
  return FakeWS;
}

export function env(clock, WS, random = () => 0.5, extra = {}) {
  return {
    WebSocket: WS,
    EventSource: undefined, // no SSE or long-poll unless a test brings its fakes
    fetch: undefined,
    AbortController: undefined,
    ...extra,
    setTimeout: (f, ms) => clock.setTimeout(f, ms),
    clearTimeout: (id) => clock.clearTimeout(id),
    now: () => clock.now(),
    random,
  };
}

/** A JWT (unsigned: the client never checks signatures) with the given claims. */
export function jwt(claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return b64({ alg: "HS256", typ: "JWT" }) + "." + b64(claims) + ".sig";
}

/** A fake EventSource class; every instance is recorded in FakeES.all. */
export function fakeEventSource() {
  class FakeES {
    static all = [];
    constructor(url) {
      this.url = url;
      this.listeners = {};
      this.closed = false;
      FakeES.all.push(this);
    }
    static get last() {
      return FakeES.all[FakeES.all.length - 1];
    }
    addEventListener(name, fn) {
      (this.listeners[name] ??= []).push(fn);
    }
    close() {
      this.closed = true;
    }
    // Test side:
    emit(name, obj) {
      const data = typeof obj === "string" ? obj : JSON.stringify(obj);
      for (const fn of this.listeners[name] || []) fn({ data });
    }
    fail() {
      this.onerror?.({});
    }
  }
  return FakeES;
}

/** A fake fetch: each call is recorded and answered by the test (answer/fail). */
export function fakeFetch() {
  const calls = [];
  const fetch = (url, opts) =>
    new Promise((resolve, reject) => {
      calls.push({
        url,
        opts,
        answer: (body, status = 200) => resolve({ ok: status >= 200 && status < 300, status, json: async () => body }),
        fail: (err) => reject(err || new TypeError("Failed to fetch")),
      });
    });
  return { fetch, calls };
}
