package main

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/winback/winback/testenv"
)

// TestClickHouseOutage stops ClickHouse for 30 s while events flow. The
// pipeline must pause (commit at most one transaction, hold a bounded
// amount of rows)
// rather than drop or buffer without bound, and after the restart every
// aggregate must arrive, exactly once.
func TestClickHouseOutage(t *testing.T) {
	s := newStack(t, 3)
	o := genOptions{customers: 200, days: 150, seed: 5, encoding: "json"}
	_, want, _ := independentPass(t, o)

	// Kafka commits one transaction ahead of ClickHouse (the rows are
	// written after the commit, and the next commit waits for them), so
	// the stream must span several transactions for the pause to show.
	s.cfg.MaxPollRecords = 2000
	_, reg := s.serveInProcess(t, s.cfg)
	if err := s.ch.Kill(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := produceTraffic(ctx, &s.cfg, &o, testenv.TestLogger(t), nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Second)

	if n := behind(t, s.cfg); n == 0 {
		t.Fatal("the group committed everything while ClickHouse was down: it did not pause")
	}
	pending := gauge(t, reg, "winback_clickhouse_pending_rows")
	retries := counter(t, reg, "winback_clickhouse_retries_total")
	if retries == 0 {
		t.Error("no ClickHouse retries while it was down")
	}
	// One transaction's rows at most: MaxPollRecords events, each
	// touching one customer row, one daily row and maybe a trigger or a
	// dead letter.
	if limit := float64(4 * s.cfg.MaxPollRecords); pending > limit {
		t.Errorf("%v rows pending while ClickHouse was down, more than one batch (%v)", pending, limit)
	}
	t.Logf("while down: %v rows pending, %v retries", pending, retries)

	if err := s.ch.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, s.cfg.Kafka.Brokers, s.cfg.Kafka.Group, 2*time.Minute, inputs(s.cfg)...)
	waitConfirmed(t, reg)
	db := openCH(t, s.cfg.ClickHouse.DSN)
	checkAggregates(t, db, s.cfg.ClickHouse.Database, want)
	var dup uint64
	if err := db.QueryRow("SELECT count() - uniqExact(customer_id) FROM " + s.cfg.ClickHouse.Database + ".customer_aggregates FINAL").Scan(&dup); err != nil {
		t.Fatal(err)
	}
	if dup != 0 {
		t.Errorf("%d customers have more than one current row", dup)
	}
}

func gauge(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return sums(fams, name, "")[""]
}

func counter(t *testing.T, g prometheus.Gatherer, name string) float64 { return gauge(t, g, name) }
