package consume

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/pipeline/decode"
	"github.com/winback/winback/pipeline/event"
)

// TestDeadLetterOrigin: a record read back from the repartition topic and
// dead-lettered there points at the input record its producer wrote (its
// topic, partition, offset, timestamp and own headers), once, in the
// dead-letter record and its ClickHouse row; it used to point at
// winback's copy and carry both sets of winback.source.* headers. The
// input's own headers are kept as they were, even one named like
// winback's (a dead letter produced again with its headers).
func TestDeadLetterOrigin(t *testing.T) {
	wall := time.UnixMilli(1_800_000_000_000)
	r := &Runner{env: &env{cfg: Config{Topics: Topics{Orders: "orders", Repartition: "rep"}},
		dep: Deps{Outputs: testOutputs}, m: newMetrics(nil), now: func() time.Time { return wall }}}
	tk := &task{env: r.env, p: 2}
	at := time.UnixMilli(1_700_000_000_123)
	own := []kgo.RecordHeader{{Key: "trace", Value: []byte("t1")}, {Key: "winback.source.topic", Value: []byte("earlier")}}
	in := &kgo.Record{Topic: "orders", Partition: 1, Offset: 41, Timestamp: at, Key: []byte("k"), Value: []byte("{}"), Headers: own}
	q := &queued{rec: in}
	q.ev.CustomerID, q.ev.Kind = "c-1", event.KindOrder
	tk.forward(q)
	if len(tk.out.recs) != 1 {
		t.Fatalf("forward made %d records, want 1", len(tk.out.recs))
	}
	read := *tk.out.recs[0] // as the customer's task reads it back
	read.Partition, read.Offset, read.Timestamp = 0, 7, wall
	bad := &decode.Error{Reason: decode.ReasonKeyPartition, Field: "customer_id", Err: errors.New("moved")}

	cases := []struct {
		name       string
		rec        *kgo.Record
		topic      string
		part       int32
		off        int64
		ts         int64
		ownHeaders []kgo.RecordHeader
	}{
		{"forwarded", &read, "orders", 1, 41, at.UnixMilli(), own},
		{"forwarded before the timestamp header", withoutLast(&read), "orders", 1, 41, wall.UnixMilli(), own},
		{"not forwarded by winback", &kgo.Record{Topic: "rep", Partition: 0, Offset: 9, Timestamp: wall, Headers: own},
			"rep", 0, 9, wall.UnixMilli(), own},
	}
	for _, c := range cases {
		tk.out = taskOut{}
		tk.deadLetter(c.rec, bad)
		dl, row := tk.out.recs[0], tk.out.rows.DeadLetters[0]
		got := map[string][]string{}
		for _, h := range dl.Headers {
			got[h.Key] = append(got[h.Key], string(h.Value))
		}
		want := map[string]string{"winback.source.partition": itoa(int64(c.part)), "winback.source.offset": itoa(c.off),
			"winback.source.timestamp": itoa(c.ts), "winback.kind": ""}
		for k, v := range want {
			if v == "" && len(got[k]) != 0 || v != "" && (len(got[k]) != 1 || got[k][0] != v) {
				t.Errorf("%s: header %s = %q, want %q", c.name, k, got[k], v)
			}
		}
		// winback's own topic header first, then the input's headers.
		if ts := got["winback.source.topic"]; len(ts) != 2 || ts[0] != c.topic || ts[1] != "earlier" {
			t.Errorf("%s: winback.source.topic headers %q, want [%s earlier]", c.name, ts, c.topic)
		}
		if tail := dl.Headers[len(dl.Headers)-len(c.ownHeaders):]; tail[0].Key != "trace" || tail[1].Key != "winback.source.topic" {
			t.Errorf("%s: the input's own headers are not last: %v", c.name, dl.Headers)
		}
		if row.Topic != c.topic || row.Partition != c.part || row.Offset != c.off {
			t.Errorf("%s: dlq row at %s/%d/%d, want %s/%d/%d", c.name, row.Topic, row.Partition, row.Offset, c.topic, c.part, c.off)
		}
	}
}

func withoutLast(rec *kgo.Record) *kgo.Record {
	o := *rec
	o.Headers = rec.Headers[:len(rec.Headers)-1]
	return &o
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// TestKindOfOwnHeader: a forwarded record is read as the kind winback
// forwarded it as, whatever winback.kind header its producer set (an
// order with winback.kind=email was read as an e-mail and dead-lettered).
func TestKindOfOwnHeader(t *testing.T) {
	r := &Runner{env: &env{cfg: Config{Topics: Topics{Orders: "orders", Repartition: "rep"}},
		dep: Deps{Outputs: testOutputs}, m: newMetrics(nil), now: time.Now}}
	tk := &task{env: r.env, p: 0}
	for _, k := range []event.Kind{event.KindOrder, event.KindEmail, event.KindSupport} {
		tk.out = taskOut{}
		in := &kgo.Record{Topic: "orders", Headers: []kgo.RecordHeader{{Key: hdrKind, Value: []byte("email")}, {Key: hdrKind, Value: []byte("bogus")}}}
		q := &queued{rec: in}
		q.ev.CustomerID, q.ev.Kind = "c-1", k
		tk.forward(q)
		if got, ok := kindOf(tk.out.recs[0]); !ok || got != k {
			t.Errorf("forwarded as %v: read back as %v (%v)", k, got, ok)
		}
	}
	if _, ok := kindOf(&kgo.Record{Headers: []kgo.RecordHeader{{Key: hdrKind, Value: []byte("order")}, {Key: hdrKind, Value: []byte("bogus")}}}); ok {
		t.Error("a record whose last kind header is not a kind was read as one")
	}
}
