package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestKcatOutsideClient runs `winback dev --trigger-format json` as a child
// process and talks to it only with Debian's kcat: metadata, producing JSON
// events, and reading the trigger and a dead letter back.
func TestKcatOutsideClient(t *testing.T) {
	d := startDev(t, "kcat", "--partitions", "1")
	kc := func(stdin string, args ...string) string { t.Helper(); return d.kc(t, stdin, args...) }
	meta := kc("", "-L")
	for _, topic := range []string{"orders", "email-events", "support-events", "winback-triggers", "winback-dlq", "winback-state"} {
		if !strings.Contains(meta, `topic "`+topic+`"`) {
			t.Errorf("kcat -L does not list %s:\n%s", topic, meta)
		}
	}

	// A weekly buyer who stops after eight orders, and another customer
	// whose events, 70 days after the last weekly order, move every
	// input's event time (and so the watermark) past the lapse.
	day0 := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -130)
	at := func(days int) int64 { return day0.AddDate(0, 0, days).UnixMilli() }
	var orders strings.Builder
	for i := range 8 {
		fmt.Fprintf(&orders, `kcat-lapser|{"event_id":"kl-%d","customer_id":"kcat-lapser","event_time":%d,"type":"PLACED","order_id":"kl-o%d","amount":40.0,"currency":"EUR","items":2}`+"\n", i, at(7*i), i)
	}
	fmt.Fprintf(&orders, `kcat-other|{"event_id":"ko-1","customer_id":"kcat-other","event_time":"%s","type":"PLACED","order_id":"ko-o1","amount":25.5,"currency":"GBP","items":1}`+"\n",
		day0.AddDate(0, 0, 120).Format(time.RFC3339))
	orders.WriteString("kcat-bad|this is not json\n")
	kc(orders.String(), "-P", "-t", "orders", "-K", "|")
	kc(fmt.Sprintf(`kcat-other|{"event_id":"ke-1","customer_id":"kcat-other","event_time":%d,"type":"DELIVERED","campaign_id":"cmp-1"}`+"\n", at(120)),
		"-P", "-t", "email-events", "-K", "|")
	kc(fmt.Sprintf(`kcat-other|{"event_id":"ks-1","customer_id":"kcat-other","event_time":%d,"type":"OPENED","ticket_id":"t-1","category":"delivery","priority":"NORMAL","csat":null,"nps":null}`+"\n", at(120)),
		"-P", "-t", "support-events", "-K", "|")

	var got []jsonTrigger
	for deadline := time.Now().Add(60 * time.Second); len(got) == 0 && time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		got = d.triggers(t)
	}
	if len(got) != 1 {
		t.Fatalf("want exactly one trigger (for kcat-lapser), got %d: %+v\nwinback output:\n%s", len(got), got, d.out.String())
	}
	tr := got[0]
	if tr.CustomerID != "kcat-lapser" || tr.Kind != "WINBACK" || tr.PrimaryReason != "PURCHASE_LAPSE" || tr.Action != "WINBACK_OFFER" {
		t.Errorf("unexpected trigger: %+v", tr)
	}
	if len(tr.TriggerID) < 16 || tr.Priority < 1 || tr.Priority > 100 {
		t.Errorf("trigger id %q or priority %d out of contract", tr.TriggerID, tr.Priority)
	}
	if d := tr.Evidence["usual_interval_days"]; d < 6.5 || d > 7.5 {
		t.Errorf("usual_interval_days = %v, want about 7", d)
	}

	dlq := kc("", "-C", "-t", "winback-dlq", "-o", "beginning", "-e", "-q",
		"-X", "isolation.level=read_committed", "-f", "%k %h\n")
	if !strings.Contains(dlq, "kcat-bad") || !strings.Contains(dlq, "winback.reason=") {
		t.Errorf("dead letter for kcat-bad with a reason header not found:\n%s", dlq)
	}
}
