# The provider-credentialing platform. `make run` brings it up; `make test`
# runs every test of every module with -race.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin

# Workspace modules, from go.work.
MODULES := $(shell go work edit -json | sed -n 's/.*"DiskPath": "\.\/\(.*\)".*/\1/p')
SERVICES := gateway credential chat stats

.PHONY: all build test vet lint fmt run bench fuzz clean services

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
test: services
	@go test -race -count=1 -timeout 12m -parallel $(TEST_PARALLEL) $(foreach m,$(MODULES),./$(m)/...)
	@# Timing-sensitive process tests that -race would slow past their schedule (build tag !race).
	@cd services/gateway && go test -count=1 -timeout 5m -run 'TestThreeGateways' ./cmd/gateway

vet:
	@set -e; for m in $(MODULES); do (cd $$m && go vet ./...); done

lint: vet
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

fmt:
	gofmt -w $(MODULES)

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
