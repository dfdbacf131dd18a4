package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/winback/winback/testenv"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var dbSeq atomic.Int64

// testDB is a database name of its own for each test, so tests can share
// a CLICKHOUSE_DSN server.
func testDB(t testing.TB) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, t.Name())
	return fmt.Sprintf("wbtest_%s_%d_%d", name, time.Now().UnixNano()%1e6, dbSeq.Add(1))
}

func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// fixedClock is a settable clock for updated_at.
type fixedClock struct{ ns atomic.Int64 }

func newClock(t time.Time) *fixedClock {
	c := &fixedClock{}
	c.set(t)
	return c
}
func (c *fixedClock) set(t time.Time) { c.ns.Store(t.UnixNano()) }
func (c *fixedClock) now() time.Time  { return time.Unix(0, c.ns.Load()).UTC() }

// openSink opens a sink on ch with cfg (DSN filled in, a fresh database
// unless cfg names one) and a registry of its own, closed at cleanup.
func openSink(t testing.TB, ch *testenv.ClickHouse, cfg Config) (*Sink, *prometheus.Registry) {
	t.Helper()
	cfg.DSN = ch.DSN()
	if cfg.Database == "" {
		cfg.Database = testDB(t)
	}
	if cfg.lock.Settle == 0 {
		// One test per database: nobody to wait for. TestMigrateLock
		// sets its own.
		cfg.lock.Settle = 10 * time.Millisecond
	}
	reg := prometheus.NewRegistry()
	s, err := Open(testCtx(t, 30*time.Second), cfg, testenv.TestLogger(t), reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, reg
}

// migratedSink is openSink with the tables and views in place.
func migratedSink(t testing.TB, ch *testenv.ClickHouse, cfg Config) *Sink {
	t.Helper()
	s, _ := openSink(t, ch, cfg)
	if err := s.Migrate(testCtx(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	return s
}

// query returns the rows of q as text.
func query(t testing.TB, s *Sink, q string) [][]string {
	t.Helper()
	rows, err := queryStrings(testCtx(t, 30*time.Second), s.conn, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return rows
}

func exec(t testing.TB, s *Sink, q string) {
	t.Helper()
	if err := s.conn.Exec(testCtx(t, 30*time.Second), q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func count(t testing.TB, s *Sink, q string) int {
	t.Helper()
	rows := query(t, s, q)
	if len(rows) != 1 || len(rows[0]) != 1 {
		t.Fatalf("%s: %v, want one value", q, rows)
	}
	var n int
	if _, err := fmt.Sscan(rows[0][0], &n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func join(rows [][]string) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(strings.Join(r, "\t"))
		b.WriteByte('\n')
	}
	return b.String()
}
