package testenv

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// NewClickHouse starts a ClickHouse server for a test (or uses
// CLICKHOUSE_DSN) and stops it when the test ends. It fails the test, with
// the command that installs ClickHouse, if it cannot.
func NewClickHouse(t testing.TB) *ClickHouse {
	t.Helper()
	// Installing with apt-get (first run on a fresh machine) takes longer
	// than starting.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	ch, err := StartClickHouse(ctx, ClickHouseOptions{Logger: TestLogger(t)})
	if err != nil {
		t.Fatalf("testenv: ClickHouse: %v\n(needs clickhouse-server; install with: %s; or set %s)", err, InstallHint, EnvClickHouseDSN)
	}
	t.Cleanup(ch.Close)
	return ch
}

// NewKafka starts an in-memory one-broker kfake cluster on a free port with
// the given topics (6 partitions each) and closes it when the test ends.
func NewKafka(t testing.TB, topics ...string) *Kafka {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	k, err := StartKafka(ctx, KafkaOptions{Topics: topics, Logger: TestLogger(t)})
	if err != nil {
		t.Fatalf("testenv: Kafka: %v", err)
	}
	t.Cleanup(k.Close)
	return k
}

// NewRegistry serves a fresh srfake schema registry on a free port and
// closes it when the test ends.
func NewRegistry(t testing.TB) *Registry {
	t.Helper()
	r, err := StartRegistry("")
	if err != nil {
		t.Fatalf("testenv: schema registry: %v", err)
	}
	t.Cleanup(r.Close)
	return r
}

// TestLogger is a slog.Logger at warning level that writes to the test's
// output until the test's cleanups have run, and drops lines after that (a
// late line from a background goroutine must not fail the test run).
func TestLogger(t testing.TB) *slog.Logger {
	w := &tbWriter{tb: t}
	// Cleanups run last-in first-out: those registered after this one
	// (the helpers' Close) still log to the test.
	t.Cleanup(w.stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tbWriter struct {
	mu   sync.Mutex
	tb   testing.TB
	done bool
}

func (w *tbWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return len(p), nil
	}
	return w.tb.Output().Write(p)
}

func (w *tbWriter) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
}

// NewClickHouseCluster starts a cluster of clickhouse-server children for a
// test (StartClickHouseCluster) and closes it when the test ends.
func NewClickHouseCluster(t testing.TB, o ClusterOptions) *ClickHouseCluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if o.Logger == nil {
		o.Logger = TestLogger(t)
	}
	c, err := StartClickHouseCluster(ctx, o)
	if err != nil {
		t.Fatalf("testenv: ClickHouse cluster: %v\n(needs clickhouse-server: %s; and for ZooKeeper: %s)", err, InstallHint, ZooKeeperHint)
	}
	t.Cleanup(c.Close)
	return c
}
