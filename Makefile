# The provider-credentialing platform. `make run` brings it up; `make test`
# runs every test of every module with -race.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin

# Workspace modules, from go.work.
MODULES := $(shell go work edit -json | sed -n 's/.*"DiskPath": "\.\/\(.*\)".*/\1/p')
SERVICES := gateway credential chat stats

.PHONY: all build test vet lint fmt run bench fuzz clean services deploy-tools test-deploy test-k8s images docs-assets browser

all: lint test

build:
	go build -o bin/ $(foreach s,$(SERVICES),github.com/provcred/$(s)/cmd/$(s)) \
		github.com/provcred/credential/cmd/credctl github.com/provcred/credential/cmd/credgen

services:
	@bash scripts/ensure-services.sh

# One go test over every module, so packages of all modules run side by
# side; database tests run in parallel inside a package (TEST_PARALLEL at
# once), each on a copy of its migrated template (platform/pgtest).
TEST_PARALLEL ?= 4
test: services deploy-tools browser
	@go test -race -count=1 -timeout 12m -parallel $(TEST_PARALLEL) $(foreach m,$(MODULES),./$(m)/...)
	@# Timing-sensitive process tests that -race would slow past their schedule (build tag !race).
	@cd services/gateway && go test -count=1 -timeout 5m -run 'TestThreeGateways' ./cmd/gateway
	@$(MAKE) --no-print-directory test-deploy

# Chromium (Debian) for the e2e browser test of /docs.
browser:
	@bash scripts/ensure-chromium.sh

# Swagger UI and Redoc from npm (pinned, integrity-checked) into the
# gateway's embedded assets; the result is committed.
docs-assets:
	@bash scripts/docs-assets.sh

# deploy/ (chart, rules, dashboards, images) and tools/k8s are kept out of
# go.work: their Kubernetes and Prometheus libraries must not move the
# services' dependency versions. They build with GOWORK=off.
DEPLOY_ENV := GOWORK=off GOFLAGS=-mod=readonly

# promtool and prometheus (Debian), and helm built from the module proxy.
deploy-tools:
	@bash scripts/ensure-prometheus.sh
	@HELM_ONLY=1 bash scripts/k8s-tools.sh >/dev/null

# Chart, rules, dashboards and image tests. No -race: they run helm,
# promtool and go build and share nothing between goroutines, and a race
# build of the Kubernetes, KEDA and Prometheus packages costs minutes. The
# image test builds the four services static (CGO_ENABLED=0): 30m for a
# loaded machine.
test-deploy: deploy-tools
	@echo "== deploy"; cd deploy && $(DEPLOY_ENV) go test -count=1 -timeout 30m ./...

# A real kube-apiserver, etcd, scheduler and controller-manager with kwok
# nodes: helm install/upgrade/uninstall (see docs/operations.md).
test-k8s: deploy-tools
	@bin=$$(bash scripts/k8s-tools.sh | tail -1); echo "== deploy/k8stest (tools in $$bin)"; \
		cd deploy && K8S_TOOLS_BIN=$$bin $(DEPLOY_ENV) go test -tags k8s -count=1 -timeout 20m -v -run . ./k8stest/

# OCI images of the four services in bin/images/<service> (no Docker).
images:
	@cd deploy && $(DEPLOY_ENV) go run ./cmd/images

vet:
	@set -e; for m in $(MODULES); do (cd $$m && go vet ./...); done
	@cd deploy && $(DEPLOY_ENV) go vet -tags k8s ./...

lint: vet
	@out=$$(gofmt -l $(MODULES) deploy tools); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

fmt:
	gofmt -w $(MODULES) deploy tools

run:
	@bash scripts/run.sh

# Fuzz every target for FUZZTIME each (default 10s).
FUZZTIME ?= 10s
fuzz:
	@FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh

# Benchmarks: each prints a table with a same-run baseline; see docs/benchmarks.md.
bench: services
	@bash scripts/bench.sh

clean:
	rm -rf bin .run
