package decode

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/winback/winback/pipeline/codec"
	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/schemas"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testNow is the clock of the tests; the events happen a month earlier.
var testNow = time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)

const baseTime = 1714564800000 // 2024-05-01T12:00:00Z

func newTestDecoder(reg Registry) *Decoder {
	return NewDecoder(reg, Options{Now: func() time.Time { return testNow }, RegistryRetry: 50 * time.Millisecond})
}

func orderEvent() event.Event {
	return event.Event{Kind: event.KindOrder, EventID: "e-1", CustomerID: "c-1", Time: baseTime,
		OrderType: event.OrderPlaced, OrderID: "o-1", Amount: 42.5, Currency: "EUR", Items: 2}
}

func emailEvent() event.Event {
	return event.Event{Kind: event.KindEmail, EventID: "e-2", CustomerID: "c-1", Time: baseTime,
		EmailType: event.EmailOpened, CampaignID: "spring-sale"}
}

func supportEvent() event.Event {
	return event.Event{Kind: event.KindSupport, EventID: "e-3", CustomerID: "c-1", Time: baseTime,
		SupportType: event.SupportResolved, TicketID: "t-1", Category: "delivery",
		Priority: event.PriorityHigh, CSAT: 2, NPS: event.NoScore}
}

func baseEvent(k event.Kind) event.Event {
	switch k {
	case event.KindEmail:
		return emailEvent()
	case event.KindSupport:
		return supportEvent()
	}
	return orderEvent()
}

// mapRegistry is an in-process Registry. Ids 1, 2 and 3 are the contract's
// schemas, as codec.NewEventEncoder registers them in a fresh registry.
type mapRegistry struct {
	mu      sync.Mutex
	schemas map[int]string
	down    atomic.Bool
	calls   atomic.Int64
}

func newMapRegistry() *mapRegistry {
	return &mapRegistry{schemas: map[int]string{
		1: schemas.Avro(schemas.AvroOrder),
		2: schemas.Avro(schemas.AvroEmailEvent),
		3: schemas.Avro(schemas.AvroSupportEvent),
	}}
}

func (r *mapRegistry) add(id int, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.schemas[id] = text
}

