#!/usr/bin/env bash
# `fanwire load chat` against a node started for the run (and stopped
# after): single process, or `serve --workers N` with SERVE_WORKERS=N.
# The node gets loadtest/scripts/chat-load.toml (anonymous publish into
# chat.load.*) and its pid goes to --server-pid, so the report has
# deliveries per server CPU-second. Extra arguments go to `fanwire load chat`.
#
#   SERVE_WORKERS=0 FANWIRE=bin/fanwire OUT=bin/chat-load.json
#   bash loadtest/scripts/chat-load.sh --users 10000 --rooms 1000 --hot-room-users 5000 --duration 60s
set -euo pipefail
cd "$(dirname "$0")/../.."

FANWIRE=${FANWIRE:-bin/fanwire}
OUT=${OUT:-bin/chat-load.json}
[[ -x $FANWIRE ]] || go build -o "$FANWIRE" ./cmd/fanwire

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
WS=127.0.0.1:$(free_port)
API=127.0.0.1:$(free_port)

"$FANWIRE" serve --listen "$WS" --http "$API" --workers "${SERVE_WORKERS:-0}" \
	--config loadtest/scripts/chat-load.toml --log-level warn &
node_pid=$!
trap 'kill -TERM $node_pid 2>/dev/null || true; wait $node_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
	curl -fsS -m 1 "http://$API/healthz" >/dev/null 2>&1 && break
	sleep 0.1
done
curl -fsS -m 1 "http://$API/healthz" >/dev/null || { echo "node did not come up" >&2; exit 1; }
sleep "${SETTLE:-1}" # workers: every one listening

mkdir -p "$(dirname "$OUT")"
echo "== node pid $node_pid (serve --workers ${SERVE_WORKERS:-0}), load: $*" >&2
"$FANWIRE" load chat --url "ws://$WS/ws" --server-pid "$node_pid" --json "$OUT" "$@"
