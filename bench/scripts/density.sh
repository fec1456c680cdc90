#!/usr/bin/env bash
# `make bench-density`: how many idle WebSocket connections one box holds, and
# what they cost. For each point N (default 10k 100k 250k 500k 1M) it starts
# `fanwire serve --workers W` (W = N/18,000 rounded up: each process stays
# under a 20,000 open-files limit), drives it with `fanwire load connect` to N
# connections, measures the node's user-space memory (RSS summed over the
# supervisor and its workers, and PSS from /proc/PID/smaps_rollup, which
# counts the binary's shared pages once instead of once per worker) and the
# kernel's (Slab in /proc/meminfo), then
# broadcasts one message and counts who received it and how fast.
# The load generator runs one epoll loop per process: with ~50 processes
# on 2 cores, more loops only add wakeups.
#
#   DENSITY_POINTS="10000 100000"  DENSITY_RATE=20000  DENSITY_OUT=bench/results
#   DENSITY_SERVE_FLAGS="--gogc 100"  (more fanwire serve flags)
#   DENSITY_LOAD_FLAGS="--loops 2"    (more fanwire load connect flags)
#   DENSITY_LOADER=path               (another load generator binary, for A/B runs)
# Needs root for the sysctls (it prints each one it sets). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."

FANWIRE=${FANWIRE:-bin/fanwire}
POINTS=${DENSITY_POINTS:-"10000 100000 250000 500000 1000000"}
RATE=${DENSITY_RATE:-10000}
OUT=${DENSITY_OUT:-bench/results}
PER_WORKER=${DENSITY_PER_WORKER:-18000}
SERVE_FLAGS=${DENSITY_SERVE_FLAGS:-} # e.g. "--gogc 100 --trim-memory=false" to measure without the memory levers
# Ports free right now: the ephemeral range set below starts at 1024, so a
# fixed port may be in use as some connection's source port (the workers
# would fail to bind and be restarted by the supervisor).
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
WS=127.0.0.1:${DENSITY_WS_PORT:-$(freeport)}
API=127.0.0.1:${DENSITY_API_PORT:-$(freeport)}
TOPIC=density
mkdir -p "$OUT"
go build -o "$FANWIRE" ./cmd/fanwire
# The load generator runs a copy: sharing the node's binary file would move
# the node's PSS (its share of those pages halves) by more than the
# connections cost.
LOADER=${DENSITY_LOADER:-"$FANWIRE-load"}
[ -n "${DENSITY_LOADER:-}" ] || cp "$FANWIRE" "$LOADER"
LOAD_FLAGS=${DENSITY_LOAD_FLAGS:-}

say() { echo "density: $*" >&2; }

tune() { # name value
	local old
	old=$(sysctl -n "$1" 2>/dev/null || echo "?")
	if sysctl -qw "$1=$2" 2>/dev/null; then
		say "sysctl $1: $old -> $2"
	else
		say "sysctl $1: could not set (now $old)"
	fi
}
tune net.ipv4.ip_local_port_range "1024 65535"
tune net.core.somaxconn 65535
tune net.ipv4.tcp_max_syn_backlog 65535
tune fs.file-max 4000000

slab_kb() { awk '/^Slab:/ {print $2}' /proc/meminfo; }
rss_kb() { # sum over the supervisor and its children
	local pids
	pids="$1 $(pgrep -P "$1" | tr '\n' ' ')"
	# Rss of smaps_rollup, not VmRSS: since Linux 6.2 VmRSS is an approximate
	# per-CPU counter (it read below PSS in the 2026-12-01 1M run).
	for p in $pids; do awk '/^Rss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null; done | awk '{s+=$1} END {print s+0}'
}
pss_kb() { # like rss_kb, Pss from smaps_rollup: shared pages counted once in total
	local pids
	pids="$1 $(pgrep -P "$1" | tr '\n' ' ')"
	for p in $pids; do awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null; done | awk '{s+=$1} END {print s+0}'
}
cpu_ticks() { # utime+stime of a process and its children (clock ticks)
	local pids
	pids="$1 $(pgrep -P "$1" | tr '\n' ' ')"
	for p in $pids; do awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null; done | awk '{s+=$1} END {print s+0}'
}
kcounters() { # kernel counters that explain a slow ramp: SYN retransmits, listen drops, memory stalls
	nstat -az 2>/dev/null | awk '$1 ~ /^(TcpExtTCPSynRetrans|TcpExtListenOverflows|TcpExtListenDrops|TcpExtTCPTimeouts|TcpRetransSegs)$/ {printf "%s=%s ", $1, $2}'
	awk '$1 ~ /^(allocstall_normal|allocstall_movable|pgscan_direct|compact_stall|pgsteal_kswapd)$/ {printf "%s=%s ", $1, $2}' /proc/vmstat
}
kdelta() { # "before" "after" -> JSON object of the differences
	python3 - "$1" "$2" <<'PY'
import json, sys
a = dict(x.split("=") for x in sys.argv[1].split())
b = dict(x.split("=") for x in sys.argv[2].split())
print(json.dumps({k: int(b[k]) - int(a.get(k, 0)) for k in b}))
PY
}
node_ready() { # workers that report their node
	curl -fsS -m 5 "http://$API/stats" 2>/dev/null | python3 -c "import json,sys; print(sum(1 for w in json.load(sys.stdin)['workers'] if w.get('node')))" 2>/dev/null || echo 0
}
node_sum() { # field of the workers' node stats, summed
	curl -fsS -m 5 "http://$API/stats" | python3 -c "import json,sys; print(sum(w['node']['stats']['$1'] for w in json.load(sys.stdin)['workers'] if w.get('node')))"
}