func (r *mapRegistry) SchemaByID(ctx context.Context, id int) (string, error) {
	r.calls.Add(1)
	if r.down.Load() {
		return "", errors.New("dial tcp 127.0.0.1:1: connection refused")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.schemas[id]
	if !ok {
		return "", fmt.Errorf("id %d: %w", id, ErrSchemaNotFound)
	}
	return s, nil
}

var kindSchemaID = map[event.Kind]int{event.KindOrder: 1, event.KindEmail: 2, event.KindSupport: 3}

func mustAvro(t testing.TB, ev event.Event) []byte {
	t.Helper()
	b, err := codec.AppendEventAvro(nil, kindSchemaID[ev.Kind], &ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkReason asserts err is an *Error with the reason want ("" = no error).
func checkReason(t *testing.T, err error, want Reason) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	var de *Error
	if !errors.As(err, &de) {
		t.Fatalf("got %v (%T), want an *Error with reason %s", err, err, want)
	}
	if de.Reason != want {
		t.Fatalf("got reason %s (%v), want %s", de.Reason, err, want)
	}
}

func TestRoundTripBothEncodings(t *testing.T) {
	d := newTestDecoder(newMapRegistry())
	evs := []event.Event{orderEvent(), emailEvent(), supportEvent()}
	s := supportEvent()
	s.CSAT, s.NPS = event.NoScore, 0
	s.Category = "" // category may be empty
	evs = append(evs, s)
	o := orderEvent()
	o.Amount, o.Items, o.OrderType = 0, 0, event.OrderRefunded
	o.CustomerID = "kund-ø\"\\" // escapes and non-ASCII survive JSON
	o.OrderID = "o-\n\x01"      // control characters too, where the contract allows them
	evs = append(evs, o)
	for _, want := range evs {
		for name, val := range map[string][]byte{"avro": mustAvro(t, want), "json": codec.AppendEventJSON(nil, &want)} {
			var got event.Event
			got.OrderID = "stale" // Decode must reset the event
			if err := d.Decode(context.Background(), want.Kind, []byte(want.CustomerID), val, &got); err != nil {
				t.Fatalf("%v %s: %v\n%q", want.Kind, name, err, val)
			}
			if got != want {
				t.Errorf("%v %s:\n got %+v\nwant %+v", want.Kind, name, got, want)
			}
		}
	}
}

func TestDecodeResetsEventOnError(t *testing.T) {
	d := newTestDecoder(newMapRegistry())
	ev := orderEvent()
	err := d.Decode(context.Background(), event.KindOrder, []byte("c-1"), []byte("nope"), &ev)
	checkReason(t, err, ReasonEncodingUnknown)
	if ev != (event.Event{}) {
		t.Errorf("event not reset: %+v", ev)
	}
}

func TestUnknownKind(t *testing.T) {
	d := newTestDecoder(newMapRegistry())
	var ev event.Event
	err := d.Decode(context.Background(), event.Kind(9), []byte("c-1"), []byte("{}"), &ev)
	if err == nil {
		t.Fatal("no error for kind 9")
	}
	if _, ok := ReasonOf(err); ok {
		t.Errorf("kind 9 is a programming error, not a record error: %v", err)
	}
}

func TestErrorFormat(t *testing.T) {
	err := error(errorf(ReasonFieldInvalid, "amount", "%v is negative", -1))
	if got, want := err.Error(), "decode: field.invalid: amount: -1 is negative"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	wrapped := fmt.Errorf("topic orders partition 3 offset 7: %w", newErr(ReasonAvroTruncated, "", ErrTruncated))
	if r, ok := ReasonOf(wrapped); !ok || r != ReasonAvroTruncated {
		t.Errorf("ReasonOf = %v, %v", r, ok)
	}
	if !errors.Is(wrapped, ErrTruncated) {
		t.Error("errors.Is does not see ErrTruncated through Unwrap")
	}
	for _, r := range Reasons {
		if r.Transient() != (r == ReasonRegistryUnavailable) {
			t.Errorf("%s.Transient() = %v", r, r.Transient())
		}
	}
}

func TestFutureSkewOption(t *testing.T) {
	now := testNow
	d := NewDecoder(newMapRegistry(), Options{Now: func() time.Time { return now }, MaxFutureSkew: time.Hour})
	f := func(at time.Time, want Reason) {
		t.Helper()
		ev := orderEvent()
		ev.Time = at.UnixMilli()
		var got event.Event
		checkReason(t, d.Decode(context.Background(), event.KindOrder, []byte("c-1"), mustAvro(t, ev), &got), want)
	}
	f(now.Add(time.Hour), "")
	f(now.Add(time.Hour+time.Millisecond), ReasonTimeInFuture)
	f(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), "")
	f(time.Date(1999, 12, 31, 23, 59, 59, 999e6, time.UTC), ReasonTimeOutOfRange)
	now = now.Add(time.Hour) // the bound follows the clock
	f(now.Add(time.Hour), "")
}

// TestFutureEvents checks the bound on event_time against the wall clock:
// with the default skew of 5 minutes, one event dated days ahead (which
// would otherwise move event time, and fire every timer early) is
// time.in_future in both encodings, while clocks a little apart are fine.
func TestFutureEvents(t *testing.T) {
	cases := []struct {
		name  string
		skew  time.Duration // Options.MaxFutureSkew; 0 = the default
		ahead time.Duration // event_time - Options.Now
		want  Reason
	}{
		{"now", 0, 0, ""},
		{"a second ahead", 0, time.Second, ""},
		{"at the default skew", 0, DefaultMaxFutureSkew, ""},
		{"a millisecond past the default skew", 0, DefaultMaxFutureSkew + time.Millisecond, ReasonTimeInFuture},
		{"six days ahead", 0, 6 * 24 * time.Hour, ReasonTimeInFuture},
		{"a year behind", 0, -365 * 24 * time.Hour, ""},
		{"six days ahead, 7-day skew", 7 * 24 * time.Hour, 6 * 24 * time.Hour, ""},
		{"eight days ahead, 7-day skew", 7 * 24 * time.Hour, 8 * 24 * time.Hour, ReasonTimeInFuture},
		{"a minute ahead, 1s skew", time.Second, time.Minute, ReasonTimeInFuture},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := NewDecoder(newMapRegistry(), Options{Now: func() time.Time { return testNow }, MaxFutureSkew: c.skew})
			for _, k := range []event.Kind{event.KindOrder, event.KindEmail, event.KindSupport} {
				ev := baseEvent(k)
				ev.Time = testNow.Add(c.ahead).UnixMilli()
				var got event.Event
				err := d.Decode(context.Background(), k, []byte("c-1"), codec.AppendEventJSON(nil, &ev), &got)
				checkReason(t, err, c.want)
				if c.want != "" {
					var de *Error
					if !errors.As(err, &de) || de.Field != "event_time" {
						t.Errorf("%v: error %v does not name event_time", k, err)
					}
					continue
				}
				if got.Time != ev.Time {
					t.Errorf("%v: time %d, want %d", k, got.Time, ev.Time)
				}
				// Avro says the same.
				checkReason(t, d.Decode(context.Background(), k, []byte("c-1"), mustAvro(t, ev), &got), c.want)
			}
		})
	}
}

