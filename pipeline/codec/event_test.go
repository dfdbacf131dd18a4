package codec

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"

	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/schemas"
)

var baseTime = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).UnixMilli()

func orderEvent() event.Event {
	return event.Event{Kind: event.KindOrder, EventID: "e-1", CustomerID: "c-1", Time: baseTime,
		OrderType: event.OrderRefunded, OrderID: "o-1", Amount: 42.5, Currency: "EUR", Items: 2}
}

func emailEvent() event.Event {
	return event.Event{Kind: event.KindEmail, EventID: "e-2", CustomerID: "c-1", Time: baseTime,
		EmailType: event.EmailComplained, CampaignID: "spring-sale"}
}

func supportEvent() event.Event {
	return event.Event{Kind: event.KindSupport, EventID: "e-3", CustomerID: "kund-ø\"\\\n", Time: baseTime,
		SupportType: event.SupportResolved, TicketID: "t-1", Category: "delivery",
		Priority: event.PriorityUrgent, CSAT: 2, NPS: event.NoScore}
}

// TestEventAvroMatchesGoavro checks the hand-written Avro encoding byte for
// byte against goavro's, for every kind and the last symbol of each enum.
func TestEventAvroMatchesGoavro(t *testing.T) {
	f := func(ev event.Event, native map[string]any) {
		t.Helper()
		c, err := goavro.NewCodec(schemas.Avro(avroSchemaName[ev.Kind]))
		if err != nil {
			t.Fatal(err)
		}
		want, err := c.BinaryFromNative([]byte{0, 0, 0, 0, 9}, native)
		if err != nil {
			t.Fatal(err)
		}
		got, err := AppendEventAvro(nil, 9, &ev)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%v:\n got %x\nwant %x", ev.Kind, got, want)
		}
	}
	at := time.UnixMilli(baseTime)
	o := orderEvent()
	f(o, map[string]any{"event_id": o.EventID, "customer_id": o.CustomerID, "event_time": at, "type": "REFUNDED",
		"order_id": o.OrderID, "amount": o.Amount, "currency": o.Currency, "items": o.Items})
	e := emailEvent()
	f(e, map[string]any{"event_id": e.EventID, "customer_id": e.CustomerID, "event_time": at, "type": "COMPLAINED",
		"campaign_id": e.CampaignID})
	s := supportEvent()
	f(s, map[string]any{"event_id": s.EventID, "customer_id": s.CustomerID, "event_time": at, "type": "RESOLVED",
		"ticket_id": s.TicketID, "category": s.Category, "priority": "URGENT",
		"csat": goavro.Union("int", int32(2)), "nps": nil})
}

func TestEventAvroRejectsWhatTheSchemaCannotHold(t *testing.T) {
	for name, mod := range map[string]func(*event.Event){
		"unknown kind":      func(e *event.Event) { e.Kind = 0 },
		"order type":        func(e *event.Event) { e.Kind, e.OrderType = event.KindOrder, 0 },
		"email type":        func(e *event.Event) { e.Kind, e.EmailType = event.KindEmail, event.EmailComplained+1 },
		"support type":      func(e *event.Event) { e.Kind, e.SupportType = event.KindSupport, 0 },
		"ticket priority":   func(e *event.Event) { e.Kind, e.Priority = event.KindSupport, event.PriorityUrgent+1 },
		"kind out of range": func(e *event.Event) { e.Kind = event.KindSupport + 1 },
	} {
		ev := supportEvent()
		mod(&ev)
		if _, err := AppendEventAvro(nil, 1, &ev); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	var enc EventEncoder // nothing registered
	ev := orderEvent()
	if _, err := enc.Avro(nil, &ev); err == nil {
		t.Error("EventEncoder.Avro encoded a kind without a schema id")
	}
	if _, err := NewEventEncoder(context.Background(), nil, map[event.Kind]string{event.KindSupport + 1: "x"}); err == nil {
		t.Error("NewEventEncoder accepted an unknown kind")
	}
}

// TestEventJSON: the JSON form has the Avro schema's field names, parses
// as JSON and carries the values; a NaN amount is written as null.
func TestEventJSON(t *testing.T) {
	for _, ev := range []event.Event{orderEvent(), emailEvent(), supportEvent()} {
		got := AppendEventJSON([]byte("x"), &ev)
		if got[0] != 'x' {
			t.Fatal("AppendEventJSON does not append to dst")
		}
		var m map[string]any
		if err := json.Unmarshal(got[1:], &m); err != nil {
			t.Fatalf("%v: not JSON: %v\n%s", ev.Kind, err, got)
		}
		var rec struct {
			Fields []struct{ Name string } `json:"fields"`
		}
		if err := json.Unmarshal([]byte(schemas.Avro(avroSchemaName[ev.Kind])), &rec); err != nil {
			t.Fatal(err)
		}
		if len(m) != len(rec.Fields) {
			t.Errorf("%v: %d JSON fields, schema has %d", ev.Kind, len(m), len(rec.Fields))
		}
		for _, f := range rec.Fields {
			if _, ok := m[f.Name]; !ok {
				t.Errorf("%v: JSON lacks %s", ev.Kind, f.Name)
			}
		}
		if m["customer_id"] != ev.CustomerID || m["event_time"] != float64(ev.Time) {
			t.Errorf("%v: customer_id %q event_time %v", ev.Kind, m["customer_id"], m["event_time"])
		}
	}
	s := supportEvent()
	if m := jsonMap(t, &s); m["priority"] != "URGENT" || m["csat"] != 2.0 || m["nps"] != nil {
		t.Errorf("support scores: %v", m)
	}
	o := orderEvent()
	o.Amount = math.NaN()
	if m := jsonMap(t, &o); m["amount"] != nil || m["type"] != "REFUNDED" {
		t.Errorf("NaN amount: %v", m)
	}
}

func jsonMap(t *testing.T, ev *event.Event) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(AppendEventJSON(nil, ev), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestAppendJSONString(t *testing.T) {
	for in, want := range map[string]string{
		"":               `""`,
		"plain":          `"plain"`,
		"q\"b\\":         `"q\"b\\"`,
		"\n\r\t\x01\x1f": `"\n\r\t\u0001\u001f"`,
		"ø\xff":          "\"ø\xff\"", // other bytes as they are
	} {
		if got := string(AppendJSONString(nil, in)); got != want {
			t.Errorf("AppendJSONString(%q) = %s, want %s", in, got, want)
		}
	}
}

func BenchmarkEncodeAvro(b *testing.B) {
	ev := orderEvent()
	enc := &EventEncoder{ids: [len(avroSchemaName)]int{0, 1, 2, 3}}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = enc.Avro(buf[:0], &ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	ev := supportEvent()
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendEventJSON(buf[:0], &ev)
	}
}
