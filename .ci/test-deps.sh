#!/usr/bin/env bash
# Installs the independent WebSocket clients that server/clients_test.go
# drives: Python's websockets (Debian package, for /usr/bin/python3) and npm ws
# (pinned in server/testdata/package-lock.json). Idempotent: does nothing when
# both are present. Run from the repository root (or pass it as $1).
set -euo pipefail

root=${1:-$(git rev-parse --show-toplevel 2>/dev/null || pwd)}
testdata="$root/server/testdata"

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
	sudo_cmd=(sudo)
fi

# Python websockets for Debian's python3 (not a pyenv/venv python).
if ! /usr/bin/python3 -c 'import websockets' 2>/dev/null; then
	echo "test-deps: installing python3-websockets"
	# Update the package lists only when the package is not known yet.
	if ! apt-cache show python3-websockets >/dev/null 2>&1; then
		"${sudo_cmd[@]}" apt-get update -qq
	fi
	DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq python3-websockets >/dev/null ||
		{ "${sudo_cmd[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq python3-websockets >/dev/null; }
fi
/usr/bin/python3 -c 'import websockets; print("test-deps: python websockets", websockets.__version__)'

# npm ws, exactly as locked.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "test-deps: installing nodejs and npm"
	if ! apt-cache show npm >/dev/null 2>&1; then
		"${sudo_cmd[@]}" apt-get update -qq
	fi
	DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -f "$testdata/node_modules/ws/package.json" ]; then
	echo "test-deps: installing npm ws into server/testdata/node_modules"
	if [ -f "$testdata/package-lock.json" ]; then
		npm ci --prefix "$testdata" --no-audit --no-fund --loglevel=error
	else
		npm install --prefix "$testdata" --no-audit --no-fund --loglevel=error
	fi
fi
node -e 'console.log("test-deps: npm ws", require(process.argv[1] + "/node_modules/ws/package.json").version)' "$testdata"

# Headless Chromium for the demo-page browser test (server/browser_test.go).
if ! command -v chromium >/dev/null; then
	echo "test-deps: installing chromium"
	DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq chromium >/dev/null ||
		{ "${sudo_cmd[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq chromium >/dev/null; }
fi
echo "test-deps: $(chromium --version 2>/dev/null || echo 'chromium missing')"

# --- nats-server (issue 5: scale-out tests, server/supervisor) -------------
# An external NATS shared by two supervisors; JetStream is started by the
# test itself (nats-server -js). Idempotent: skipped when already installed.
if ! command -v nats-server >/dev/null; then
	echo "test-deps: installing nats-server"
	DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq nats-server >/dev/null ||
		{ "${sudo_cmd[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq nats-server >/dev/null; }
fi
echo "test-deps: $(nats-server --version 2>/dev/null || echo 'nats-server missing')"

# --- haproxy (issue 15: TLS terminator in front, server/tlsproxy_test.go) ---
# Debian's HAProxy terminates TLS and sends PROXY protocol v2 to the node.
# Idempotent: skipped when already installed.
if ! command -v haproxy >/dev/null; then
	echo "test-deps: installing haproxy"
	DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq haproxy >/dev/null ||
		{ "${sudo_cmd[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq haproxy >/dev/null; }
fi
echo "test-deps: $(haproxy -v 2>/dev/null | head -1 || echo 'haproxy missing')"
