# pullgate: make build | run | test | e2e | bench
GO       ?= go
BIN      := bin
CACHEBIN := $(CURDIR)/.cache/bin
# A distribution registry for tests: Debian's docker-registry when present,
# otherwise distribution v3 built once into .cache/bin.
REGISTRY_VERSION := v3.1.2
# An external NATS server for the tests that restart the control plane.
NATS_VERSION := v2.15.2
# helm renders the chart in its tests; nfpm builds the deb/rpm packages
# (v2.46+ need modules the Go proxy does not serve).
HELM_VERSION := v3.22.0
NFPM_VERSION := v2.45.2
# A real containerd (CRI) for the e2e suite.
CONTAINERD_VERSION := v2.4.2
# staticcheck in make test (v0.8.2 is its release 2026.2.2).
STATICCHECK_VERSION := v0.8.2
# SeaweedFS: a real S3 server for the cache's object-store tests. Its go.mod
# has a replace directive, so go install refuses it: build a copy of the
# module source with -mod=mod (.ci/build-weed.sh).
SEAWEEDFS_VERSION := v0.0.0-20261109003541-7506e5f91cd6

.PHONY: build run test test-short e2e bench tools vet clean

# Static binaries, stamped and stripped as the packages and images ship
# them (LDFLAGS below); `--version` on each prints the stamp.
build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='$(LDFLAGS)' -o $(BIN)/pullgate-hub ./hub/cmd/pullgate-hub
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='$(LDFLAGS)' -o $(BIN)/pullgate-agent ./agent/cmd/pullgate-agent
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='$(LDFLAGS)' -o $(BIN)/pullgate-credential-provider ./helper/cmd/pullgate-credential-provider
	ln -sf pullgate-credential-provider $(BIN)/docker-credential-pullgate

# make run ARGS='--listen 127.0.0.1:6080 --log-level debug'
run: build
	$(BIN)/pullgate-hub serve $(ARGS)

tools:
	@if ! command -v docker-registry >/dev/null 2>&1 && [ ! -x $(CACHEBIN)/registry ]; then \
		echo "building distribution registry $(REGISTRY_VERSION) into .cache/bin (once)"; \
		GOBIN=$(CACHEBIN) $(GO) install github.com/distribution/distribution/v3/cmd/registry@$(REGISTRY_VERSION); \
	fi
	@if [ ! -x $(CACHEBIN)/nats-server ]; then \
		echo "building nats-server $(NATS_VERSION) into .cache/bin (once)"; \
		GOBIN=$(CACHEBIN) $(GO) install github.com/nats-io/nats-server/v2@$(NATS_VERSION); \
	fi
	@if [ ! -x $(CACHEBIN)/helm ]; then \
		echo "building helm $(HELM_VERSION) into .cache/bin (once, a few minutes)"; \
		GOBIN=$(CACHEBIN) $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION); \
	fi
	@if [ ! -x $(CACHEBIN)/containerd ]; then \
		echo "building containerd $(CONTAINERD_VERSION) into .cache/bin (once, a few minutes)"; \
		GOBIN=$(CACHEBIN) $(GO) install github.com/containerd/containerd/v2/cmd/containerd@$(CONTAINERD_VERSION); \
	fi
	@if ! $(CACHEBIN)/staticcheck -version 2>/dev/null | grep -qF '($(STATICCHECK_VERSION:v%=%))'; then \
		echo "building staticcheck $(STATICCHECK_VERSION) into .cache/bin (once)"; \
		GOBIN=$(CACHEBIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION); \
	fi
	@if [ ! -x $(CACHEBIN)/weed ]; then \
		echo "building SeaweedFS weed $(SEAWEEDFS_VERSION) into .cache/bin (once, several minutes)"; \
		GO=$(GO) sh .ci/build-weed.sh $(SEAWEEDFS_VERSION) $(CACHEBIN)/weed || exit 1; \
	fi

