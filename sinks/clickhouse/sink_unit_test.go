package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/sinks/clickhouse/internal/chsql"
)

// offlineSink is a sink whose connection points at a port nobody listens
// on, for what does not need a server.
func offlineSink(t testing.TB, cfg Config) *Sink {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	cfg.defaults()
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Sink{cfg: cfg, log: slog.New(slog.DiscardHandler), conn: conn, m: m,
		pending: chsql.NewBatch(cfg.DLQSampleBytes)}
}

// TestNeedsFlush: a batch is full at BatchRows rows, counted after the
// batch keeps only the latest version of a customer-day; Add counts like
// the single-row adds.
func TestNeedsFlush(t *testing.T) {
	s := offlineSink(t, Config{BatchRows: 3})
	if s.NeedsFlush(0) {
		t.Error("nothing pending, yet NeedsFlush")
	}
	if !s.NeedsFlush(3) {
		t.Error("3 rows held by the caller, yet no NeedsFlush")
	}
	s.AddAggregate(agg("a", 1, jan5, 1, 1)) // 1 row (customer_daily is fed by its view)
	s.AddAggregate(agg("a", 2, jan5, 1, 1)) // same customer-day: still 1 row
	if s.Pending() != 1 || s.NeedsFlush(0) {
		t.Errorf("Pending %d, NeedsFlush %v", s.Pending(), s.NeedsFlush(0))
	}
	s.Add(&event.Rows{Aggregates: []event.Aggregate{*agg("b", 1, jan6, 1, 1)}})
	if s.NeedsFlush(0) {
		t.Error("2 of 3 rows, yet NeedsFlush")
	}
	s.Add(&event.Rows{Triggers: []event.Trigger{{TriggerID: "t", CustomerID: "b"}}})
	if !s.NeedsFlush(0) || !s.NeedsFlush(1) {
		t.Error("3 rows pending, yet no NeedsFlush")
	}
	if got := value(s.m.pending); got != 3 {
		t.Errorf("pending_rows = %v, want 3", got)
	}
}

// TestFlushGivesUp: when ctx ends while ClickHouse is unreachable, Flush
// returns ctx's error and keeps the rows, merged with those added since.
func TestFlushGivesUp(t *testing.T) {
	s := offlineSink(t, Config{MaxRetryBackoff: 50 * time.Millisecond})
	s.AddAggregate(agg("a", 2, jan5, 1, 1))
	s.AddTrigger(&event.Trigger{TriggerID: "t", CustomerID: "a"})
	ctx, cancel := context.WithTimeout(t.Context(), 600*time.Millisecond)
	defer cancel()
	err := s.Flush(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Flush: %v, want DeadlineExceeded", err)
	}
	var op *net.OpError
	if !errors.As(err, &op) {
		t.Errorf("Flush error %v does not wrap the insert error", err)
	}
	if value(s.m.retries) < 2 || value(s.m.errors.WithLabelValues(chsql.TableAggregates)) < 3 {
		t.Errorf("retries %v, errors %v", value(s.m.retries), value(s.m.errors.WithLabelValues(chsql.TableAggregates)))
	}
	if s.Pending() != 2 {
		t.Fatalf("Pending = %d after a failed Flush, want 2", s.Pending())
	}
	s.AddAggregate(agg("a", 1, jan5, 1, 1)) // older than the failed row
	s.AddAggregate(agg("b", 1, jan5, 1, 1))
	s.mu.Lock()
	tables := s.pending.Build(clock, false)
	s.mu.Unlock()
	if got := fmt.Sprint(tables[0].Columns[0].Values, tables[0].Columns[1].Values); got != "[a b] [2 1]" {
		t.Errorf("pending aggregates %s, want a@2 and b@1", got)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := t.Context()
	for _, cfg := range []Config{
		{DSN: "clickhouse://127.0.0.1:9000/default", Database: "bad-name"},
		{DSN: "http://127.0.0.1:8123/default"},
		{DSN: "::::"},
	} {
		if _, err := Open(ctx, cfg, nil, nil); err == nil {
			t.Errorf("Open(%+v): no error", cfg)
		}
	}
	if got := redact("clickhouse://user:secret@host:9000/db"); got != "clickhouse://user:***@host:9000/db" {
		t.Errorf("redact: %s", got)
	}
	if got := redact("clickhouse://host:9000/db?username=u&password=secret"); got != "clickhouse://host:9000/db?username=u&password=***" {
		t.Errorf("redact: %s", got)
	}
}
