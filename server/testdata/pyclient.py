#!/usr/bin/python3
"""Independent fanwire client built on Python's `websockets` (Debian's
python3-websockets), driven by server/clients_test.go.

  pyclient.py subscribe URL INBAND_TOPIC COUNT
      Connects to URL (whose ?topics= subscribes at connect), subscribes to
      INBAND_TOPIC in-band, prints {"event":"ready",...} once acknowledged,
      then receives COUNT messages on every topic, checks each envelope and
      that seq runs 1..COUNT per topic, closes with 1000, prints a summary.

  pyclient.py echo URL SIZE
      Against an echo node: a SIZE-byte text message and a SIZE-byte binary
      message must come back unchanged, a ping must get its pong, and the
      close handshake must end with 1000. Prints a summary.

Every line printed is one JSON object; the last one has "event":"summary".
Failures are listed in "errors" (the Go test reports them), never raised.
"""

import asyncio
import json
import os
import sys
import urllib.parse

import websockets

TIMEOUT = 20  # seconds per receive; the Go test has its own overall deadline


def emit(obj):
    print(json.dumps(obj), flush=True)


def expected_data(seq):
    # Must match clientData in clients_test.go.
    return {"n": seq, "s": "h\u00e9llo \"quoted\" \u2603 \U0001F680"}


async def subscribe(url, inband, count):
    errors = []
    url_topics = []
    for v in urllib.parse.parse_qs(urllib.parse.urlparse(url).query).get("topics", []):
        url_topics += [t for t in v.split(",") if t]
    topics = url_topics + [inband]
    got = {t: 0 for t in topics}
    close_code = None
    async with websockets.connect(url, max_size=None, ping_interval=None, open_timeout=TIMEOUT) as ws:
        await ws.send(json.dumps({"op": "subscribe", "topics": [inband]}))
        ack = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        if ack.get("type") != "subscribed" or ack.get("topics") != [inband] or not ack.get("epochs", {}).get(inband):
            errors.append("in-band subscribe: unexpected ack %r" % (ack,))
        emit({"event": "ready", "ack": ack, "extensions": ws.response_headers.get("Sec-WebSocket-Extensions", "")})
        while min(got.values()) < count and len(errors) < 20:
            try:
                raw = await asyncio.wait_for(ws.recv(), TIMEOUT)
            except asyncio.TimeoutError:
                errors.append("no message within %ds; received so far %r" % (TIMEOUT, got))
                break
            if not isinstance(raw, str):
                errors.append("binary message from server")
                continue
            msg = json.loads(raw)
            if set(msg) != {"topic", "seq", "data"}:
                errors.append("envelope fields %r, want topic, seq, data" % sorted(msg))
                continue
            t, seq = msg["topic"], msg["seq"]
            if t not in got:
                errors.append("message on unsubscribed topic %r" % t)
                continue
            if seq != got[t] + 1:
                errors.append("topic %s: seq %d after %d (want contiguous from 1)" % (t, seq, got[t]))
            got[t] = seq
            if msg["data"] != expected_data(seq):
                errors.append("topic %s seq %d: data %r" % (t, seq, msg["data"]))
        await ws.close(1000)
        close_code = ws.close_code
    if close_code != 1000:
        errors.append("close handshake ended with %r, want 1000" % (close_code,))
    emit({"event": "summary", "received": got, "close_code": close_code, "errors": errors})


async def echo(url, size):
    errors = []
    async with websockets.connect(url, max_size=None, ping_interval=None, open_timeout=TIMEOUT) as ws:
        extensions = ws.response_headers.get("Sec-WebSocket-Extensions", "")
        text = ("fanwire \u2603 \U0001F680 " * (size // 8 + 1)).encode()[:size].decode("utf-8", "ignore")
        await ws.send(text)
        back = await asyncio.wait_for(ws.recv(), TIMEOUT)
        text_ok = back == text
        if not text_ok:
            errors.append("text echo differs: sent %d chars, got %r chars" % (len(text), len(back)))
        data = os.urandom(size)
        await ws.send(data)
        back = await asyncio.wait_for(ws.recv(), TIMEOUT)
        binary_ok = back == data
        if not binary_ok:
            errors.append("binary echo differs: sent %d bytes, got %d" % (len(data), len(back)))
        pong = await ws.ping(b"fanwire-ping")
        try:
            await asyncio.wait_for(pong, TIMEOUT)
            pong_ok = True
        except asyncio.TimeoutError:
            pong_ok = False
            errors.append("no pong within %ds" % TIMEOUT)
        await ws.close(1000)
        close_code = ws.close_code
    if close_code != 1000:
        errors.append("close handshake ended with %r, want 1000" % (close_code,))
    emit({"event": "summary", "text_ok": text_ok, "binary_ok": binary_ok, "pong_ok": pong_ok,
          "close_code": close_code, "extensions": extensions, "errors": errors})


def main():
    mode = sys.argv[1]
    if mode == "subscribe":
        asyncio.run(subscribe(sys.argv[2], sys.argv[3], int(sys.argv[4])))
    elif mode == "echo":
        asyncio.run(echo(sys.argv[2], int(sys.argv[3])))
    else:
        sys.exit("usage: pyclient.py subscribe URL INBAND_TOPIC COUNT | echo URL SIZE")


if __name__ == "__main__":
    main()