test: tools
	$(GO) vet ./...
	$(CACHEBIN)/staticcheck ./...
	$(GO) test -race -count=1 -timeout 15m ./...

# The edit-test loop: -short skips the tests that need helm or run make
# (containerd and Kubernetes are e2e-only); no -race, vet or staticcheck.
test-short:
	$(GO) test -short -count=1 -timeout 10m ./...

e2e: tools build
	$(GO) test -count=1 -timeout 40m -tags e2e ./e2e/...

bench: tools
	$(GO) test -run '^$$' -bench . -benchtime 2000x ./hub/token/ ./hub/proxy/
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./e2e/bench/

clean:
	rm -rf $(BIN)

# --- Fuzzing: every func FuzzXxx in the repository (e2e/fuzz/fuzz.sh) -----
# make fuzz                     each target in turn for FUZZTIME (plain go test replays the corpora)
#                               (FUZZ_ONLY=regexp over "<package> <target>": only those)
# make fuzz-bin                 test binaries + run-all.sh in $(DIST)/fuzz, to fuzz without Go
#                               (FUZZ_PKGS=regexp: only those packages)
FUZZTIME ?= 5m
FUZZ_WORKERS ?= 1

.PHONY: fuzz fuzz-bin

fuzz:
	FUZZTIME=$(FUZZTIME) FUZZ_WORKERS=$(FUZZ_WORKERS) FUZZ_ONLY='$(FUZZ_ONLY)' GO=$(GO) sh e2e/fuzz/fuzz.sh run

fuzz-bin:
	GO=$(GO) sh e2e/fuzz/fuzz.sh build $(DIST)/fuzz '$(or $(FUZZ_PKGS),.)'

# --- Packages (deb, rpm) and OCI images, from static binaries ------------
# make package                  dist/*.deb, dist/*.rpm for ARCHS
# make images REGISTRY=registry.example.com/pullgate   multi-platform images
VERSION  ?= $(or $(shell git describe --tags --match 'v[0-9]*' 2>/dev/null | sed 's/^v//'),0.0.0-dev)
REVISION ?= $(shell git rev-parse --short HEAD 2>/dev/null)
# The version stamp of every binary (make build, dist-bin: packages, images).
LDFLAGS  = -s -w -X github.com/pullgate/pullgate/internal/version.version=$(VERSION) -X github.com/pullgate/pullgate/internal/version.revision=$(REVISION)
ARCHS    ?= amd64 arm64
FORMATS  ?= deb rpm
DIST     ?= dist
REGISTRY ?=
# File times and image creation time: the last commit's (reproducible builds).
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null)
DIST_CMDS := ./hub/cmd/pullgate-hub ./agent/cmd/pullgate-agent ./helper/cmd/pullgate-credential-provider ./packaging/cmd/pullgate-node-install

.PHONY: dist-bin package images

dist-bin:
	@for arch in $(ARCHS); do \
		echo "building static linux/$$arch binaries into $(DIST)/bin/linux_$$arch"; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags='$(LDFLAGS)' -o $(DIST)/bin/linux_$$arch/ $(DIST_CMDS) || exit 1; \
	done

$(CACHEBIN)/nfpm:
	@echo "building nfpm $(NFPM_VERSION) into .cache/bin (once)"
	GOBIN=$(CACHEBIN) $(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)

