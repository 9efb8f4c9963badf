# imbi-worker. `make demo` runs the main job on the embedded default;
# `make test` runs every test (the same command CI runs).
# Go 1.27.3 (encoding/json/v2 in the standard library); the module proxy serves
# the toolchain, so a machine that starts with Go 1.26 fetches it on first use.
export GOTOOLCHAIN ?= go1.27.3
GO        ?= go
BIN       ?= bin/imbi-worker
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/aweber-imbi/imbi-worker/cli.Version=$(VERSION)

.PHONY: build test lint run demo bench bench-peers fuzz chaos neo4j-start neo4j-stop clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/worker

test:
	scripts/test.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

run: build
	$(BIN) run

demo: build
	scripts/demo.sh

bench:
	scripts/bench.sh

# imbi-worker vs raw JetStream and Watermill, each in its own process on a
# standalone nats-server (bench/, its own Go module; docs/performance.md).
bench-peers:
	scripts/bench-peers.sh

fuzz:
	FUZZTIME=$${FUZZTIME:-30s} scripts/fuzz.sh

chaos:
	scripts/chaos.sh

neo4j-start:
	scripts/neo4j.sh start

neo4j-stop:
	scripts/neo4j.sh stop

clean:
	rm -rf bin .imbi-worker
