#!/usr/bin/env bash
# A/B upgrade cost in one run: for each round, each variant gets a fresh
# `fanwire serve --loops 1` and one storm of HS_CONNS connections
# (`fanwire load connect`, no rate limit); the server's utime+stime from the
# first connect until it holds every connection is its CPU for the storm.
#
#   HS_VARIANTS="base nolowat::--kernel-unsent,0 x:FANWIRE_X=1"
#     each name[:ENV=V,ENV2=V2[:serve flags, commas for spaces[:load generator binary]]]; the first is the baseline
#   HS_CONNS=15000 HS_ROUNDS=3 HS_RATE=1e9 (connects/s; 1e9 = a storm) HS_SERVE_FLAGS="--gogc 50"
# Prints one line per storm and upgrades per server CPU-second per variant.
set -euo pipefail
cd "$(dirname "$0")/../.."
FANWIRE=${FANWIRE:-bin/fanwire}
VARIANTS=${HS_VARIANTS:-base}
CONNS=${HS_CONNS:-15000}
ROUNDS=${HS_ROUNDS:-3}
# Free ports now (the density script widens the ephemeral range to 1024+,
# so a fixed port may be some connection's source port).
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
[ -x "$FANWIRE" ] || go build -o "$FANWIRE" ./cmd/fanwire
LOADER="$FANWIRE-hsload"
cp "$FANWIRE" "$LOADER"
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
conns() { curl -fsS -m 2 "http://$API/stats" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["conns"])' 2>/dev/null || echo 0; }
declare -A up cpu
for round in $(seq "$ROUNDS"); do
	for v in $VARIANTS; do
		IFS=: read -r name envs flags loader <<<"$v"
		WS=127.0.0.1:$(freeport) API=127.0.0.1:$(freeport)
		loader=${loader:-$LOADER}
		env ${envs//,/ } "$FANWIRE" serve --loops 1 --listen "$WS" --http "$API" --ping-interval 10m \
			--handshake-timeout 60s --max-conns-per-ip 0 --max-conn-rate 0 --log-level warn ${HS_SERVE_FLAGS:-} ${flags//,/ } &
		srv=$!
		for _ in $(seq 100); do curl -fsS -m 1 "http://$API/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
		sleep 1
		t0=$(ticks $srv) w0=$(date +%s.%N)
		"$loader" load connect --url "ws://$WS/ws?topics=storm" --conns "$CONNS" --rate "${HS_RATE:-1e9}" --hold 3s --duration 120s \
			--quiet --measure-memory=false --workers 1 --connect-timeout 60s >/tmp/hs-ab-load.log 2>&1 &
		load=$!
		while [ "$(conns)" -lt "$CONNS" ] && kill -0 $load 2>/dev/null; do sleep 0.05; done
		t1=$(ticks $srv) w1=$(date +%s.%N)
		wait $load || true
		kill -TERM $srv; wait $srv || true
		d=$((t1 - t0))
		echo "handshake-ab: round $round $name: $CONNS upgrades, server CPU $d ticks, wall $(echo "$w1 - $w0" | bc) s, $(( CONNS * 100 / (d > 0 ? d : 1) )) upgrades/CPU-s" >&2
		up[$name]=$(( ${up[$name]:-0} + CONNS )) cpu[$name]=$(( ${cpu[$name]:-0} + d ))
		sleep 1
	done
done
base=""
for v in $VARIANTS; do
	name=${v%%:*}
	r=$(( up[$name] * 100 / (cpu[$name] > 0 ? cpu[$name] : 1) ))
	[ -z "$base" ] && base=$r
	echo "$name: $r upgrades/server CPU-s ($(python3 -c "print(f'{$r/$base:.2f}')")x of the first variant)"
done
