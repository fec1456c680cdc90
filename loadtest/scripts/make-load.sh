#!/usr/bin/env bash
# `make load`: a small default load scenario against a local fanwire node.
# Uses the node on LOAD_WS/LOAD_API if one answers /healthz, otherwise
# starts one (and stops it afterwards). Prints both reports; the exit
# status is nonzero if either run failed (connections or deliveries lost).
#
#   LOAD_WS=127.0.0.1:8080 LOAD_API=127.0.0.1:8081 FANWIRE=bin/fanwire
#   LOAD_CONNS=2000 LOAD_SUBS=1000 LOAD_TOPICS=10 LOAD_PUB_RATE=100 LOAD_DURATION=5s
set -euo pipefail
cd "$(dirname "$0")/../.."

FANWIRE=${FANWIRE:-bin/fanwire}
WS=${LOAD_WS:-127.0.0.1:8080}
API=${LOAD_API:-127.0.0.1:8081}
OUT=${LOAD_OUT:-bin}

if [[ ! -x $FANWIRE ]]; then
	go build -o "$FANWIRE" ./cmd/fanwire
fi

healthy() { curl -fsS -m 1 "http://$API/healthz" >/dev/null 2>&1; }

node_pid=""
cleanup() {
	if [[ -n $node_pid ]]; then
		kill -TERM "$node_pid" 2>/dev/null || true
		wait "$node_pid" 2>/dev/null || true
	fi
}
trap cleanup EXIT

if healthy; then
	echo "== using the node already listening on ws://$WS (control http://$API)"
else
	echo "== starting a node on ws://$WS (control http://$API)"
	"$FANWIRE" serve --listen "$WS" --http "$API" --log-level warn &
	node_pid=$!
	for _ in $(seq 50); do
		healthy && break
		sleep 0.1
	done
	healthy || { echo "node did not come up" >&2; exit 1; }
fi

mkdir -p "$OUT"
status=0
echo "== connect: ${LOAD_CONNS:-2000} connections, hold 2s"
"$FANWIRE" load connect --url "ws://$WS/ws" --conns "${LOAD_CONNS:-2000}" --rate 2000 --hold 2s \
	--json "$OUT/load-connect.json" || status=1
echo "== fanout: ${LOAD_SUBS:-1000} subscribers on ${LOAD_TOPICS:-10} topics, ${LOAD_PUB_RATE:-100} msg/s for ${LOAD_DURATION:-5s}"
"$FANWIRE" load fanout --url "ws://$WS/ws" --api "http://$API" --subscribers "${LOAD_SUBS:-1000}" \
	--topics "${LOAD_TOPICS:-10}" --pub-rate "${LOAD_PUB_RATE:-100}" --duration "${LOAD_DURATION:-5s}" \
	--json "$OUT/load-fanout.json" || status=1
echo "== JSON reports: $OUT/load-connect.json $OUT/load-fanout.json"
exit $status
