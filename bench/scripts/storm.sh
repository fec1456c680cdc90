#!/usr/bin/env bash
# `make bench-storm`: a reconnect storm. A node holding STORM_CONNS
# connections (`fanwire serve --workers W`, W = ceil(N/15,000) so each
# process stays under a 20,000 open-files limit) is restarted: SIGTERM (it
# closes every connection with 1001 and a "reconnect in Nms" hint, paced at
# --drain-rate, hints spread over --drain-window; connections arriving while
# it drains get 503 + Retry-After), then started again on the same port.
# The clients are `fanwire load connect --resume --end-when-back`: they
# honour the hints and Retry-After, back off with jitter, and never give up
# until the run ends. Measured: time from SIGTERM until every connection is
# back, each connection's downtime (close to the new 101), failed attempts
# by cause (refused while the node was down, 503 while draining or over
# --max-conn-rate, timeouts), connections given up, and the node's peak CPU
# (supervisor + workers, sampled every 0.5 s, % of one core).
#
# One run per STORM_RATES entry: the node's --max-conn-rate (0 = unlimited).
#   STORM_CONNS=100000  STORM_RATES="0 5000"  STORM_RAMP=20000
#   STORM_DRAIN_WINDOW=10s  STORM_DRAIN_RATE=20000  STORM_OUT=bin/storm
# Writes $STORM_OUT.json and $STORM_OUT.md; exits 1 if any connection was
# given up or a run did not finish. Loopback only; 100k needs the machine to
# itself (about 1 GiB of kernel socket memory and both cores for a minute).
set -euo pipefail
cd "$(dirname "$0")/../.."

FANWIRE=${FANWIRE:-bin/fanwire}
CONNS=${STORM_CONNS:-100000}
RATES=${STORM_RATES:-"0 5000"}
RAMP=${STORM_RAMP:-20000}
PER_WORKER=${STORM_PER_WORKER:-15000}
WORKERS=${STORM_WORKERS:-$(((CONNS + PER_WORKER - 1) / PER_WORKER))}
DRAIN_WINDOW=${STORM_DRAIN_WINDOW:-10s}
DRAIN_RATE=${STORM_DRAIN_RATE:-20000}
OUT=${STORM_OUT:-bin/storm}
mkdir -p "$(dirname "$OUT")"
go build -o "$FANWIRE" ./cmd/fanwire
LOADER="$FANWIRE-load" # a copy, so the node's processes are told apart from the load generator's
cp "$FANWIRE" "$LOADER"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

say() { echo "storm: $*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ns() { date +%s%N; }

node_conns() { # open connections, summed over the workers
	curl -fsS -m 5 "http://$API/stats" 2>/dev/null |
		python3 -c "import json,sys; print(sum(w['node']['stats']['conns'] for w in json.load(sys.stdin)['workers'] if w.get('node')))" 2>/dev/null || echo 0
}
node_ready() { # workers that report their node
	curl -fsS -m 5 "http://$API/stats" 2>/dev/null |
		python3 -c "import json,sys; print(sum(1 for w in json.load(sys.stdin)['workers'] if w.get('node') and w.get('ready')))" 2>/dev/null || echo 0
}
start_node() { # conn-rate; sets NODE
	"$FANWIRE" serve --workers "$WORKERS" --loops 1 --listen "$WS" --http "$API" \
		--max-conn-rate "$1" --max-conns-per-ip 0 --drain-window "$DRAIN_WINDOW" --drain-rate "$DRAIN_RATE" \
		--ping-interval 10m --handshake-timeout 60s --log-level warn >>"$TMP/node.log" 2>&1 &
	NODE=$!
	echo "$NODE" >"$TMP/node.pid"
	for _ in $(seq 300); do [ "$(node_ready)" -ge "$WORKERS" ] && return 0; sleep 0.1; done
	say "node not ready"
	return 1
}

# cpu_sampler: every 0.5 s, the CPU time of the node's processes (the pid
# in node.pid and its children) over the interval; stops when the stop file
# appears, writing the peak and the series.
cpu_sampler() {
	python3 - "$TMP/node.pid" "$TMP/stop" "$TMP/cpu.json" <<'PY'
import json, os, sys, time
pidfile, stop, out = sys.argv[1:4]
hz = os.sysconf("SC_CLK_TCK")
def ticks():
    try:
        root = int(open(pidfile).read())
    except Exception:
        return {}
    pids = [root]
    for d in os.listdir("/proc"):  # its children (workers): parent pid == root
        if d.isdigit():
            try:
                if int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1]) == root:
                    pids.append(int(d))
            except Exception:
                pass
    t = {}
    for p in pids:
        try:
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            t[p] = int(f[11]) + int(f[12])
        except Exception:
            pass
    return t
