package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/pipeline/decode"
	"github.com/winback/winback/pipeline/event"
)

func header(t *testing.T, r *kgo.Record, key string) string {
	t.Helper()
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	t.Fatalf("no header %s in %v", key, r.Headers)
	return ""
}

func TestTriggerRecord(t *testing.T) {
	tr := event.Trigger{TriggerID: "rc-c-2-SPEND_DECLINE-1", CustomerID: "kunde-ø-\"2\"", Kind: event.TriggerRecovered}
	r := TriggerRecord("winback-triggers", &tr, []byte("v"))
	if r.Topic != "winback-triggers" || string(r.Key) != tr.CustomerID || string(r.Value) != "v" {
		t.Errorf("record %+v", r)
	}
	for k, want := range map[string]string{
		HeaderTriggerID: tr.TriggerID,
		HeaderKind:      "RECOVERED",
		HeaderSchema:    "WinbackTrigger/v1",
	} {
		if got := header(t, r, k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

// decodeErr makes a real decode error.
func decodeErr(t *testing.T) error {
	t.Helper()
	d := decode.NewDecoder(nil, decode.Options{})
	var ev event.Event
	err := d.Decode(context.Background(), event.KindOrder, []byte("c-1"), []byte(`{"event_id":`), &ev)
	if err == nil {
		t.Fatal("no decode error")
	}
	return fmt.Errorf("orders/3@42: %w", err)
}

func TestDeadLetterRecord(t *testing.T) {
	src := &kgo.Record{
		Topic: "orders", Partition: 3, Offset: 42,
		Key:       []byte("c-1"),
		Value:     []byte("{\"event_id\":"),
		Timestamp: time.UnixMilli(1714564800123),
		Headers:   []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-abc")}},
	}
	err := decodeErr(t)
	r := DeadLetterRecord("winback-dlq", src, err, 16)
	if r.Topic != "winback-dlq" || !bytes.Equal(r.Key, src.Key) || !bytes.Equal(r.Value, src.Value) {
		t.Errorf("record %+v", r)
	}
	for k, want := range map[string]string{
		HeaderReason:          "json.syntax",
		HeaderError:           err.Error(),
		HeaderSourceTopic:     "orders",
		HeaderSourcePartition: "3",
		HeaderSourceOffset:    "42",
		HeaderSourceTimestamp: "1714564800123",
		"traceparent":         "00-abc",
	} {
		if got := header(t, r, k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if len(r.Headers) != 7 {
		t.Errorf("%d headers, want 7", len(r.Headers))
	}

	// A value over the cap is cut, and the headers say so.
	src.Value = bytes.Repeat([]byte("x"), 40)
	r = DeadLetterRecord("winback-dlq", src, err, 16)
	if len(r.Value) != 16 || header(t, r, HeaderTruncated) != "true" || header(t, r, HeaderSourceSize) != "40" {
		t.Errorf("cut record: value %d bytes, truncated %q, size %q", len(r.Value), header(t, r, HeaderTruncated), header(t, r, HeaderSourceSize))
	}

	// A null key stays null; other errors are "internal".
	src.Key = nil
	r = DeadLetterRecord("winback-dlq", src, errors.New("boom"), 0)
	if r.Key != nil || header(t, r, HeaderReason) != "internal" {
		t.Errorf("key %q, reason %q", r.Key, header(t, r, HeaderReason))
	}
}

func TestErrorTextCapped(t *testing.T) {
	for _, msg := range []string{
		strings.Repeat("x", 5000),
		strings.Repeat("ø", 3000),     // 2-byte runes across the cut
		strings.Repeat("a\xff", 2000), // each \xff becomes a 3-byte U+FFFD
	} {
		got := errorText(errors.New(msg))
		if len(got) > MaxErrorBytes || !utf8.ValidString(got) {
			t.Errorf("len %d, valid %v", len(got), utf8.ValidString(got))
		}
		if len(got) < MaxErrorBytes-4 {
			t.Errorf("cut to %d bytes, more than needed", len(got))
		}
	}
	if got := errorText(errors.New("short")); got != "short" {
		t.Errorf("got %q", got)
	}
}

func TestDeadLetter(t *testing.T) {
	src := &kgo.Record{Topic: "support-events", Partition: 1, Offset: 7, Key: []byte("c-9"), Value: []byte("0123456789")}
	err := decodeErr(t)
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	o := &Output{DLQ: "dlq", MaxValueBytes: 4}
	rec, dl := o.DeadLetter(src, err, at)
	if dl.Topic != "support-events" || dl.Partition != 1 || dl.Offset != 7 || string(dl.Key) != "c-9" ||
		dl.Reason != "json.syntax" || dl.Detail != err.Error() || dl.Size != 10 || string(dl.Sample) != "0123456789" ||
		dl.At != at.UnixMilli() {
		t.Errorf("%+v", dl)
	}
	if rec.Topic != "dlq" || string(rec.Value) != "0123" || header(t, rec, HeaderReason) != dl.Reason || header(t, rec, HeaderError) != dl.Detail {
		t.Errorf("record %s %q, headers %v", rec.Topic, rec.Value, rec.Headers)
	}
	src.Key = nil
	if dl := DeadLetter(src, errors.New("x"), at); dl.Key != nil || dl.Reason != "internal" || dl.Detail != "x" {
		t.Errorf("%+v", dl)
	}
}