package: dist-bin $(CACHEBIN)/nfpm
	@mkdir -p $(DIST)/pkg
	{ echo "# kubelet CredentialProviderConfig for pullgate: set matchImages to the upstream"; \
	  echo "# hosts this node mirrors through the hub and the hub's host, then start the"; \
	  echo "# kubelet with --image-credential-provider-config=<this file> and"; \
	  echo "# --image-credential-provider-bin-dir=/usr/libexec/kubernetes/kubelet-plugins/credential-provider/exec"; \
	  echo "# (or regenerate it: pullgate-agent kubelet-config --help)."; \
	  $(GO) run ./agent/cmd/pullgate-agent kubelet-config --match-image hub.example.com; } > $(DIST)/pkg/kubelet-credential-provider.yaml
	@for arch in $(ARCHS); do for fmt in $(FORMATS); do for pkg in pullgate-hub pullgate-agent; do \
		PKG_BIN=$(DIST)/bin/linux_$$arch PKG_KUBELET_CONFIG=$(DIST)/pkg/kubelet-credential-provider.yaml \
		VERSION=$(VERSION) GOARCH=$$arch SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(CACHEBIN)/nfpm package --config packaging/nfpm/$$pkg.yaml \
			--packager $$fmt --target $(DIST)/ || exit 1; \
	done; done; done

images: dist-bin
	@test -n "$(REGISTRY)$(OCI_LAYOUT)" || { echo "usage: make images REGISTRY=registry.example.com/pullgate (or OCI_LAYOUT=dir)"; exit 2; }
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(GO) run ./packaging/cmd/pullgate-image --bin-dir=$(DIST)/bin \
		$(foreach a,$(ARCHS),--platform=linux/$(a)) \
		$(if $(REGISTRY),--repository=$(REGISTRY)) $(if $(OCI_LAYOUT),--oci-layout=$(OCI_LAYOUT)) \
		--version=$(VERSION) --revision=$(REVISION) --tag=$(VERSION)

# --- A real one-node Kubernetes (e2e/k8s): kube-apiserver on kine,
# controller-manager, scheduler, kubelet, the e2e suite's containerd and
# Debian's runc; the chart installed with helm. The Kubernetes binaries are
# built once into .cache/bin (20-40 min on 2 cores; a no-op afterwards).
.PHONY: e2e-k8s

# The suite runs in a network namespace of its own (e2e/k8s/netns.sh).
e2e-k8s: tools build
	GO=$(GO) sh e2e/k8s/build-tools.sh $(CACHEBIN)
	$(GO) test -c -tags e2e_k8s -o $(BIN)/e2e-k8s.test ./e2e/k8s/
	unshare --net sh e2e/k8s/netns.sh $(CURDIR)/$(BIN)/e2e-k8s.test -test.v -test.timeout 30m

# --- The web console in a real browser (e2e/console): headless Chromium
# (Debian's chromium, or PULLGATE_CHROMIUM) against a hub process and a
# registry with token auth. Screenshots and the page weight go to
# e2e/console/out (or PULLGATE_CONSOLE_SCREENSHOTS).
.PHONY: e2e-console
e2e-console: build
	$(GO) test -count=1 -timeout 10m -tags e2e_console -v ./e2e/console/

# --- The production topology under faults (e2e/ha): three hubs on
# PostgreSQL, a three-node NATS cluster, a real registry, two agents; hubs
# and NATS nodes killed, PostgreSQL stopped for 30 s, an agent cut off from
# NATS. Needs root (PostgreSQL via .ci/postgres.sh, network namespaces).
# Then the seeded revocation simulation (e2e/revsim): REVSIM_SCHEDULES
# schedules of revokes, agent partitions and replica kills on three
# in-process replicas (PostgreSQL when PULLGATE_TEST_POSTGRES_DSN is set,
# else SQLite); a failure prints the seed that replays it.
REVSIM_SCHEDULES ?= 1000
.PHONY: e2e-ha
e2e-ha: tools build
	$(GO) test -c -tags e2e_ha -o $(BIN)/e2e-ha.test ./e2e/ha/
	unshare --net sh e2e/ha/netns.sh $(CURDIR)/$(BIN)/e2e-ha.test -test.v -test.timeout 15m
	PULLGATE_REVSIM_SCHEDULES=$(REVSIM_SCHEDULES) $(GO) test -count=1 -timeout 60m -run TestRevocationSchedules ./e2e/revsim/
