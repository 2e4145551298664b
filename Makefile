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

.PHONY: all build deps test vet fmt bench failover-bench fuzz demo compose-images test-compose clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/sparkd ./cmd/sparkd

deps:
	@bash hack/deps.sh

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

# The whole suite: unit tests plus integration and end-to-end tests against
# real ZooKeeper ensembles and real sparkd processes.
test: deps build vet
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [[ -n "$$unformatted" ]]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

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

clean:
	rm -rf bin
