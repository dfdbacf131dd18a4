package clickhouse

import (
	"testing"
	"time"

	"github.com/winback/winback/sinks/clickhouse/internal/chtest"
	"github.com/winback/winback/testenv"
)

// TestIncrementality writes the hand-checked dataset of the incrementality
// views (testdata/incrementality.txt) twice, the second time with later
// emitted_at and merges stopped, so that a view reading without FINAL
// would count triggers twice, and checks every expected row.
func TestIncrementality(t *testing.T) {
	fx, err := chtest.Load("testdata/incrementality.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(fx.Expects) < 4 {
		t.Fatalf("only %d expectations", len(fx.Expects))
	}
	ch := testenv.NewClickHouse(t)
	s := migratedSink(t, ch, Config{ActiveDays: fx.ActiveDays, Now: newClock(clock).now})
	ctx := testCtx(t, time.Minute)
	for _, table := range tableNames {
		exec(t, s, "SYSTEM STOP MERGES "+s.cfg.Database+"."+table)
	}
	writeFixture(t, s, fx, 3)
	for i := range fx.Triggers {
		tr := fx.Triggers[i]
		tr.EmittedAt += 1000
		s.AddTrigger(&tr)
	}
	for i := range fx.Aggregates {
		s.AddAggregate(&fx.Aggregates[i])
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n, final := count(t, s, "SELECT count() FROM "+s.cfg.Database+".winback_triggers"),
		count(t, s, "SELECT count() FROM "+s.cfg.Database+".winback_triggers FINAL"); n <= final {
		t.Fatalf("winback_triggers: %d rows, %d under FINAL: no duplicates to resist", n, final)
	}
	for _, e := range fx.Expects {
		t.Run(e.Name, func(t *testing.T) {
			if err := chtest.Compare(query(t, s, e.SQL(s.cfg.Database)), e.Rows); err != nil {
				t.Errorf("testdata/incrementality.txt:%d: %s", e.Line, err)
			}
		})
	}
	// The Grafana dashboard's panels run here and show rows.
	t.Run("grafana", func(t *testing.T) {
		qs, err := chtest.DashboardQueries("../../deploy/grafana/incrementality.json", s.cfg.Database)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			if rows := query(t, s, q); len(rows) == 0 {
				t.Errorf("no rows from\n%s", q)
			}
		}
	})
}