lines=()
for n in $POINTS; do
	workers=$(( (n + PER_WORKER - 1) / PER_WORKER ))
	say "== $n connections, $workers worker processes"
	sync
	slab0=$(slab_kb)
	"$FANWIRE" serve --workers "$workers" --loops 1 --listen "$WS" --http "$API" \
		--ping-interval 10m --handshake-timeout 60s --max-conns-per-ip 0 --max-conn-rate 0 --log-level warn $SERVE_FLAGS &
	node=$!
	for _ in $(seq 100); do curl -fsS -m 1 "http://$API/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
	# The baseline must hold every worker's own start-up memory: at 15k a
	# worker still starting adds ~1 KB per connection to the delta.
	for _ in $(seq 100); do [ "$(node_ready)" -ge "$workers" ] && break; sleep 0.2; done
	sleep 1
	rss0=$(rss_kb "$node")
	pss0=$(pss_kb "$node")
	t0=$(date +%s.%N)
	"$LOADER" load connect --url "ws://$WS/ws?topics=$TOPIC" --conns "$n" --rate "$RATE" \
		--loops 1 --hold 20m --duration 30m --track --quiet --measure-memory=false --close-timeout 30s --connect-timeout 60s --retries 8 \
		--json "$OUT/tmp-load-$n.json" $LOAD_FLAGS >"$OUT/tmp-load-$n.log" 2>&1 &
	load=$!
	sc0=$(cpu_ticks "$node") k0=$(kcounters)
	conns=0 best=0 still=0 polls=0
	for _ in $(seq 1200); do
		conns=$(node_sum conns)
		polls=$((polls + 1))
		[ $((polls % 20)) -eq 0 ] && say "ramp: $conns connections after $(echo "$(date +%s.%N) - $t0" | bc | cut -d. -f1) s"
		[ "$conns" -ge "$n" ] && break
		kill -0 "$load" 2>/dev/null || break
		if [ "$conns" -gt "$best" ]; then best=$conns still=0; else still=$((still + 1)); fi
		[ "$still" -ge 30 ] && break # 15 s without a new connection: the ramp is over
		sleep 0.5
	done
	t1=$(date +%s.%N)
	sc1=$(cpu_ticks "$node") gc1=$(cpu_ticks "$load")
	kd=$(kdelta "$k0" "$(kcounters)")
	say "kernel counters over the ramp: $kd"
	say "$conns connections up in $(echo "$t1 - $t0" | bc) s (CPU: node $((sc1 - sc0)) ticks, load generator $gc1 ticks); settling"
	sleep 5
	rss1=$(rss_kb "$node")
	pss1=$(pss_kb "$node")
	slab1=$(slab_kb)
	conns=$(node_sum conns)
	pub=$(curl -fsS -d "{\"t\":$(date +%s%N)}" "http://$API/publish/$TOPIC")
	tp=$(date +%s.%N)
	delivered=0
	for _ in $(seq 600); do
		delivered=$(node_sum delivered)
		[ "$delivered" -ge "$conns" ] && break
		sleep 0.1
	done
	td=$(date +%s.%N)
	say "broadcast: delivered $delivered of $conns in $(echo "$td - $tp" | bc) s (server side)"
	kill -INT "$load"
	wait "$load" || true
	received=$(python3 -c "import json; print(json.load(open('$OUT/tmp-load-$n.json'))['connections']['messages'])")
	retried=$(python3 -c "import json; c=json.load(open('$OUT/tmp-load-$n.json'))['connections']; print(c.get('retried', 0), c.get('failed', 0))")
	lastms=$(python3 -c "import json; r=json.load(open('$OUT/tmp-load-$n.json')); print(r['tracked_latency_us']['max']/1000 if r.get('tracked_latency_us') else -1)")
	kill -TERM "$node"
	wait "$node" || true
	line=$(python3 - "$n" "$workers" "$conns" "$rss0" "$rss1" "$slab0" "$slab1" "$t0" "$t1" "$received" "$lastms" $retried "$pss0" "$pss1" "$((sc1 - sc0))" "$gc1" "$(getconf CLK_TCK)" "$kd" "$RATE" <<'PY'
import json, sys
n, w, conns, rss0, rss1, slab0, slab1 = (int(x) for x in sys.argv[1:8])
t0, t1 = float(sys.argv[8]), float(sys.argv[9])
received, lastms = int(sys.argv[10]), float(sys.argv[11])
retried, failed = int(sys.argv[12]), int(sys.argv[13])
pss0, pss1 = int(sys.argv[14]), int(sys.argv[15])
node_ticks, gen_ticks, hz = int(sys.argv[16]), int(sys.argv[17]), int(sys.argv[18])
us = lambda ticks: round(ticks * 1e6 / hz / max(conns, 1), 1)
kernel_ramp, rate = json.loads(sys.argv[19]), float(sys.argv[20])
per = lambda kb: round(kb * 1024 / max(conns, 1))
print(json.dumps({
    "target": n, "worker_processes": w, "connections": conns,
    "user_rss_bytes_per_conn": per(rss1 - rss0),
    "user_pss_bytes_per_conn": per(pss1 - pss0),
    "kernel_slab_bytes_per_conn_both_ends": per(slab1 - slab0),
    "total_pss_plus_slab_bytes_per_conn": per(pss1 - pss0 + slab1 - slab0),
    "node_rss_mib": round(rss1 / 1024, 1),
    "connect_seconds": round(t1 - t0, 1),
    "ramp_node_cpu_us_per_conn": us(node_ticks),
    "ramp_generator_cpu_us_per_conn": us(gen_ticks),
    "ramp_rate_asked": rate,
    "ramp_kernel_counters": kernel_ramp,
    "connect_attempts_retried": retried, "connections_given_up": failed,
    "broadcast_received": received,
    "broadcast_last_delivery_ms": lastms,
}))
PY
)
	say "$line"
	lines+=("$line")
	rm -f "$OUT/tmp-load-$n.json" "$OUT/tmp-load-$n.log"
	sleep 3
