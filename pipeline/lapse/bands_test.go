package lapse_test

import (
	"testing"
	"time"

	"github.com/winback/winback/gen"
	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/lapse"
)

// TestRiskBandsOnGeneratorYear: on the generator's year (the BI oracle's:
// 300 customers, 365 days, seed 18), the risk score puts customers in
// every band of value_risk_matrix, and the share in each is reported.
func TestRiskBandsOnGeneratorYear(t *testing.T) {
	end := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	g, err := gen.New(gen.Config{Customers: 300, Days: 365, Start: end.AddDate(0, 0, -365), Seed: 18})
	if err != nil {
		t.Fatal(err)
	}
	e := lapse.NewEngine(lapse.DefaultConfig(), 3, end.AddDate(0, 0, -365))
	src := map[event.Kind]int{event.KindOrder: lapse.SourceOrders, event.KindEmail: lapse.SourceEmail, event.KindSupport: lapse.SourceSupport}
	if err := g.Each(func(r *gen.Record) error {
		if r.Malformed == nil {
			e.Apply(nil, src[r.Kind], &r.Event, time.UnixMilli(r.Event.Time))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	bands := map[string]int{}
	n := 0
	e.TakeDirty(func(c *lapse.Customer) {
		a := c.Aggregate(e)
		if a.RiskScore < 0 || a.RiskScore > 1 {
			t.Errorf("%s: risk %v outside [0, 1]", a.CustomerID, a.RiskScore)
		}
		bands[event.RiskBand(a.RiskScore)]++
		n++
	})
	if n != 300 {
		t.Fatalf("%d customers, want 300", n)
	}
	for _, b := range []string{"LOW", "MEDIUM", "HIGH"} {
		t.Logf("%-6s %3d customers (%.1f%%)", b, bands[b], 100*float64(bands[b])/float64(n))
		if bands[b] == 0 {
			t.Errorf("risk band %s is empty on the generator's year: %v", b, bands)
		}
	}
}
