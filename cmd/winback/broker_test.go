package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/winback/winback/testenv"
)

// TestBrokerRestart stops the Kafka broker (kfake with a DataDir) while
// the pipeline runs and starts it again on the same port: the pipeline
// reconnects on its own and every aggregate arrives, none lost, none twice.
func TestBrokerRestart(t *testing.T) {
	lap := stopwatch(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opts := stackKafka(3)
	opts.Addr, opts.DataDir, opts.SyncWrites = freeAddr(t), t.TempDir(), true
	s := newStackWith(t, opts)
	// 300 customers (68k records): the broker stops after the first
	// commit, long before the end of the stream.
	o := genOptions{customers: 300, days: 300, seed: 9, encoding: "json"}
	_, want, _ := independentPass(t, o)
	if _, err := produceTraffic(ctx, &s.cfg, &o, testenv.TestLogger(t), nil); err != nil {
		t.Fatal(err)
	}
	lap("stream produced")

	// Transactions of at most 2000 records: the broker stops after the
	// first commit, in the middle of the stream.
	s.cfg.MaxPollRecords = 2000
	_, reg, stop := s.serveStoppable(t, s.cfg)
	committed := waitProgress(t, s.cfg, 0, time.Minute)
	if behind(t, s.cfg) == 0 {
		t.Fatal("the pipeline caught up before the broker stopped; the test proves nothing")
	}
	s.k.Close()
	t.Log("broker stopped")
	time.Sleep(5 * time.Second)
	k, err := testenv.StartKafka(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	t.Cleanup(stop) // cleanups run last first: the pipeline stops before the broker closes
	lap(fmt.Sprintf("broker restarted, %d input records committed before it stopped", committed))

	waitCaughtUp(t, s.cfg.Kafka.Brokers, s.cfg.Kafka.Group, 2*time.Minute, inputs(s.cfg)...)
	waitConfirmed(t, reg)
	lap("caught up")
	checkAggregates(t, openCH(t, s.cfg.ClickHouse.DSN), s.cfg.ClickHouse.Database, want)
}
