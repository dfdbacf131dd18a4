package clickhouse

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/sinks/clickhouse/internal/chtest"
	"github.com/winback/winback/testenv"
)

// views lists the views of s's database.
func views(t *testing.T, s *Sink) []string {
	t.Helper()
	var out []string
	for _, r := range query(t, s, "SELECT name FROM system.tables WHERE database = '"+s.cfg.Database+"' AND engine = 'View' ORDER BY name") {
		out = append(out, r[0])
	}
	return out
}

// sortedRows is every row of q, each as one tab-joined line, sorted.
func sortedRows(t *testing.T, s *Sink, q string) []string {
	t.Helper()
	var out []string
	for _, r := range query(t, s, q) {
		out = append(out, strings.Join(r, "\t"))
	}
	slices.Sort(out)
	return out
}

// TestDailyHistoryIndependentOfSpeed writes the same generated history
// into three databases: as live traffic (rows taken after every event), as
// a backfill (rows taken once, after the whole history) with
// lapse.Engine.KeepDays, and as a backfill without it. customer_daily and
// every view built on it must be identical for the first two: the figures
// of a replayed history are the live ones. The third shows what the test
// guards against: a backfill that keeps only a row per customer per batch.
func TestDailyHistoryIndependentOfSpeed(t *testing.T) {
	const customers, days = 40, 200
	live := chtest.History(customers, days, 1, true)
	backfill := chtest.History(customers, days, 1<<30, true)
	lossy := chtest.History(customers, days, 1<<30, false)
	ch := testenv.NewClickHouse(t)
	clk := newClock(time.Date(2025, 8, 1, 0, 0, 0, 0, time.UTC))
	write := func(rows []event.Aggregate) *Sink {
		s := migratedSink(t, ch, Config{Now: clk.now})
		ctx := testCtx(t, 2*time.Minute)
		for i := range rows {
			s.AddAggregate(&rows[i])
			if (i+1)%5000 == 0 {
				if err := s.Flush(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b, c := write(live), write(backfill), write(lossy)

	daily := func(s *Sink) []string {
		return sortedRows(t, s, "SELECT * FROM "+s.cfg.Database+".customer_daily FINAL")
	}
	want := daily(a)
	if len(want) < customers*30 {
		t.Fatalf("only %d customer-days live: the history is too thin", len(want))
	}
	if got := daily(b); !slices.Equal(got, want) {
		t.Errorf("customer_daily: backfill %d rows, live %d; first difference: %s", len(got), len(want), firstDiff(got, want))
	}
	vs := views(t, a)
	if len(vs) < 10 {
		t.Fatalf("only %d views: %v", len(vs), vs)
	}
	for _, v := range vs {
		q := func(s *Sink) string { return "SELECT * FROM " + s.cfg.Database + "." + v }
		if got, want := sortedRows(t, b, q(b)), sortedRows(t, a, q(a)); !slices.Equal(got, want) {
			t.Errorf("%s: backfill differs from live: %s", v, firstDiff(got, want))
		}
	}
	if n := len(daily(c)); n >= len(want) {
		t.Errorf("a backfill without KeepDays has %d customer-days, live %d: the test cannot see the loss", n, len(want))
	} else {
		t.Logf("customer-days: live %d, backfill %d, backfill without KeepDays %d", len(want), len(daily(b)), n)
	}
	differs := 0
	for _, v := range []string{"retention_monthly", "kpi_monthly", "retention_weekly", "kpi_weekly"} {
		q := func(s *Sink) string { return "SELECT * FROM " + s.cfg.Database + "." + v }
		if !slices.Equal(sortedRows(t, c, q(c)), sortedRows(t, a, q(a))) {
			differs++
		}
	}
	if differs == 0 {
		t.Error("without KeepDays the retention and KPI views still equal live ones: the history does not exercise them")
	}
}

func firstDiff(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return "\n got " + got[i] + "\nwant " + want[i]
		}
	}
	if len(got) != len(want) {
		return "lengths differ"
	}
	return "none"
}
