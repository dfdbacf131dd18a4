# winback: `make run` starts everything on the embedded default; `make test`
# sets everything up and runs every test. Both install what is missing.

SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)
GO      ?= go
BIN     := bin/winback
CHDB_LIB = $(shell cat .cache/chdb/libpath 2>/dev/null)
# An execution count, not a duration: go1.26's fuzz coordinator can fail a
# run that ends on a -fuzztime deadline with a bare "context deadline
# exceeded" and no crasher (golang/go#75804, fixed in go1.27).
FUZZTIME ?= 40000x
# Minimising a new input is bounded by executions too (the default is 60 s
# each, which a count-bounded run would wait through).
FUZZMINIMIZE ?= 200x
# benchstat summarises the micro-benchmarks (and compares runs:
# go run $(BENCHSTAT) old.txt new.txt).
BENCHSTAT := golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
# staticcheck finds what vet does not: unused code, deprecated calls, and
# comparisons or assignments that make a test unable to fail.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all deps deps-run build run test race unit fuzz-short fuzz bench bench-smoke bench-tiny bench-quick bench-bi soak lint clean

all: build

## deps: install what make test needs when missing: Debian's clickhouse-server, clickhouse-client and kcat, the KafkaJS test client and chDB
deps:
	@bash scripts/deps.sh

## deps-run: only what make run needs (no chDB or KafkaJS, which only the tests use)
deps-run:
	@bash scripts/deps.sh --run-only

build:
	$(GO) build -buildvcs=auto -o $(BIN) ./cmd/winback

## run: the embedded default (kfake + srfake + a local ClickHouse) with generated traffic;
## more flags with ARGS, e.g. make run ARGS="--trigger-format json --data-dir /tmp/wb"
run: deps-run build
	$(BIN) dev --generate $(ARGS)

## test: every test, including integration tests on a real ClickHouse and short fuzz runs
test: deps lint
	CHDB_LIB_PATH=$(CHDB_LIB) $(GO) test -count=1 -timeout 20m ./...
	$(MAKE) --no-print-directory fuzz-short
	$(MAKE) --no-print-directory bench-smoke
	$(MAKE) --no-print-directory bench-tiny

## lint: go vet and staticcheck over the module (about a minute and a half the first time, seconds once cached)
lint:
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

## race: every test under the race detector, the winback children of the multi-process tests included (their reports fail the run); slower than make test, so not part of it
race: deps
	CHDB_LIB_PATH=$(CHDB_LIB) $(GO) test -race -count=1 -timeout 80m ./...

## bench-smoke: each Go micro-benchmark once (about 25 s), so that none breaks unseen between `make bench` runs; the lapse package's are left to make bench (a minute of setup)
bench-smoke:
	$(GO) test -p 1 -count=1 -run '^$$' -bench . -benchtime 1x $$($(GO) list ./pipeline/... ./sinks/... | grep -v '/pipeline/lapse$$')

# Each fuzz target runs FUZZTIME (executions), with its corpus in the package's testdata/fuzz.
FUZZ_TARGETS = $(shell grep -rl --include='*_test.go' --exclude-dir=.cache '^func Fuzz' . | xargs -r grep -H -o '^func Fuzz[A-Za-z0-9_]*' | sed 's/:func /:/')

