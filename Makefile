# Skiff's build. `make run` starts Skiff; `make test` runs every test, installing what the
# tests need (protoc, containerd, runc, busybox-static, docker-registry) when missing, and
# building SeaweedFS (the S3 server of the backup tests) once into ~/.cache/skiff.
SHELL := /bin/bash
GO ?= go
export PATH := $(CURDIR)/bin/tools:$(PATH)

PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.1
PROTO_FILES := $(shell find proto -name '*.proto' | sort)

BENCH ?= .
JEPSEN_TIME ?= 2m
JEPSEN_NEMESES ?= all
JEPSEN_NET ?= auto
# A package's time limit in `make test`, a guard against a hung test: on a new 2-core
# machine the first run also builds SeaweedFS beside the tests (30 min of both cores on
# 2026-12-08), and the apiserver package, 5.5 min alone, took 29.6 min beside it.
TEST_TIMEOUT ?= 45m

.PHONY: all build run test bench proto openapi tools deps seaweedfs ui ui-tools jepsen vet fmt clean

all: build

build:
	@mkdir -p bin
	$(GO) build -o bin/skiff ./cmd/skiff
	$(GO) build -o bin/skiffctl ./cmd/skiffctl

# run: `skiff up`, with what its node needs installed (containerd, busybox-static, the CNI
# plugins); as root with containerd it runs the pod network too (CNI, service proxy,
# routes, cluster DNS: its "Pod network:" line says what runs; --pod-network=false: none).
run: build deps
	./bin/skiff up

# tools: the code generators `make proto` and the staleness test need.
tools: bin/tools/protoc-gen-go bin/tools/protoc-gen-go-grpc
	@./test/tools/install-deps.sh protoc

bin/tools/protoc-gen-go:
	GOBIN=$(CURDIR)/bin/tools $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

bin/tools/protoc-gen-go-grpc:
	GOBIN=$(CURDIR)/bin/tools $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

proto: tools
	protoc -I proto --go_out=proto --go_opt=paths=source_relative \
		--go-grpc_out=proto --go-grpc_opt=paths=source_relative $(PROTO_FILES:proto/%=%)

# ui: rebuilds skiffctl ui's page (skiffctl/ui/static, embedded in skiffctl) from
# skiffctl/ui/web with esbuild; TestStaticIsFresh fails when the committed page is stale.
# Node and npm are needed here only, never to build or run Skiff.
ui: ui-tools
	cd skiffctl/ui/web && node build.mjs

# ui-tools: the page's npm packages, as package-lock.json pins them (when npm is there).
# Without them TestStaticIsFresh still checks the sources' hash, so `make test` goes on.
ui-tools:
	@if [[ ! -d skiffctl/ui/web/node_modules ]] && command -v npm >/dev/null; then \
		(cd skiffctl/ui/web && npm ci --no-audit --no-fund) || \
		echo "ui-tools: npm ci failed: the page will not be rebuilt to compare"; fi

# openapi: the OpenAPI definitions of Kubernetes' types the REST API serves
# (apiserver/openapi/generated; its doc.go names the packages).
openapi:
	$(GO) generate ./apiserver/openapi/generated

# deps: what the test suites run against (containerd, runc, busybox-static, docker-registry).
deps:
	./test/tools/install-deps.sh all

# seaweedfs: SeaweedFS's weed, the S3-compatible server the backup tests start
# (test/s3test), built once from the Go module proxy into a cache every checkout shares
# (${XDG_CACHE_HOME:-~/.cache}/skiff/seaweedfs/VERSION), under nice. The first build takes
# minutes (make test runs it beside the tests); later runs find it there.
seaweedfs:
	GO=$(GO) ./test/tools/build-seaweedfs.sh

# The real Kubernetes clients' tests (kubectl, client-go, Helm) are a module of their own,
# test/k8sclients, so that Skiff does not depend on them.
#
# The suite's wall time is its longest packages': go test starts packages in the order it
# is given them, so TEST_FIRST (the packages of longest run) go first and the many short
# ones fill the other slots beside them, instead of test/e2e running alone at the end.
# Most tests wait on clusters (elections, leases, certificate lifetimes) rather than
# compute, so TEST_P test binaries run at once; `go vet`, test/k8sclients' vet and tests,
# and SeaweedFS's build when the machine has none yet (test/s3test waits for it) run
# beside them, their output (bin/*.out) printed after the product module's. test/e2e runs
# the binaries `build` made (SKIFF_E2E_BIN) rather than linking its own.
# docs/architecture.md ("Tests") says how the suite is laid out.
TEST_FIRST ?= ./test/e2e ./apiserver ./test/jepsen ./kubelet
TEST_P ?= 3
test: tools ui-tools deps build
	@GO=$(GO) ./test/tools/build-seaweedfs.sh >bin/seaweedfs.out 2>&1 & weed=$$!; \
	$(GO) vet ./... >bin/vet.out 2>&1 & vet=$$!; \
	(cd test/k8sclients && $(GO) vet ./... && $(GO) test -timeout $(TEST_TIMEOUT) ./...) \
		>bin/k8sclients-test.out 2>&1 & k8s=$$!; \
	rc=0; \
	SKIFF_E2E_BIN=$(CURDIR)/bin $(GO) test -p $(TEST_P) -timeout $(TEST_TIMEOUT) $(TEST_FIRST) ./... || rc=1; \
	wait $$weed || rc=1; \
	echo "make seaweedfs:"; cat bin/seaweedfs.out; \
	wait $$vet || rc=1; \
	echo "go vet ./...:"; cat bin/vet.out; \
	wait $$k8s || rc=1; \
	echo "test/k8sclients (go vet, go test):"; cat bin/k8sclients-test.out; \
	exit $$rc

# BENCH selects figures by name (test/bench): `make bench BENCH=store_create`. One package
# at a time (-p 1): benchmarks running side by side would measure each other. test/e2e
# holds the scale points (scale_*, up to 150,000 pods): its package may take over an hour.
bench: build
	SKIFF_BENCH='$(BENCH)' $(GO) test -p 1 -run '^$$' -bench . -benchtime 1x -timeout 150m ./... | tee bin/bench.out | grep -E '^(BENCH|ok|FAIL|---)'
	cd test/k8sclients && SKIFF_BENCH='$(BENCH)' $(GO) test -p 1 -run '^$$' -bench . -benchtime 1x -timeout 60m ./... | tee -a ../../bin/bench.out | grep -E '^(BENCH|ok|FAIL|---)'

jepsen: build
	JEPSEN_TIME=$(JEPSEN_TIME) JEPSEN_NEMESES=$(JEPSEN_NEMESES) $(GO) test -run 'TestJepsen' -timeout 0 -v ./test/jepsen/ -jepsen.long -jepsen.net=$(JEPSEN_NET)

vet:
	$(GO) vet ./...

fmt:
	gofmt -l -w $$(git ls-files '*.go' | grep -v '\.pb\.go$$')

clean:
	rm -rf bin
