package clickhouse

import (
	"io/fs"
	"testing"
	"testing/fstest"
	"time"

	"github.com/winback/winback/schemas"
	"github.com/winback/winback/sinks/clickhouse/internal/chsql"
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

// TestIncrementalityUpgrade: an installation that had the data before
// migration 090 gets the same outcome rows from it: the fixture is written
// with the migrations up to 073, 090 fills trigger_outcome_state from
// customer_history_state and winback_triggers, and a replay of half the
// triggers written after it (later emitted_at) reaches it through the
// materialized view; the view keeps the latest copy of each.
func TestIncrementalityUpgrade(t *testing.T) {
	fx, err := chtest.Load("testdata/incrementality.txt")
	if err != nil {
		t.Fatal(err)
	}
	ch := testenv.NewClickHouse(t)
	s, _ := openSink(t, ch, Config{ActiveDays: fx.ActiveDays, Now: newClock(clock).now})
	ctx := testCtx(t, time.Minute)
	before := fstest.MapFS{}
	all := schemas.ClickHouseMigrations()
	names, err := fs.Glob(all, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if n < "090" {
			b, _ := fs.ReadFile(all, n)
			before[n] = &fstest.MapFile{Data: b}
		}
	}
	if _, err := chsql.Apply(ctx, executor{s.conn}, before, s.migrationParams(), nil); err != nil {
		t.Fatal(err)
	}
	writeFixture(t, s, fx, 3)
	ran, err := chsql.Apply(ctx, executor{s.conn}, all, s.migrationParams(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ran) < 2 || ran[0] != "090_trigger_outcome_state.sql" {
		t.Fatalf("the upgrade ran %v, want 090 first", ran)
	}
	if n := count(t, s, "SELECT count() FROM "+s.cfg.Database+".trigger_outcome_state"); n == 0 {
		t.Fatal("090 filled no trigger_outcome_state rows from the data before it")
	}
	// Every other trigger replayed after the upgrade: the others and
	// every day are in trigger_outcome_state only through 090's fill.
	for i := 0; i < len(fx.Triggers); i += 2 {
		tr := fx.Triggers[i]
		tr.EmittedAt += 1000
		s.AddTrigger(&tr)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, e := range fx.Expects {
		t.Run(e.Name, func(t *testing.T) {
			if err := chtest.Compare(query(t, s, e.SQL(s.cfg.Database)), e.Rows); err != nil {
				t.Errorf("testdata/incrementality.txt:%d: %s", e.Line, err)
			}
		})
	}
}
