package main

import (
	"context"
	"testing"
	"time"

	"github.com/winback/winback/config"
	"github.com/winback/winback/gen"
	"github.com/winback/winback/testenv"
)

// TestBrokerRestart stops the Kafka broker (kfake with a DataDir) while
// the pipeline runs and starts it again on the same port: the pipeline
// reconnects on its own and every aggregate arrives, none lost, none twice.
func TestBrokerRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := config.Default()
	tp := cfg.Topics
	opts := testenv.KafkaOptions{
		Addr:            freeAddr(t),
		DataDir:         t.TempDir(),
		SyncWrites:      true,
		Partitions:      3,
		Topics:          []string{tp.Orders, tp.Email, tp.Support, tp.Triggers, tp.DLQ},
		CompactedTopics: []string{tp.State},
	}
	k, err := testenv.StartKafka(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{k: k, reg: testenv.NewRegistry(t), ch: testenv.NewClickHouse(t)}
	cfg.Kafka.Brokers = []string{k.Addr()}
	cfg.Kafka.SessionTimeout = 6 * time.Second
	cfg.Registry.URL = s.reg.URL()
	cfg.ClickHouse.DSN = s.ch.DSN()
	cfg.ClickHouse.Database = "wb_broker_restart"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.CommitInterval = 200 * time.Millisecond
	cfg.LogFormat, cfg.LogLevel = "text", "warn"
	s.cfg = cfg

	o := genOptions{customers: 600, days: 300, seed: 9, encoding: "json"}
	gcfg, err := o.config()
	if err != nil {
		t.Fatal(err)
	}
	g, err := gen.New(gcfg)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := independentPass(t, g)
	if _, err := produceTraffic(ctx, &s.cfg, &o, testenv.TestLogger(t), nil); err != nil {
		t.Fatal(err)
	}

	s.serveInProcess(t, s.cfg)
	time.Sleep(time.Second)
	if behind(t, s.cfg) == 0 {
		t.Fatal("the pipeline caught up before the broker stopped; the test proves nothing")
	}
	k.Close()
	t.Log("broker stopped")
	time.Sleep(5 * time.Second)
	if k, err = testenv.StartKafka(ctx, opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	t.Log("broker restarted")

	waitCaughtUp(t, s.cfg.Kafka.Brokers, s.cfg.Kafka.Group, 2*time.Minute, inputs(s.cfg)...)
	checkAggregates(t, openCH(t, s.cfg.ClickHouse.DSN), s.cfg.ClickHouse.Database, want)
}
