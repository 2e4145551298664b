# sparkd — see README.md.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
export CGO_ENABLED ?= 0
# Tests find the binary here (end-to-end tests start it as real processes).
export SPARKD_BIN := $(CURDIR)/bin/sparkd
TEST_TIMEOUT ?= 25m

.PHONY: all build deps test vet check race soak fmt bench failover-bench chaos fuzz demo compose-images test-compose clean certs

all: build

# bin/sparkd, and the example Go drivers bin/pi and bin/wordcount.
build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/sparkd ./cmd/sparkd
	$(GO) build -trimpath -ldflags '-s -w' -o bin/pi ./examples/pi
	$(GO) build -trimpath -ldflags '-s -w' -o bin/wordcount ./examples/wordcount

deps:
	@bash hack/deps.sh

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

STATICCHECK_VERSION ?= v0.8.2
# Packages with concurrency, run again under the race detector.
RACE_PKGS ?= ./master/ ./worker/ ./client/ ./zkutil/ ./protocol/ ./recovery/... ./internal/fleetsim/

# What the docs promise about the code itself: formatted, go.mod tidy,
# staticcheck clean (fetched through the module proxy at a pinned version).
check:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [[ -n "$$unformatted" ]]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	@untidy=$$($(GO) mod tidy -diff 2>&1) || { echo "go.mod/go.sum are not tidy; run go mod tidy:"; echo "$$untidy"; exit 1; }
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

# The task runtime and the Go driver API are concurrent too.
RACE_PKGS += ./task/... ./spark/
race:
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(RACE_PKGS)

# The whole suite: unit tests plus integration and end-to-end tests against
# real ZooKeeper ensembles and real sparkd processes, then the concurrent
# packages again under the race detector.
test: deps build vet check
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	$(MAKE) --no-print-directory race

# Benchmarks: recovery store reads/writes against the raw ZooKeeper limit,
# the scheduler, worker registration throughput, master memory; the task
# runtime against xargs -P 2 and GNU parallel -j 2, and speculation.
# Failover benchmarks repeat whole failovers, so they get few iterations.
bench: deps build
	$(GO) test -run '^$$' -bench 'Read|Failover' -benchtime 5x -timeout 60m ./recovery/zkrecovery/
	$(GO) test -run '^$$' -bench 'Write' -benchtime 2000x -timeout 60m ./recovery/zkrecovery/
	$(GO) test -run '^$$' -bench . -benchmem -timeout 30m ./zkutil/ ./master/
	$(GO) test -run '^$$' -bench BenchmarkMaster -benchtime 1x -timeout 60m ./cmd/sparkd/
	$(GO) test -run '^$$' -bench BenchmarkTasks -benchtime 1x -timeout 30m ./cmd/sparkd/
	$(GO) test -run '^$$' -bench BenchmarkNoopTasks -benchtime 5000x -timeout 10m ./task/executor/

# Failover timings (SIGKILL and SIGTERM, 2 s and 10 s sessions, 20 runs each):
# median and p95 until the standby is ALIVE, workers re-registered, app re-attached.
failover-bench: deps build
	$(GO) run ./internal/cmd/failoverbench $(FAILOVER_ARGS)

# Masters against a simulated fleet (not part of `make test`): a real 3-server
# ZooKeeper, two real masters (2 s session) and one fleetsim process holding
# N workers, N/2 applications and 3N/4 simulated executors, for each N in
# SCALE_N: cold start, crash and graceful failover, registrations per worker,
# the leader's RSS, fds and goroutines; prints the tables of issue 14.
# The fleet and the masters need about 5 open files per worker: the bench
# raises RLIMIT_NOFILE to the hard limit, or to SCALE_NOFILE (above the hard
# limit needs root). N=10000 also needs a wider net.ipv4.ip_local_port_range.
SCALE_N ?= 10 1000 3000 10000
SCALE_NOFILE ?= 0
SCALE_ARGS ?=
.PHONY: bench-scale
bench-scale: deps build
	$(GO) build -trimpath -o bin/fleetsim ./internal/cmd/fleetsim
	$(GO) run ./internal/cmd/scalebench -fleetsim bin/fleetsim -n "$(SCALE_N)" -nofile $(SCALE_NOFILE) $(SCALE_ARGS)

# A long soak of a standby and of a leader under steady registrations, real
# processes: prints goroutines, ZooKeeper watches, RSS and fds over time.
SOAK ?= 10m
soak: deps build
	SPARKD_SOAK=$(SOAK) $(GO) test -count=1 -v -run TestSoak -timeout 0 ./internal/soak/

# The randomized fault test (issue #11; not part of `make test`, whose
# TestChaosSmoke is a 4-fault run of it): CHAOS_RUNS fresh clusters (3
# ZooKeeper servers, 3 masters, 4 workers, submit --exec applications
# throughout), seeds CHAOS_SEED, CHAOS_SEED+1, ... (0: a random first seed),
# CHAOS_CYCLES faults each, no new fault after CHAOS_DURATION (0: no limit).
# A failing seed prints its violations and replays with the same
# CHAOS_SEED and CHAOS_CYCLES (and CHAOS_RUNS=1). CHAOS_ARGS: more flags of
# internal/cmd/chaos (-faults leader-kill,zk-kill -session 2s -v ...).
CHAOS_SEED ?= 0
CHAOS_RUNS ?= 1
CHAOS_CYCLES ?= 20
CHAOS_DURATION ?= 0
chaos: build
	$(GO) run ./internal/cmd/chaos -seed $(CHAOS_SEED) -runs $(CHAOS_RUNS) -cycles $(CHAOS_CYCLES) -duration $(CHAOS_DURATION) $(CHAOS_ARGS)

FUZZTIME ?= 30s
fuzz:
	$(GO) test ./conf/ -run '^$$' -fuzz FuzzParseProperties -fuzztime $(FUZZTIME) -parallel 1
	$(GO) test ./conf/ -run '^$$' -fuzz FuzzSplitOptions -fuzztime $(FUZZTIME) -parallel 1
	$(GO) test ./conf/ -run '^$$' -fuzz FuzzParseMasterURLs -fuzztime $(FUZZTIME) -parallel 1
	$(GO) test ./master/ -run '^$$' -fuzz FuzzDecodeCreateRequest -fuzztime $(FUZZTIME) -parallel 1

# The main job: a local HA cluster (3 ZooKeeper servers, 2 masters, 3 workers)
# on loopback, an application, SIGKILL of the leading master, and a timeline.
demo:
	@bash hack/demo.sh

# docker-compose: build every image locally (no registry needed), then run
# the failover drill against the compose ensemble.
compose-images: build
	@bash hack/compose-images.sh

test-compose: build
	@bash hack/test-compose.sh

# Example TLS certificates (README, Security): a CA and one certificate per
# host in CERTS_DIR, for spark.ssl.certChain / privateKey / trustStore.
CERTS_DIR ?= conf/ssl
CERT_HOSTS ?= localhost
certs:
	@bash hack/certs.sh $(CERTS_DIR) $(CERT_HOSTS)

clean:
	rm -rf bin