// TestIDLength checks MaxIDBytes on each id field of each kind, in both
// encodings: at the limit the record decodes, one byte over it (or half a
// megabyte over it, as on an unsubscribe that would otherwise make output
// records the producer refuses) it is field.too_long, naming the field.
func TestIDLength(t *testing.T) {
	set := map[string]func(*event.Event, string){
		"event_id":    func(e *event.Event, s string) { e.EventID = s },
		"customer_id": func(e *event.Event, s string) { e.CustomerID = s },
		"order_id":    func(e *event.Event, s string) { e.OrderID = s },
		"campaign_id": func(e *event.Event, s string) { e.CampaignID = s },
		"ticket_id":   func(e *event.Event, s string) { e.TicketID = s },
	}
	cases := []struct {
		kind  event.Kind
		field string
		n     int
		want  Reason
	}{
		{event.KindOrder, "event_id", MaxIDBytes, ""},
		{event.KindOrder, "event_id", MaxIDBytes + 1, ReasonFieldTooLong},
		{event.KindOrder, "customer_id", MaxIDBytes, ""},
		{event.KindOrder, "customer_id", MaxIDBytes + 1, ReasonFieldTooLong},
		{event.KindOrder, "order_id", MaxIDBytes, ""},
		{event.KindOrder, "order_id", MaxIDBytes + 1, ReasonFieldTooLong},
		{event.KindEmail, "campaign_id", MaxIDBytes, ""},
		{event.KindEmail, "campaign_id", MaxIDBytes + 1, ReasonFieldTooLong},
		{event.KindEmail, "customer_id", 510_000, ReasonFieldTooLong},
		{event.KindSupport, "ticket_id", MaxIDBytes, ""},
		{event.KindSupport, "ticket_id", MaxIDBytes + 1, ReasonFieldTooLong},
		{event.KindSupport, "event_id", 100 << 10, ReasonFieldTooLong},
	}
	d := NewDecoder(newMapRegistry(), Options{Now: func() time.Time { return testNow }})
	for _, c := range cases {
		t.Run(fmt.Sprintf("%v/%s/%d", c.kind, c.field, c.n), func(t *testing.T) {
			ev := baseEvent(c.kind)
			if c.kind == event.KindEmail {
				ev.EmailType = event.EmailUnsubscribed
			}
			id := strings.Repeat("x", c.n)
			set[c.field](&ev, id)
			key := []byte(ev.CustomerID) // the producer keys by customer_id
			for enc, value := range map[string][]byte{"json": codec.AppendEventJSON(nil, &ev), "avro": mustAvro(t, ev)} {
				var got event.Event
				err := d.Decode(context.Background(), c.kind, key, value, &got)
				checkReason(t, err, c.want)
				if c.want == "" {
					if got != ev {
						t.Errorf("%s: decoded %+v, want %+v", enc, got, ev)
					}
					continue
				}
				var de *Error
				if errors.As(err, &de); de.Field != c.field {
					t.Errorf("%s: field %q, want %q", enc, de.Field, c.field)
				}
				if len(err.Error()) > 200 {
					t.Errorf("%s: the error repeats the value: %d bytes", enc, len(err.Error()))
				}
			}
		})
	}
}

// TestCustomerIDControlCharacters: a customer_id with a control character
// (C0, DEL, C1) is field.invalid in both encodings, so that no customer can
// collide with winback's own changelog keys ("\x00meta"); printable
// Unicode is fine.
func TestCustomerIDControlCharacters(t *testing.T) {
	cases := []struct {
		id   string
		want Reason
	}{
		{"c-1", ""},
		{"Zoë-Müller", ""},
		{"客户-42", ""},
		{"c\u00a01", ""}, // no-break space: printable
		{"\x00meta", ReasonFieldInvalid},
		{"c\x00", ReasonFieldInvalid},
		{"c\t1", ReasonFieldInvalid},
		{"c\n", ReasonFieldInvalid},
		{"c\x1f1", ReasonFieldInvalid},
		{"c\x7f", ReasonFieldInvalid},
		{"c\u0085", ReasonFieldInvalid}, // NEL, a C1 control
		{"c\u009f", ReasonFieldInvalid},
	}
	d := newTestDecoder(newMapRegistry())
	for _, c := range cases {
		ev := orderEvent()
		ev.CustomerID = c.id
		for enc, value := range map[string][]byte{"json": codec.AppendEventJSON(nil, &ev), "avro": mustAvro(t, ev)} {
			var got event.Event
			err := d.Decode(context.Background(), event.KindOrder, []byte(c.id), value, &got)
			if r, _ := ReasonOf(err); r != c.want {
				t.Errorf("%s %q: reason %q (%v), want %q", enc, c.id, r, err, c.want)
				continue
			}
			if c.want == "" && got.CustomerID != c.id {
				t.Errorf("%s %q: decoded %q", enc, c.id, got.CustomerID)
			}
			var de *Error
			if c.want != "" && (!errors.As(err, &de) || de.Field != "customer_id") {
				t.Errorf("%s %q: %v does not name customer_id", enc, c.id, err)
			}
		}
	}
}
