package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/winback/winback/gen"
	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/testenv"
)

// expected holds figures computed from the generated stream by a pass
// independent of the pipeline.
type expected struct {
	orders int64 // placed minus cancelled
	cents  int64 // net of refunds and cancellations
	last   int64 // last PLACED order, Unix ms
}

// TestEndToEnd puts generated traffic (Avro and JSON, with malformed
// records and duplicates) through kfake, srfake and a real ClickHouse, and
// checks exact aggregates, the planted triggers, the dead letters, the
// metrics and the live lookup.
func TestEndToEnd(t *testing.T) {
	s := newStack(t, 3)
	o := genOptions{customers: 250, days: 200, seed: 11, encoding: "mixed"}
	g, want, malformed := independentPass(t, o)
	if malformed == 0 || len(want) < 100 {
		t.Fatalf("generated stream too small to prove anything: %d malformed, %d buyers", malformed, len(want))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	st, err := produceTraffic(ctx, &s.cfg, &o, testenv.TestLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Malformed != malformed {
		t.Fatalf("produced %d malformed records, the independent pass counted %d", st.Malformed, malformed)
	}

	httpAddr, reg := s.serveInProcess(t, s.cfg)
	waitCaughtUp(t, s.cfg.Kafka.Brokers, s.cfg.Kafka.Group, 3*time.Minute, inputs(s.cfg)...)
	waitConfirmed(t, reg)

	// Exact aggregates for every buyer.
	db := openCH(t, s.cfg.ClickHouse.DSN)
	checkAggregates(t, db, s.cfg.ClickHouse.Database, want)

	// Triggers: decoded with the registry through franz-go's sr client
	// and goavro, as any registry-aware consumer would.
	src, err := sr.NewClient(sr.URLs(s.cfg.Registry.URL))
	if err != nil {
		t.Fatal(err)
	}
	byCustomer := map[string][]string{}
	arms := map[string]float64{} // committed triggers by treatment
	for _, r := range consumeAll(t, s.cfg.Kafka.Brokers, s.cfg.Topics.Triggers) {
		var hdr sr.ConfluentHeader
		id, body, err := hdr.DecodeID(r.Value)
		if err != nil {
			t.Fatalf("trigger is not Confluent framed: %v", err)
		}
		schema, err := src.SchemaByID(ctx, id)
		if err != nil {
			t.Fatalf("trigger schema %d: %v", id, err)
		}
		codec, err := goavro.NewCodec(schema.Schema)
		if err != nil {
			t.Fatal(err)
		}
		native, _, err := codec.NativeFromBinary(body)
		if err != nil {
			t.Fatalf("decode trigger: %v", err)
		}
		m := native.(map[string]any)
		cust := m["customer_id"].(string)
		if string(r.Key) != cust || m["trigger_id"].(string) == "" {
			t.Errorf("trigger key %q, customer %q, id %q", r.Key, cust, m["trigger_id"])
		}
		byCustomer[cust] = append(byCustomer[cust], m["kind"].(string)+"/"+m["primary_reason"].(string))
		arm := "TREATED" // the optional field's default (null)
		if u, ok := m["treatment"].(map[string]any); ok {
			for _, v := range u { // the union's one branch
				arm = v.(string)
			}
		}
		arms[arm]++
	}
	// winback_triggers_total counts the committed triggers by treatment.
	for arm, n := range arms {
		if got := counterSum(t, reg, "winback_triggers_total", "treatment", arm); got != n {
			t.Errorf("winback_triggers_total{treatment=%q} = %v, the topic holds %v", arm, got, n)
		}
	}
	if arms["CONTROL"] == 0 || arms["TREATED"] == 0 {
		t.Errorf("triggers by treatment %v: want both arms (holdout_share defaults to 0.1)", arms)
	}
	if len(byCustomer) == 0 {
		t.Fatal("no triggers at all")
	}
	// The generator plants lapsers and steady buyers with known truth.
	var lapser string
	lapsers, steady := 0, 0
	for _, tr := range g.Truth() {
		switch {
		case tr.Archetype == gen.Lapser:
			lapsers++
			if lapser == "" {
				lapser = tr.CustomerID
			}
			if !contains(byCustomer[tr.CustomerID], "WINBACK/PURCHASE_LAPSE") {
				t.Errorf("lapser %s: triggers %v, want WINBACK/PURCHASE_LAPSE", tr.CustomerID, byCustomer[tr.CustomerID])
			}
		case tr.MustNotTrigger:
			steady++
			if got := byCustomer[tr.CustomerID]; len(got) > 0 {
				t.Errorf("steady buyer %s (%s) got triggers %v", tr.CustomerID, tr.Archetype, got)
			}
		}
	}
	if lapsers == 0 || steady == 0 {
		t.Fatalf("the stream planted %d lapsers and %d steady buyers; need both", lapsers, steady)
	}

	// Every malformed record is in the dead-letter topic, with a reason,
	// and in ClickHouse.
	dlq := consumeAll(t, s.cfg.Kafka.Brokers, s.cfg.Topics.DLQ)
	if len(dlq) != malformed {
		t.Errorf("%d dead letters, want %d", len(dlq), malformed)
	}
	for _, r := range dlq {
		if headerValue(r, "winback.reason") == "" {
			t.Errorf("dead letter at %d without winback.reason header", r.Offset)
		}
	}
	var dlqRows uint64
	if err := db.QueryRow(fmt.Sprintf("SELECT count() FROM %s.dlq_records FINAL", s.cfg.ClickHouse.Database)).Scan(&dlqRows); err != nil {
		t.Fatal(err)
	}
	if int(dlqRows) != malformed {
		t.Errorf("dlq_records has %d rows, want %d", dlqRows, malformed)
	}

	// The running pipeline answers /metrics and the live lookup.
	metrics := httpGet(t, "http://"+httpAddr+"/metrics", http.StatusOK)
	for _, name := range []string{"winback_events_total", "winback_triggers_total", "winback_dlq_records_total",
		"winback_clickhouse_rows_total", "winback_transactions_committed_total", "winback_kafka_connects_total"} {
		if !strings.Contains(metrics, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	var view map[string]any
	body := httpGet(t, "http://"+httpAddr+"/v1/customers/"+lapser, http.StatusOK)
	if err := json.Unmarshal([]byte(body), &view); err != nil {
		t.Fatalf("lookup is not JSON: %v: %s", err, body)
	}
	if !strings.Contains(body, lapser) || !strings.Contains(body, "PURCHASE_LAPSE") {
		t.Errorf("lookup of lapser %s does not show it and its lapse: %s", lapser, body)
	}
	httpGet(t, "http://"+httpAddr+"/v1/customers/nobody-at-all", http.StatusNotFound)
}

// independentPass builds the generator that o describes and computes, from
// its stream alone, each buyer's expected figures and the number of
// malformed records.
func independentPass(t *testing.T, o genOptions) (*gen.Generator, map[string]*expected, int) {
	t.Helper()
	gcfg, err := o.config()
	if err != nil {
		t.Fatal(err)
	}
	g, err := gen.New(gcfg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]*expected{}
	seen := map[string]bool{}
	malformed := 0
	err = g.Each(func(r *gen.Record) error {
		if r.Malformed != nil {
			malformed++
			return nil
		}
		ev := r.Event
		if seen[ev.EventID] || ev.Kind != event.KindOrder {
			seen[ev.EventID] = true
			return nil
		}
		seen[ev.EventID] = true
		e := want[ev.CustomerID]
		if e == nil {
			e = &expected{}
			want[ev.CustomerID] = e
		}
		cents := int64(math.Round(ev.Amount * 100))
		switch ev.OrderType {
		case event.OrderPlaced:
			e.orders++
			e.cents += cents
			e.last = max(e.last, ev.Time)
		case event.OrderCancelled:
			e.orders--
			e.cents -= cents
		case event.OrderRefunded:
			e.cents -= cents
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return g, want, malformed
}

// checkAggregates requires ClickHouse to hold exactly the expected orders,
// spend and last order of every buyer.
func checkAggregates(t *testing.T, db *sql.DB, database string, want map[string]*expected) {
	t.Helper()
	rows, err := db.Query(fmt.Sprintf(`SELECT customer_id, orders_total, spend_total, toUnixTimestamp(last_order_at)
		FROM %s.customer_aggregates FINAL WHERE orders_total > 0 OR spend_total != 0`, database))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for rows.Next() {
		var id string
		var orders uint32
		var spend float64
		var last *uint32
		if err := rows.Scan(&id, &orders, &spend, &last); err != nil {
			t.Fatal(err)
		}
		got[id] = true
		w := want[id]
		if w == nil {
			t.Errorf("%s: in ClickHouse with %d orders, but bought nothing in the stream", id, orders)
			continue
		}
		if int64(orders) != w.orders || math.Abs(spend-float64(w.cents)/100) > 0.005 {
			t.Errorf("%s: orders %d spend %.2f, want %d and %.2f", id, orders, spend, w.orders, float64(w.cents)/100)
		}
		if w.last != 0 && (last == nil || int64(*last) != w.last/1000) {
			t.Errorf("%s: last order %v, want %d", id, last, w.last/1000)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for id, w := range want {
		if w.orders > 0 && !got[id] {
			t.Errorf("%s: %d orders in the stream, no aggregate in ClickHouse", id, w.orders)
		}
	}

}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func httpGet(t *testing.T, url string, code int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != code {
		t.Fatalf("GET %s: %d, want %d: %s", url, resp.StatusCode, code, b)
	}
	return string(b)
}

// counterSum sums the counter name over the series whose label has value.
func counterSum(t *testing.T, reg prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}