series, prev, pt, t0 = [], ticks(), time.time(), time.time()
while not os.path.exists(stop):
    time.sleep(0.5)
    cur, ct = ticks(), time.time()
    d = sum(cur[p] - prev[p] for p in cur if p in prev)
    series.append([round(ct - t0, 1), round(100 * d / hz / (ct - pt))])
    prev, pt = cur, ct
json.dump({"peak_cpu_pct": max((c for _, c in series), default=0), "series": series}, open(out, "w"))
PY
}

runs=()
status=0
for rate in $RATES; do
	WS=127.0.0.1:$(free_port)
	API=127.0.0.1:$(free_port)
	rm -f "$TMP/stop" "$TMP/cpu.json" "$TMP/load.json"
	say "== $CONNS connections, $WORKERS worker processes, --max-conn-rate $rate"
	start_node "$rate"
	ramp=$RAMP
	if [ "$rate" != 0 ]; then ramp=$(python3 -c "print(min($RAMP, $rate * 0.9))"); fi
	"$LOADER" load connect --url "ws://$WS/ws?topics=storm" --conns "$CONNS" --rate "$ramp" \
		--resume --end-when-back --hold 10m --duration 15m --measure-memory=false \
		--connect-timeout 30s --close-timeout 30s --retries 8 \
		--json "$TMP/load.json" >"$TMP/load.log" 2>&1 &
	load=$!
	for _ in $(seq 1200); do
		[ "$(node_conns)" -ge "$CONNS" ] && break
		kill -0 "$load" 2>/dev/null || break
		sleep 0.5
	done
	say "$(node_conns) connections up; settling 3 s"
	sleep 3
	cpu_sampler &
	sampler=$!
	sleep 1
	t_term=$(now_ns)
	kill -TERM "$NODE"
	wait "$NODE" || true
	t_down=$(now_ns)
	say "old node exited after $(((t_down - t_term) / 1000000)) ms; starting the new one"
	start_node "$rate"
	t_up=$(now_ns)
	say "new node ready $(((t_up - t_term) / 1000000)) ms after SIGTERM"
	load_rc=0
	wait "$load" || load_rc=$?
	touch "$TMP/stop"
	wait "$sampler" || true
	final=$(node_conns)
	kill -TERM "$NODE"
	wait "$NODE" || true
	run=$(python3 - "$TMP/load.json" "$TMP/cpu.json" "$rate" "$t_term" "$t_down" "$t_up" "$load_rc" "$final" <<'PY'
import json, sys
load, cpu = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
rate, t_term, t_down, t_up, rc, final = float(sys.argv[3]), *map(int, sys.argv[4:9])
rc_ = load.get("reconnect") or {}
c = load["connections"]
last_back = c.get("last_back_unix_ns", 0)
print(json.dumps({
    "max_conn_rate": rate,
    "connections": load["settings"]["conns"],
    "old_node_exit_s": round((t_down - t_term) / 1e9, 2),
    "new_node_ready_s": round((t_up - t_term) / 1e9, 2),
    "all_back_after_sigterm_s": round((last_back - t_term) / 1e9, 2) if last_back else None,
    "all_back_after_first_close_s": round(rc_.get("full_reconnection_s", 0), 2),
    "closed_by_server": rc_.get("closed", 0),
    "reconnected": rc_.get("reconnected", 0),
    "given_up": rc_.get("given_up", 0),
    "reconnect_attempts": rc_.get("attempts", 0),
    "failed_attempts_by": rc_.get("failed_attempts_by", {}),
    "downtime_ms": {k: round(v / 1000) for k, v in rc_.get("downtime_us", {}).items() if k != "count"},
    "closed_by": c.get("closed_by", {}),
    "peak_node_cpu_pct": cpu["peak_cpu_pct"],
    "node_cpu_series": cpu["series"],
    "load_generator_exit": rc,
    "load_generator_problems": load.get("problems", []),
    "node_conns_at_end": final,
}))
PY
)
	say "$(python3 -c "import json,sys; r=json.loads(sys.argv[1]); r.pop('node_cpu_series'); print(json.dumps(r))" "$run")"
	runs+=("$run")
	if [ "$load_rc" != 0 ]; then status=1; fi
	sleep 3
