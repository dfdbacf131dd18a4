package chdbtest

import (
	"slices"
	"strings"
	"testing"

	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/sinks/clickhouse/internal/chsql"
	"github.com/winback/winback/sinks/clickhouse/internal/chtest"
)

// TestDailyHistoryModern is the modern engine's half of the sink's
// TestDailyHistoryIndependentOfSpeed: a generated history written as live
// traffic and as a backfill (with lapse.Engine.KeepDays) gives the same
// customer_daily and the same views; without KeepDays the backfill loses
// customer-days.
func TestDailyHistoryModern(t *testing.T) {
	const customers, days = 40, 200
	features := chsql.FeaturesOf(engineVersion(t))
	write := func(rows []event.Aggregate) chsql.Params {
		p := migrate(t, 90, features)
		w := newWriter(t, p)
		for i := range rows {
			w.b.AddAggregate(&rows[i])
			if (i+1)%5000 == 0 {
				w.flush()
			}
		}
		w.flush()
		return p
	}
	a := write(chtest.History(customers, days, 1, true))
	b := write(chtest.History(customers, days, 1<<30, true))
	c := write(chtest.History(customers, days, 1<<30, false))
	rows := func(q string) []string {
		var out []string
		for _, r := range query(t, q) {
			out = append(out, strings.Join(r, "\t"))
		}
		slices.Sort(out)
		return out
	}
	daily := func(p chsql.Params) []string { return rows("SELECT * FROM " + p.Database + ".customer_daily FINAL") }
	want := daily(a)
	if len(want) < customers*30 {
		t.Fatalf("only %d customer-days live", len(want))
	}
	if got := daily(b); !slices.Equal(got, want) {
		t.Errorf("customer_daily: backfill %d rows, live %d", len(got), len(want))
	}
	var vs []string
	for _, r := range query(t, "SELECT name FROM system.tables WHERE database = '"+a.Database+"' AND engine = 'View' ORDER BY name") {
		vs = append(vs, r[0])
	}
	if len(vs) < 10 {
		t.Fatalf("only %d views: %v", len(vs), vs)
	}
	for _, v := range vs {
		if got, want := rows("SELECT * FROM "+b.Database+"."+v), rows("SELECT * FROM "+a.Database+"."+v); !slices.Equal(got, want) {
			t.Errorf("%s: backfill (%d rows) differs from live (%d rows)", v, len(got), len(want))
		}
	}
	if n := len(daily(c)); n >= len(want) {
		t.Errorf("without KeepDays %d customer-days, live %d: the loss is not seen", n, len(want))
	}
}
