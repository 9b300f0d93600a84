# pullgate: make build | run | test | e2e | bench
GO       ?= go
BIN      := bin
CACHEBIN := $(CURDIR)/.cache/bin
# A distribution registry for tests: Debian's docker-registry when present,
# otherwise distribution v3 built once into .cache/bin.
REGISTRY_VERSION := v3.1.2
# An external NATS server for the tests that restart the control plane.
NATS_VERSION := v2.15.2

.PHONY: build run test e2e bench tools vet clean

build:
	@mkdir -p $(BIN)
	$(GO) build -trimpath -o $(BIN)/pullgate-hub ./hub/cmd/pullgate-hub
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/pullgate-agent ./agent/cmd/pullgate-agent
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(BIN)/pullgate-credential-provider ./helper/cmd/pullgate-credential-provider
	ln -sf pullgate-credential-provider $(BIN)/docker-credential-pullgate

run: build
	$(BIN)/pullgate-hub serve

tools:
	@if ! command -v docker-registry >/dev/null 2>&1 && [ ! -x $(CACHEBIN)/registry ]; then \
		echo "building distribution registry $(REGISTRY_VERSION) into .cache/bin (once)"; \
		GOBIN=$(CACHEBIN) $(GO) install github.com/distribution/distribution/v3/cmd/registry@$(REGISTRY_VERSION); \
	fi
	@if [ ! -x $(CACHEBIN)/nats-server ]; then \
		echo "building nats-server $(NATS_VERSION) into .cache/bin (once)"; \
		GOBIN=$(CACHEBIN) $(GO) install github.com/nats-io/nats-server/v2@$(NATS_VERSION); \
	fi

test: tools
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m ./...

e2e: tools build
	$(GO) test -count=1 -timeout 40m -tags e2e ./e2e/...

bench: tools
	$(GO) test -run '^$$' -bench . -benchtime 2000x ./hub/token/ ./hub/proxy/
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./e2e/bench/

clean:
	rm -rf $(BIN)
