package chtest

import (
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/sinks/clickhouse/internal/chsql"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

var t0 = time.Date(2024, 1, 5, 10, 0, 0, 0, time.UTC)

// TestValuesSQL renders a small batch of every table as the chDB test
// inserts it (testdata/values.golden; go test -update rewrites it).
func TestValuesSQL(t *testing.T) {
	b := chsql.NewBatch(4)
	a := &event.Aggregate{
		CustomerID: "c'1", Version: 7, AsOf: t0.UnixMilli(), FirstOrderAt: t0.Add(-48 * time.Hour).UnixMilli(), LastOrderAt: t0.UnixMilli(),
		OrdersTotal: 2, SpendTotal: 12.5, Orders30d: 1, Spend30d: 10.25, BaselineSource: "personal", UsualIntervalDays: 2,
		EmailsDelivered30d: 3, EmailsOpened30d: 1, OpenRate30d: 1.0 / 3, Unsubscribed: true,
		LastCSAT: 4, LastNPS: event.NoScore, ValueTier: event.TierHigh, CLV: 321.5, RiskScore: 0.25, PLapse: 0.4375,
		ActiveReasons: []event.Reason{event.ReasonSpendDecline, event.ReasonEngagementDecline},
		LastTriggerID: "tr-1", LastTriggerReason: event.ReasonSpendDecline, LastTriggerAt: t0.Add(-time.Hour).UnixMilli(),
	}
	b.AddAggregate(a)
	b.AddTrigger(&event.Trigger{
		TriggerID: "tr-1", CustomerID: "c'1", Kind: event.TriggerWinback, Reasons: a.ActiveReasons, PrimaryReason: event.ReasonSpendDecline,
		RiskScore: 0.25, ValueTier: event.TierHigh, Priority: 80, RecommendedAction: event.ActionWinbackOffer,
		Evidence: map[string]float64{"spend_90d": 10.25, "days_since_last_order": 0}, AsOf: t0.UnixMilli(), EmittedAt: t0.Add(time.Second).UnixMilli(),
	})
	b.AddDeadLetter(&event.DeadLetter{Topic: "orders", Partition: 1, Offset: 2, Key: []byte("k"), Reason: "json.invalid",
		Detail: "bad\tjson\n", Size: 9, Sample: []byte("{\"x\":\\"), At: t0.UnixMilli()})
	var out strings.Builder
	for _, tb := range b.Build(t0.Add(time.Hour), true) {
		out.WriteString(ValuesSQL(tb, "winback", tb.Settings()))
		out.WriteString(";\n")
	}
	const golden = "testdata/values.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != string(want) {
		t.Errorf("got:\n%s\nwant (%s):\n%s", out.String(), golden, want)
	}
}
