# fanwire — `make run` starts a demo node, `make test` runs every test.
# Both install what they need (Go modules, python3-websockets, npm ws).
# make test also runs fanwire.js's own tests (node --test).

GO      ?= go
BIN     := bin/fanwire
PKGS    := ./...
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: run test test-js build deps bench bench-density bench-storm fuzz vet load load-chat chaos soak clean

build: $(BIN)

$(BIN): $(shell find . -name '*.go' -not -path './node_modules/*' 2>/dev/null) go.mod go.sum
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/fanwire

# Starts a node with the built-in demo feed; open the control URL it prints.
run: build
	./$(BIN) serve --demo

# Test dependencies: independent WebSocket clients (Python websockets, npm ws).
deps:
	@bash .ci/test-deps.sh

vet:
	$(GO) vet $(PKGS)
	cd bench/peers && $(GO) vet ./...  # the peers' own module must keep building

# fanwire.js logic that needs no browser (backoff, resume bookkeeping,
# tokens, requests) under Node's own test runner; no npm packages.
test-js:
	node --test server/js/test/*.test.mjs

# Everything, then everything again under the race detector.
test: deps vet test-js
	FANWIRE_REQUIRE_CLIENTS=1 $(GO) test -count=1 -timeout 8m $(PKGS)
	FANWIRE_REQUIRE_CLIENTS=1 $(GO) test -race -count=1 -timeout 8m $(PKGS)

# Bigger fault-injection runs (minutes): worker kills under 2,000
# subscribers, and every fault test of the bus and supervisor three times.
chaos: deps
	FANWIRE_CHAOS=1 FANWIRE_REQUIRE_CLIENTS=1 $(GO) test -count=1 -timeout 10m -run 'TestWorkerCrashUnderLoad' -v ./server/supervisor/
	FANWIRE_REQUIRE_CLIENTS=1 $(GO) test -count=3 -timeout 15m -run 'CatchesUp|Fills|Stall|Recreate|Idempotent|NATS|Crash|SupervisorDeath|Stalled|Gap' ./server/ ./server/bus/ ./server/supervisor/

# Soak (not in make test): SOAK_DURATION (default 30m) of fan-out under the
# resume oracle, churn and stalled subscribers on a node with 2 workers and an
# external nats-server, a worker killed every 3 min and the bus restarted
# every 7 min; then checks goroutines, open files, RSS and connections are
# back near baseline and nothing was lost. SOAK_DURATION=2m while developing.
# Writes bench/results/<date>-soak{,-short}.{md,json,svg}; logs in bin/soak/.
SOAK_DURATION ?= 30m
soak: build
	./$(BIN) soak --duration $(SOAK_DURATION)

# A small load scenario against a local node (starts one if none is listening):
# 2,000 connections, then fan-out to 1,000 subscribers; reports in bin/load-*.json.
load: build
	@bash loadtest/scripts/make-load.sh

# `fanwire load chat` against a node started for it (README "Chat load"):
# CHAT_ARGS="--users 10000 --rooms 1000 --hot-room-users 5000 --duration 60s", SERVE_WORKERS=2.
load-chat: build
	@bash loadtest/scripts/chat-load.sh $(CHAT_ARGS)

# Micro-benchmarks: codec, hub fan-out (allocations per delivery), handshake.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./codec/ ./server/...

# Idle connections at 10k … 1M over worker processes, memory per connection,
# one broadcast to all (minutes; sets kernel parameters, needs root).
# DENSITY_POINTS="10000 100000" for a shorter run. Writes bench/results/density.json.
bench-density: build
	bash bench/scripts/density.sh | tee bench/results/density.md

# Reconnect storm: a node with STORM_CONNS (default 100,000) connections is
# restarted (SIGTERM, then started again on the same port), without and with
# --max-conn-rate 5000 (STORM_RATES="0 5000"); the clients honour the 1001
# reconnect hints and Retry-After. Minutes; writes bin/storm.{json,md}
# (STORM_OUT=bench/results/<date>-reconnect-storm to keep it).
bench-storm: build
	bash bench/scripts/storm.sh

# Short fuzzing pass over the codec (the corpus lives in codec/testdata/fuzz).
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParser -fuzztime 60s ./codec/
	$(GO) test -run '^$$' -fuzz FuzzParseRequest -fuzztime 30s ./codec/
	$(GO) test -run '^$$' -fuzz FuzzUTF8 -fuzztime 30s ./codec/
	$(GO) test -run '^$$' -fuzz FuzzParseProxyHeader -fuzztime 30s ./codec/
	$(GO) test -run '^$$' -fuzz FuzzExtensions -fuzztime 30s ./codec/
	$(GO) test -run '^$$' -fuzz FuzzInflate -fuzztime 30s ./codec/
	$(GO) test -run '^$$' -fuzz FuzzDeltaEnvelope -fuzztime 30s ./server/wire/
	$(GO) test -run '^$$' -fuzz FuzzScanPublish -fuzztime 30s ./server/wire/

clean:
	rm -rf bin
