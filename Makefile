# lanyard — build, test and lint. `make help` lists the targets.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
# Tag of `make images`; empty: the chart's appVersion, which the chart's image defaults name.
IMAGE_TAG ?=
LDFLAGS := -s -w -X github.com/lanyard-dev/lanyard/internal/cli.Version=$(VERSION) \
	-X github.com/lanyard-dev/lanyard/internal/cli.Commit=$(COMMIT)

# Directory of the pinned test-stack and developer tools (see test/tools/build.sh).
# build.sh honours a LANYARD_TOOLS_BIN from the environment and makes it absolute,
# so that tests running in their package directories find the same place.
LANYARD_TOOLS_BIN := $(shell test/tools/build.sh dir)
export LANYARD_TOOLS_BIN

GO ?= go

.PHONY: help
help: ## List the targets.
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build bin/lanyard-broker and bin/lanyard-agent.
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/lanyard-broker ./cmd/broker
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/lanyard-agent ./cmd/agent

.PHONY: demo
demo: build ## Run lanyard end to end on this machine (DEMO_KEEP=1 leaves it running).
	test/tools/build.sh stack
	$(GO) run ./test/demo --bin bin --repo .

.PHONY: tools
tools: ## Build the pinned test stack and developer tools when missing.
	test/tools/build.sh all

.PHONY: proto
proto: ## Regenerate the gRPC code from proto/ with the pinned buf.
	test/tools/build.sh dev
	cd proto && PATH="$(LANYARD_TOOLS_BIN):$$PATH" buf lint
	cd proto && PATH="$(LANYARD_TOOLS_BIN):$$PATH" buf generate

.PHONY: proto-check
proto-check: proto ## Fail when the committed generated code is stale.
	@changes=$$(git status --porcelain -- proto); \
	if [ -n "$$changes" ]; then \
		printf '%s\n' "$$changes" >&2; \
		echo "proto: generated code is stale or not committed; run make proto and commit" >&2; \
		exit 1; \
	fi

.PHONY: vet
vet: ## Run go vet, with and without the integration tests.
	$(GO) vet ./...
	$(GO) vet -tags integration ./...

.PHONY: unit
unit: ## Run the unit tests with the race detector.
	$(GO) test -race -count=1 ./...

.PHONY: integration
integration: ## Run the integration tests against a real kube-apiserver, etcd and Vault.
	test/tools/build.sh all
	$(GO) test -race -count=1 -tags integration -timeout 40m ./...

.PHONY: test
test: vet lint proto-check integration ## vet, lint, generated-code check, unit and integration tests.

.PHONY: lint
lint: ## Run the pinned golangci-lint.
	test/tools/build.sh dev
	"$(LANYARD_TOOLS_BIN)/golangci-lint" run ./...

.PHONY: clean
clean: ## Remove build output.
	rm -rf bin

.PHONY: images
images: build ## Build dist/lanyard-broker.tar and dist/lanyard-agent.tar (scratch, non-root, no daemon).
	$(GO) run ./deploy/images -out dist $(if $(IMAGE_TAG),-version $(IMAGE_TAG)) bin/lanyard-broker bin/lanyard-agent

.PHONY: chart-lint
chart-lint: ## Lint and render the Helm chart with default values and with every feature on.
	test/tools/build.sh helm
	"$(LANYARD_TOOLS_BIN)/helm" lint --strict deploy/helm/lanyard
	"$(LANYARD_TOOLS_BIN)/helm" lint --strict deploy/helm/lanyard -f test/chart/all-features.yaml
	"$(LANYARD_TOOLS_BIN)/helm" template lanyard deploy/helm/lanyard >/dev/null
	"$(LANYARD_TOOLS_BIN)/helm" template lanyard deploy/helm/lanyard -f test/chart/all-features.yaml >/dev/null
