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

.PHONY: all build deps test vet fmt bench clean

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

bench: deps build
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./...

clean:
	rm -rf bin