fuzz-short:
	@set -e; for t in $(FUZZ_TARGETS); do \
		f=$${t%%:*}; name=$${t##*:}; pkg=./$$(dirname $$f); \
		echo "fuzz $$pkg $$name, $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) $$pkg; \
	done

## fuzz: long fuzz runs (FUZZTIME=20000000x make fuzz)
fuzz: FUZZTIME=2000000x
fuzz: fuzz-short

# The harness's stream and sweep (env or make variables): a year of event
# time for BENCH_CUSTOMERS customers, the share of them who get marketing
# e-mail sized to about BENCH_EVENTS records (a year of 100k customers'
# orders and tickets alone is about 3.5M), one winback-avro run per commit
# interval in BENCH_INTERVALS; BENCH_ARGS adds flags (cd bench && go run . -h),
# e.g. BENCH_ARGS='-max-poll-records 2000000 -clickhouse-batch-rows 1000000'.
BENCH_EVENTS    ?= 4000000
BENCH_CUSTOMERS ?= 100000
BENCH_INTERVALS ?= 100ms,1s,10s
BENCH_ARGS      ?=

## bench: the benchmark harness (winback vs ceiling vs goka vs ClickHouse-only) and micro-benchmarks
## (one package at a time, -p 1, so that two packages' benchmarks do not share the 2 cores; a failing one fails make bench)
bench: deps
	cd bench && $(GO) run . -events $(BENCH_EVENTS) -customers $(BENCH_CUSTOMERS) -commit-intervals $(BENCH_INTERVALS) -out results.json $(BENCH_ARGS)
	set -o pipefail; $(GO) test -p 1 -run '^$$' -bench . -benchmem -count 6 ./pipeline/... ./sinks/... | tee bench/micro.txt
	$(GO) run $(BENCHSTAT) bench/micro.txt > bench/micro.benchstat.txt

# The harness's own tests (a module of its own, so go test ./... above
# does not reach them), then one run at a tiny size so that it cannot rot.
bench-tiny:
	cd bench && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./... && $(GO) test -count=1 ./...
	cd bench && $(GO) run . -events 10000 -customers 300 -commit-intervals 100ms,1s -latency-probes 20 -clickhouse-history 2 -out /tmp/winback-bench-tiny.json -winback-profile-seconds 1

## bench-quick: the harness alone at a small size (about 100k records, 2000 customers, every commit interval), a few minutes; results in /tmp/winback-bench-quick.{json,md}
bench-quick: deps
	cd bench && $(GO) run . -events 100000 -customers 2000 -commit-intervals $(BENCH_INTERVALS) -engine-customers none -restore-large=false -clickhouse-history 2 -latency-probes 40 -out /tmp/winback-bench-quick.json $(BENCH_ARGS)

## bench-bi: every BI view on 10M customers / 100M daily rows generated inside ClickHouse, 2 GiB per query (docs/scaling.md); not in make test
BI_CUSTOMERS ?= 10000000
BI_DAILY ?= 100000000
bench-bi: deps
	CUSTOMERS=$(BI_CUSTOMERS) DAILY=$(BI_DAILY) bash scripts/bench-bi.sh

## soak: issue 23's acceptance kill loop (2 instances × 20 SIGKILLs, and 3 instances with 2 killed at once; SOAK_SEEDS seeds each),
## then make test's kill -9, liveness and ClickHouse-equals-Kafka fault loops at their long sizes (the SOAK_* variables below)
SOAK_SEEDS ?= 10
# make test runs TestKillNine on 300 customers with 10 kills, TestLivenessKillLoop
# on 500 customers and TestClickHouseEqualsKafkaUnderFaults on 300k events.
SOAK_KILL_CUSTOMERS ?= 1200
SOAK_KILL_ROUNDS ?= 40
SOAK_LIVENESS_CUSTOMERS ?= 1000
SOAK_FAULTS_EVENTS ?= 1000000
soak: deps
	WINBACK_SOAK_SEEDS=$(SOAK_SEEDS) $(GO) test -tags soak -count=1 -timeout 180m -run '^TestLivenessSoak$$' -v ./cmd/winback
	WINBACK_KILL_CUSTOMERS=$(SOAK_KILL_CUSTOMERS) WINBACK_KILL_ROUNDS=$(SOAK_KILL_ROUNDS) \
	WINBACK_LIVENESS_CUSTOMERS=$(SOAK_LIVENESS_CUSTOMERS) WINBACK_FAULTS_EVENTS=$(SOAK_FAULTS_EVENTS) \
		$(GO) test -count=1 -timeout 60m -run '^(TestKillNine|TestLivenessKillLoop|TestClickHouseEqualsKafkaUnderFaults)$$' -v ./cmd/winback

clean:
	rm -rf bin .cache
