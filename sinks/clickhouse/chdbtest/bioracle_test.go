package chdbtest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/winback/winback/gen"
	"github.com/winback/winback/internal/bioracle"
	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/lapse"
	"github.com/winback/winback/sinks/clickhouse/internal/chsql"
)

// TestBIOracleModern is the modern engine's half of cmd/winback's
// TestBIOracle: the generator's year (the same configuration) through a
// lapse.Engine the way the runner drives it (Advance, TakeClosedDays,
// TakeDirty after each batch), written to chDB as a backfill (one batch),
// in 10 slices and live (a batch every 50 events; also with each tenth's
// orders applied after its other events), and as a backfill with
// active_days 30 rather than 90, and every retention
// and KPI view compared with bioracle's figures from the events alone, and
// winback_funnel with the funnel of the engine's triggers.
func TestBIOracleModern(t *testing.T) {
	g, err := gen.New(gen.Config{Customers: 300, Days: 365, Start: time.Date(2025, 11, 30, 0, 0, 0, 0, time.UTC), Seed: 18})
	if err != nil {
		t.Fatal(err)
	}
	orc, orc30 := bioracle.New(90), bioracle.New(30)
	var evs []event.Event
	if err := g.Each(func(r *gen.Record) error {
		if r.Malformed == nil {
			evs = append(evs, r.Event)
			orc.Add(&r.Event)
			orc30.Add(&r.Event)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if months := len(orc.Retention(bioracle.Monthly).Rows); months < 12 {
		t.Fatalf("the oracle sees %d months", months)
	}
	if fmt.Sprint(orc.Retention(bioracle.Monthly).Rows[3:]) == fmt.Sprint(orc30.Retention(bioracle.Monthly).Rows[3:]) {
		t.Fatal("active_days 30 and 90 give the same retention: the second case proves nothing")
	}
	features := chsql.FeaturesOf(engineVersion(t))
	for _, c := range []struct {
		name  string
		batch int
		orc   *bioracle.Oracle
		days  int // clickhouse.active_days
		// ahead: the e-mail and support events of each tenth of the
		// year are applied before its orders (an input running ahead)
		ahead bool
	}{
		{"backfill", len(evs), orc, 90, false},
		{"10 slices", len(evs)/10 + 1, orc, 90, false},
		{"live", 50, orc, 90, false},
		{"live, orders behind the other inputs", 50, orc, 90, true},
		{"backfill, active_days 30", len(evs), orc30, 30, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := migrate(t, c.days, features)
			w := newWriter(t, p)
			rows := 0
			add := func(a *event.Aggregate) {
				w.b.AddAggregate(a)
				if rows++; rows%20000 == 0 {
					w.flush()
				}
			}
			var trigs []bioracle.Trigger
			in := evs
			if c.ahead {
				in = ordersBehind(evs, 10)
			}
			for _, tr := range engineRows(in, c.batch, add) {
				w.b.AddTrigger(&tr)
				trigs = append(trigs, bioracle.Trigger{ID: tr.TriggerID, Kind: string(tr.Kind), Reason: string(tr.PrimaryReason),
					Action: string(tr.RecommendedAction), Treatment: string(tr.Treatment), Original: tr.OriginalTriggerID, AsOf: tr.AsOf, Revenue: tr.Evidence["revenue"]})
			}
			w.flush()
			funnel, err := bioracle.Funnel(trigs)
			if err != nil {
				t.Fatal(err)
			}
			if slices.IndexFunc(trigs, func(tr bioracle.Trigger) bool { return tr.Kind == "RECOVERED" }) < 0 {
				t.Fatalf("%d triggers, none RECOVERED: the funnel is not exercised", len(trigs))
			}
			for _, v := range append(c.orc.Views(), funnel) {
				if err := bioracle.Compare(rowsOf(query(t, v.Query(p.Database))), v.Rows); err != nil {
					t.Errorf("%s: %v", v.Name, err)
				}
			}
		})
	}
}

// ordersBehind returns evs with the orders of each of n slices moved
// behind the slice's other events.
func ordersBehind(evs []event.Event, n int) []event.Event {
	out := make([]event.Event, 0, len(evs))
	for i := range n {
		part := evs[i*len(evs)/n : (i+1)*len(evs)/n]
		for _, orders := range []bool{false, true} {
			for _, ev := range part {
				if (ev.Kind == event.KindOrder) == orders {
					out = append(out, ev)
				}
			}
		}
	}
	return out
}

// engineRows applies evs to one lapse.Engine as the runner does, taking the
// ClickHouse rows after every batch events, and returns the triggers.
func engineRows(evs []event.Event, batch int, fn func(a *event.Aggregate)) []event.Trigger {
	var trigs []event.Trigger
	cfg := lapse.DefaultConfig()
	cfg.IdleTimeout = 0 // event time only
	wall := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	at := func(i int) time.Time { return wall.Add(time.Duration(i) * time.Millisecond) }
	e := lapse.NewEngine(cfg, 3, at(0))
	e.KeepDays()
	take := func(i int) {
		trigs = e.Advance(trigs, at(i))
		e.TakeClosedDays(fn)
		e.TakeDirty(func(c *lapse.Customer) {
			a := c.Aggregate(e)
			fn(&a)
		})
	}
	src := map[event.Kind]int{event.KindOrder: lapse.SourceOrders, event.KindEmail: lapse.SourceEmail, event.KindSupport: lapse.SourceSupport}
	for i := range evs {
		trigs, _, _ = e.Apply(trigs, src[evs[i].Kind], &evs[i], at(i))
		if (i+1)%batch == 0 {
			take(i)
		}
	}
	take(len(evs))
	for i := range trigs {
		trigs[i].EmittedAt = at(len(evs)).UnixMilli()
	}
	return trigs
}

func rowsOf(rows [][]string) []bioracle.Row {
	out := make([]bioracle.Row, len(rows))
	for i, r := range rows {
		out[i] = r
	}
	return out
}
