# Apoxy build targets. `make test` is the command CI runs (.ci/run).
GO ?= go
BIN ?= bin/apoxy
VERSION ?= dev
LDFLAGS := -X apoxy.dev/apoxy/internal/version.Version=$(VERSION)

.PHONY: build run test test-short generate lint bench bench-go bench-apiserver bench-dns bench-tunnel bench-console conformance

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/apoxy

run:
	$(GO) run ./cmd/apoxy dev

test:
	$(GO) test -race -count=1 ./...

# Unit tests only (skips code generation and end-to-end runs).
test-short:
	$(GO) test -short ./...

generate:
	./hack/update-codegen.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Our gateway against nginx, HAProxy, Caddy, a naive Go proxy and direct (bench/proxy.sh; says
# what to apt-get install if a tool is missing). Results: bench/results/proxy-*.txt.
bench:
	./bench/proxy.sh

# Our authoritative DNS server against NSD and Knot on the same zone (bench/dns.sh; dnsperf).
bench-dns:
	./bench/dns.sh

# Hot-path Go benchmarks: route matching, snapshot compile, handler chain, config propagation.
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./internal/proxy/... ./test/gateway/

# Tunnels: throughput and kept-alive latency through a user-mode and a kernel-mode agent
# against the same gateway without a tunnel (bench/tunnel.sh; the kernel rows need root).
bench-tunnel:
	./bench/tunnel.sh

# The web console in headless Chromium on a project with 500 HTTPRoutes: first contentful
# paint and last byte per page (test/e2e BenchmarkConsolePaint; the bar is first paint < 1 s).
bench-console:
	$(GO) test -run '^$$' -bench BenchmarkConsolePaint -benchtime 10x ./test/e2e/

bench-apiserver: build
	./bench/apiserver.sh

# Unofficial run of the upstream Gateway API conformance suite against the in-process product
# (test/conformance, its own Go module). Writes test/conformance/report.txt.
conformance:
	cd test/conformance && $(GO) test -count=1 -timeout 20m .
