#!/usr/bin/python3
"""Independent token client on Python's `websockets`, driven by server/auth_test.go.

  pyauth.py URL REFRESH_TOKEN
      Connects to URL (with ?token=...), prints {"event":"open"}. If
      REFRESH_TOKEN is not "-", sends {"op":"refresh","token":...} and prints
      the reply as {"event":"reply",...}. Then reads until the server closes
      and prints {"event":"summary","code":..,"reason":..}. A refused upgrade
      prints {"event":"summary","status":<HTTP status>}.
      URL "-": prints {"event":"ready"} once loaded and reads URL from stdin
      (so a short token's lifetime does not include Python's start-up).
"""

import asyncio
import json
import sys

import websockets

TIMEOUT = 20


def emit(obj):
    print(json.dumps(obj), flush=True)


async def main(url, refresh):
    if url == "-":
        emit({"event": "ready"})
        url = (await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)).strip()
    try:
        ws = await websockets.connect(url, ping_interval=None, open_timeout=TIMEOUT)
    except websockets.exceptions.InvalidStatusCode as e:  # websockets < 14
        emit({"event": "summary", "status": e.status_code, "errors": []})
        return
    except Exception as e:  # newer websockets: InvalidStatus with .response
        status = getattr(getattr(e, "response", None), "status_code", None)
        emit({"event": "summary", "status": status, "errors": [] if status else [repr(e)]})
        return
    emit({"event": "open"})
    if refresh != "-":
        await ws.send(json.dumps({"op": "refresh", "token": refresh}))
        emit({"event": "reply", "msg": json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))})
    try:
        while True:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    except websockets.exceptions.ConnectionClosed as e:
        emit({"event": "summary", "code": e.code, "reason": e.reason, "errors": []})
    except asyncio.TimeoutError:
        emit({"event": "summary", "errors": ["not closed within %ds" % TIMEOUT]})


asyncio.run(main(sys.argv[1], sys.argv[2]))