done

python3 - "$OUT" "${lines[@]}" <<'PY'
import json, os, platform, sys, datetime
out, points = sys.argv[1], [json.loads(x) for x in sys.argv[2:]]
doc = {
    "scenario": "density-scale",
    "date": datetime.date.today().isoformat(),
    "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)},
    "how": "fanwire serve --workers ceil(N/18000) --loops 1; fanwire load connect --track to N idle connections on one topic; one broadcast",
    "points": points,
}
json.dump(doc, open(os.path.join(out, "density.json"), "w"), indent=2)
m = doc["machine"]
print(f"# Density at scale, {doc['date']}\n")
print(f"Machine: {m['cpus']} cores, {m['mem_gib']} GiB, Linux {m['kernel']}, loopback only, 20,000 open files per process.")
print(f"How: {doc['how']} (`make bench-density`).\n")
print("User PSS counts pages shared by the worker processes (the binary) once; summed RSS counts them once per process. Total = PSS + kernel slab.\n")
print("Ramp CPU / conn: utime+stime of the node (supervisor and workers) and of the load generator (all its processes) from the first connect until the node holds every connection, per connection. The box is shared with other work: compare points of one run.\n")
print("| connections | worker processes | user RSS / conn | user PSS / conn | kernel slab / conn (both ends) | total / conn | connect time | ramp CPU / conn (node, generator) | broadcast received | last delivery |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for p in points:
    pss = f"{p['user_pss_bytes_per_conn']:,} B" if 'user_pss_bytes_per_conn' in p else "–"
    tot = f"{p['total_pss_plus_slab_bytes_per_conn']:,} B" if 'total_pss_plus_slab_bytes_per_conn' in p else "–"
    cpu = f"{p['ramp_node_cpu_us_per_conn']} µs, {p['ramp_generator_cpu_us_per_conn']} µs" if 'ramp_node_cpu_us_per_conn' in p else "–"
    print(f"| {p['connections']:,} | {p['worker_processes']} | {p['user_rss_bytes_per_conn']:,} B | {pss} | {p['kernel_slab_bytes_per_conn_both_ends']:,} B | {tot} | {p['connect_seconds']} s | {cpu} | {p['broadcast_received']:,} | {p['broadcast_last_delivery_ms']:.0f} ms |")
PY
go run ./bench/cmd/densityplot "$OUT/density.json" >"$OUT/density.svg"
say "wrote $OUT/density.json and $OUT/density.svg"
