package lapse

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/winback/winback/pipeline/event"
)

func TestCustomerJSONAndAggregate(t *testing.T) {
	s := &script{t: t, name: "inline", wall: scriptWallStart, saved: map[string]string{}, evClock: genStart}
	// Without the contact budget, which would hold the lapse back for two
	// weeks after the friction trigger (budget_test.go has that case).
	s.cfgYAML = []string{"lifecycle: {budget_days: 0}"}
	for _, line := range []string{
		"@2026-01-01T10:00Z repeat 8 every 7d order w PLACED 40",
		"@2026-02-20T10:00Z support w OPENED t1 complaint",
		"@2026-02-21T10:00Z email w DELIVERED c1",
		"wall +3m",
		"@2026-03-06T00:00Z tick",
	} {
		s.exec(strings.Fields(line))
	}
	e := s.engine()
	c := e.Customer("w")
	b, err := c.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if m["customer_id"] != "w" || m["pending_timer"] == nil || m["open_episode"] == nil || m["last_trigger"] == nil {
		t.Fatalf("JSON misses fields: %s", b)
	}
	rhythm := m["rhythm"].(map[string]any)
	if rhythm["source"] != "personal" || rhythm["usual_interval_days"].(float64) != 7 {
		t.Fatalf("rhythm = %v", rhythm)
	}
	var reasons []string
	for _, sig := range m["signals"].([]any) {
		reasons = append(reasons, sig.(map[string]any)["reason"].(string))
	}
	if len(reasons) != 2 || reasons[0] != "PURCHASE_LAPSE" || reasons[1] != "SUPPORT_FRICTION" {
		t.Fatalf("signals = %v", reasons)
	}

	a := c.Aggregate(e)
	if a.Version != c.Version() || a.LastTriggerReason != event.ReasonPurchaseLapse || a.LastTriggerID == "" ||
		a.OrdersTotal != 8 || a.TicketsOpen != 1 || a.Complaints90d != 1 || a.EmailsDelivered30d != 1 ||
		a.BaselineSource != "personal" || a.RiskScore <= 0.3 {
		t.Fatalf("aggregate = %+v", a)
	}
	// The aggregate's last trigger is the one sent.
	var lapseID string
	for _, tr := range s.pending {
		if tr.CustomerID == "w" && tr.PrimaryReason == event.ReasonPurchaseLapse {
			lapseID = tr.TriggerID
		}
	}
	if a.LastTriggerID != lapseID {
		t.Fatalf("LastTriggerID %s, sent %s", a.LastTriggerID, lapseID)
	}
	if e.Customer("nobody") != nil {
		t.Fatal("unknown customer found")
	}
}
