// Command bench measures winback side by side with a ceiling and two peers,
// in one run and on one generated stream:
//
//	ceiling        a franz-go group consumer that reads and discards everything
//	goka-memory    goka v1.1.12 doing the same per-customer aggregation, memory storage
//	goka-leveldb   the same with LevelDB storage (goka's default)
//	clickhouse     the ClickHouse-only way: insert raw events, and one SQL query every minute
//	winback        the real pipeline (`winback run`), exactly-once, on the JSON stream
//	winback-avro   the same on an Avro copy of the stream (Confluent framed), once per commit interval
//
// plus winback's restore time, trigger latency, and the lapse engine's heap
// per tracked customer. See README.md for what each figure means.
//
// The Kafka broker (kfake, with a data directory) and the schema registry
// (srfake) run in a child process ("bench broker"), and each contender runs
// in a child process of its own ("bench contender NAME"), so that the CPU
// time reported for a contender is its own (getrusage of the child).
//
//	cd bench && go run . -events 4000000 -customers 100000 -commit-intervals 100ms,1s,10s -out results.json
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	level := slog.LevelInfo
	if os.Getenv("BENCH_DEBUG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	var err error
	switch {
	case len(os.Args) > 1 && os.Args[1] == "broker":
		err = runBroker(ctx, os.Args[2:], log)
	case len(os.Args) > 1 && os.Args[1] == "contender":
		err = runContender(ctx, os.Args[2:], log)
	default:
		err = runBench(ctx, os.Args[1:], log)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