done

python3 - "$OUT" "$CONNS" "$WORKERS" "$DRAIN_WINDOW" "$DRAIN_RATE" "$RAMP" "${runs[@]}" <<'PY'
import json, os, platform, sys, datetime
out, conns, workers, window, drain_rate, ramp = sys.argv[1:7]
runs = [json.loads(x) for x in sys.argv[7:]]
doc = {
    "scenario": "reconnect-storm",
    "date": datetime.date.today().isoformat(),
    "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "shared": True,
                "note": "box shared with other helpers' runs: absolute times are noisy; compare the runs with each other"},
    "how": f"STORM_CONNS={conns} bash bench/scripts/storm.sh: fanwire serve --workers {workers} --loops 1 --drain-window {window} --drain-rate {drain_rate} --max-conns-per-ip 0 --max-conn-rate R; "
           f"fanwire load connect --conns {conns} --rate {ramp} (or 0.9 R) --resume --end-when-back; SIGTERM, then the same serve command on the same port",
    "runs": runs,
}
json.dump(doc, open(out + ".json", "w"), indent=2)
m = doc["machine"]
with open(out + ".md", "w") as f:
    f.write(f"# Reconnect storm, {doc['date']}\n\n")
    f.write(f"Machine: {m['cpus']} cores, Linux {m['kernel']}, loopback only, 20,000 open files per process; "
            "**shared with other helpers' runs** (absolute times are noisy: compare the rows).\n\n")
    f.write(f"How: {doc['how']}.\n\n")
    f.write("Downtime is per connection, from its 1001 close to its new 101. Failed attempts: refused = no node listening, "
            "status_503 = the draining node (shutting_down) or the new node over --max-conn-rate (rate_limited), "
            "reset = connections cut while a node stopped or started. Peak node CPU: supervisor + workers, 0.5 s samples, % of one core.\n\n")
    f.write(f"| --max-conn-rate | connections | old node exited | new node ready | all back after SIGTERM | downtime p50 / p99 / max | attempts | failed attempts by cause | given up | peak node CPU |\n")
    f.write("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|\n")
    for r in runs:
        d = r["downtime_ms"]
        fails = ", ".join(f"{k} {v:,}" for k, v in sorted(r["failed_attempts_by"].items())) or "none"
        label = "unlimited" if not r["max_conn_rate"] else f"{r['max_conn_rate']:g}/s"
        f.write(f"| {label} | {r['reconnected']:,} of {r['closed_by_server']:,} | {r['old_node_exit_s']} s | {r['new_node_ready_s']} s | "
                f"{r['all_back_after_sigterm_s']} s | {d.get('p50', 0)/1000:.2f} / {d.get('p99', 0)/1000:.2f} / {d.get('max', 0)/1000:.2f} s | {r['reconnect_attempts']:,} | {fails} | {r['given_up']} | {r['peak_node_cpu_pct']}% |\n")
print(open(out + ".md").read())
PY
say "wrote $OUT.json and $OUT.md"
exit $status
