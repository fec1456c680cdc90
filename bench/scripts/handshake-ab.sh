#!/usr/bin/env bash
# A/B upgrade cost in one run: for each round, each variant gets a fresh
# server and one storm of HS_CONNS connections (`fanwire load connect`, no
# rate limit); the server's utime+stime from the first connect until it holds
# every connection (its open file descriptors) is its CPU for the storm:
# the sum of its threads' run time from /proc/PID/task/*/schedstat
# (nanoseconds; utime/stime ticks are 10 ms, ~4 % of a 15k storm), with the
# kernel's share from the utime/stime ticks.
#
#   HS_VARIANTS="base nolowat::--kernel-unsent,0 x:FANWIRE_X=1 tags::::bin/fanwire-tags uwshub"
#     each name[:ENV=V,ENV2=V2[:serve flags, commas for spaces[:load generator binary[:fanwire binary]]]];
#     the first is the baseline. A name starting with "uwshub" runs uWebSockets
#     (HS_UWS_BIN, default: bench/peers/uwshub/build.sh's cached binary) with
#     pings off instead of `fanwire serve --loops 1`.
#   HS_CONNS=15000 HS_ROUNDS=3 HS_HOLD=1s HS_RATE=1e9 (connects/s; 1e9 = a storm) HS_SERVE_FLAGS="--gogc 50"
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
case " $VARIANTS" in *" uwshub"*) UWS_BIN=${HS_UWS_BIN:-$(bash bench/peers/uwshub/build.sh | tail -1)} ;; esac
utime() { awk '{print $14}' "/proc/$1/stat"; }
stime() { awk '{print $15}' "/proc/$1/stat"; }
runns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%d", s}'; }
fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
declare -A up cpu sys ns runs
for round in $(seq "$ROUNDS"); do
	for v in $VARIANTS; do
		IFS=: read -r name envs flags loader bin <<<"$v"
		WS=127.0.0.1:$(freeport) API=127.0.0.1:$(freeport)
		loader=${loader:-$LOADER} bin=${bin:-$FANWIRE}
		if [[ $name == uwshub* ]]; then
			env ${envs//,/ } "$UWS_BIN" --listen "$WS" --http "$API" --ping-interval 0s ${flags//,/ } &
		else
			env ${envs//,/ } "$bin" serve --loops 1 --listen "$WS" --http "$API" --ping-interval 10m \
				--handshake-timeout 60s --max-conns-per-ip 0 --max-conn-rate 0 --log-level warn ${HS_SERVE_FLAGS:-} ${flags//,/ } &
		fi
		srv=$!
		for _ in $(seq 100); do curl -fsS -m 1 "http://$API/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
		sleep 1
		base=$(fds $srv)
		u0=$(utime $srv) s0=$(stime $srv) n0=$(runns $srv) w0=$(date +%s.%N)
		"$loader" load connect --url "ws://$WS/ws?topics=storm" --conns "$CONNS" --rate "${HS_RATE:-1e9}" --hold "${HS_HOLD:-1s}" --duration 120s \
			--quiet --measure-memory=false --workers 1 --connect-timeout 60s >/tmp/hs-ab-load.log 2>&1 &
		load=$!
		while [ "$(fds $srv)" -lt $((base + CONNS)) ] && kill -0 $load 2>/dev/null; do sleep 0.05; done
		u1=$(utime $srv) s1=$(stime $srv) n1=$(runns $srv) w1=$(date +%s.%N)
		wait $load || true
		kill -TERM $srv; wait $srv || true
		d=$((u1 - u0 + s1 - s0)) dn=$((n1 - n0))
		echo "handshake-ab: round $round $name: $CONNS upgrades, server CPU $((dn / 1000000)) ms ($d ticks, $((s1 - s0)) in kernel), wall $(echo "$w1 - $w0" | bc) s, $(( CONNS * 1000000000 / (dn > 0 ? dn : 1) )) upgrades/CPU-s" >&2
		up[$name]=$(( ${up[$name]:-0} + CONNS )) cpu[$name]=$(( ${cpu[$name]:-0} + d )) sys[$name]=$(( ${sys[$name]:-0} + s1 - s0 )) ns[$name]=$(( ${ns[$name]:-0} + dn ))
		runs[$name]="${runs[$name]:-} $(( CONNS * 1000000000 / (dn > 0 ? dn : 1) ))"
		sleep 1
	done
done
first="" firstmed=""
for v in $VARIANTS; do
	name=${v%%:*}
	r=$(( up[$name] * 1000000000 / (ns[$name] > 0 ? ns[$name] : 1) ))
	[ -z "$first" ] && first=$r
	med=$(python3 -c "import statistics; print(int(statistics.median(map(int, '${runs[$name]}'.split()))))")
	[ -z "$firstmed" ] && firstmed=$med
	echo "$name: $r upgrades/server CPU-s (median of rounds $med), $(( sys[$name] * 100 / (cpu[$name] > 0 ? cpu[$name] : 1) ))% in kernel; $(python3 -c "print(f'{$r/$first:.2f}x (median {$med/$firstmed:.2f}x)')") of the first variant"
done
