package clickhouse

import (
	"slices"
	"testing"
	"time"

	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/sinks/clickhouse/internal/chtest"
	"github.com/winback/winback/testenv"
)

// TestViews writes the hand-checked dataset (testdata/views.txt) through
// the sink, twice and with stale versions in between so that unmerged
// duplicates exist, and checks every view against the numbers worked out
// by hand in the file (and the weekly views against a Go oracle).
func TestViews(t *testing.T) {
	fx, err := chtest.Load("testdata/views.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(fx.Expects) < 8 {
		t.Fatalf("only %d expectations in the fixture", len(fx.Expects))
	}
	ch := testenv.NewClickHouse(t)
	s := migratedSink(t, ch, Config{ActiveDays: fx.ActiveDays, Now: newClock(clock).now})
	// Keep the duplicates unmerged, so that a view without FINAL counts
	// them and fails.
	for _, table := range tableNames {
		exec(t, s, "SYSTEM STOP MERGES "+s.cfg.Database+"."+table)
	}
	writeStream(t, s, fx)
	if n, final := count(t, s, "SELECT count() FROM "+s.cfg.Database+".customer_aggregates"),
		count(t, s, "SELECT count() FROM "+s.cfg.Database+".customer_aggregates FINAL"); n <= final {
		t.Fatalf("customer_aggregates: %d rows, %d under FINAL: no duplicates to resist", n, final)
	}

	for _, e := range fx.Expects {
		t.Run(e.Name, func(t *testing.T) {
			if err := chtest.Compare(query(t, s, e.SQL(s.cfg.Database)), e.Rows); err != nil {
				t.Errorf("testdata/views.txt:%d: %s", e.Line, err)
			}
		})
	}
	t.Run("weekly", func(t *testing.T) {
		retention, kpi := fx.Weekly()
		if len(retention) < 15 {
			t.Fatalf("oracle has %d weeks", len(retention))
		}
		if err := chtest.Compare(query(t, s, chtest.Expect{Query: chtest.WeeklyRetentionQuery}.SQL(s.cfg.Database)), retention); err != nil {
			t.Errorf("retention_weekly: %v", err)
		}
		if err := chtest.Compare(query(t, s, chtest.Expect{Query: chtest.WeeklyKPIQuery}.SQL(s.cfg.Database)), kpi); err != nil {
			t.Errorf("kpi_weekly: %v", err)
		}
	})
	// Every example query in docs/clickhouse.md runs.
	t.Run("docs", func(t *testing.T) {
		qs, err := chtest.DocQueries("../../docs/clickhouse.md", s.cfg.Database)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			query(t, s, q)
		}
	})
	// The end of one month is the start of the next.
	t.Run("continuity", func(t *testing.T) {
		rows := query(t, s, "SELECT customers_start, customers_end FROM "+s.cfg.Database+".retention_monthly ORDER BY period_start")
		for i := 1; i < len(rows); i++ {
			if rows[i][0] != rows[i-1][1] {
				t.Errorf("month %d starts with %s active, month %d ended with %s", i+1, rows[i][0], i, rows[i-1][1])
			}
		}
	})
}

// TestViewsRunningPeriod: while a month is not over, its end is the latest
// event-time day and is_complete is 0.
func TestViewsRunningPeriod(t *testing.T) {
	ch := testenv.NewClickHouse(t)
	s := migratedSink(t, ch, Config{ActiveDays: 10})
	ctx := testCtx(t, time.Minute)
	day := func(d int) int64 { return time.Date(2024, 5, d, 12, 0, 0, 0, time.UTC).UnixMilli() }
	for i, a := range []event.Aggregate{
		{CustomerID: "a", Version: 1, AsOf: day(1), FirstOrderAt: day(1), LastOrderAt: day(1), OrdersTotal: 1, SpendTotal: 10},
		{CustomerID: "b", Version: 1, AsOf: day(3), FirstOrderAt: day(3), LastOrderAt: day(3), OrdersTotal: 1, SpendTotal: 20},
		{CustomerID: "b", Version: 2, AsOf: day(14), FirstOrderAt: day(3), LastOrderAt: day(3), OrdersTotal: 1, SpendTotal: 20},
	} {
		a.LastCSAT, a.LastNPS = event.NoScore, event.NoScore
		s.AddAggregate(&a)
		_ = i
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// as_of_day is May 14: active at May 15 means an order on May 5..14:
	// nobody (a ordered May 1, b May 3).
	got := query(t, s, "SELECT period_start, period_end, is_complete, customers_start, customers_end, customers_new FROM "+s.cfg.Database+".retention_monthly")
	if err := chtest.Compare(got, [][]string{{"2024-05-01", "2024-06-01", "0", "0", "0", "2"}}); err != nil {
		t.Fatal(err)
	}
}

// writeStream writes the views fixture as TestViews and the cluster test
// read it: in batches
// of four, then a replay in reverse (every older version after a newer
// one), the triggers again with a later emitted_at, and stale versions
// alone in a batch, so that unmerged duplicates exist everywhere.
func writeStream(t *testing.T, s *Sink, fx *chtest.Fixture) {
	t.Helper()
	ctx := testCtx(t, time.Minute)
	writeFixture(t, s, fx, 4)
	rev := slices.Clone(fx.Aggregates)
	slices.Reverse(rev)
	for i := range rev {
		s.AddAggregate(&rev[i])
	}
	for i := range fx.Triggers {
		tr := fx.Triggers[i]
		tr.EmittedAt += 1000
		s.AddTrigger(&tr)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range fx.Aggregates {
		if a := fx.Aggregates[i]; a.Version == 1 {
			s.AddAggregate(&a)
		}
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}
