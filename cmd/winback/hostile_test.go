package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/winback/winback/pipeline/codec"
	"github.com/winback/winback/pipeline/decode"
	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/sinks/kafka"
)

// TestHostileInput sends the hostile-input corpus (and an oversized
// record) through the running pipeline, followed by a valid order. Every
// bad record must land in the dead-letter topic with its reason, nothing
// may crash or stall, and the valid order after them must be applied. The
// corpus's key.missing and key.mismatch cases are valid events under a
// wrong key: with the default input partitioning they are routed to their
// customer's task, not dead-lettered (TestStrictPartitioning covers the
// other setting).
func TestHostileInput(t *testing.T) {
	s := newStack(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cases, err := decode.LoadHostileCorpus("../../pipeline/decode/testdata/hostile")
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 25 {
		t.Fatalf("only %d hostile cases; the corpus must have at least 25 kinds", len(cases))
	}
	// The corpus's Avro records use schema ids 1-3, which a fresh
	// registry gives the three input schemas in this order.
	src, err := sr.NewClient(sr.URLs(s.cfg.Registry.URL))
	if err != nil {
		t.Fatal(err)
	}
	topics := map[event.Kind]string{event.KindOrder: s.cfg.Topics.Orders, event.KindEmail: s.cfg.Topics.Email, event.KindSupport: s.cfg.Topics.Support}
	if _, err := codec.NewEventEncoder(ctx, src, topics); err != nil {
		t.Fatal(err)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(s.cfg.Kafka.Brokers...), kgo.ProducerBatchMaxBytes(4<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	type origin struct {
		topic     string
		partition int32
		offset    int64
	}
	want := map[origin]string{}
	routed := 0 // valid events under a wrong or missing key: repartitioned, not dead-lettered
	send := func(topic string, key, value []byte, reason string) {
		t.Helper()
		r, err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: key, Value: value}).First()
		if err != nil {
			t.Fatalf("produce %s: %v", reason, err)
		}
		switch decode.Reason(reason) {
		case "":
		case decode.ReasonKeyMissing, decode.ReasonKeyMismatch:
			routed++
		default:
			want[origin{r.Topic, r.Partition, r.Offset}] = reason
		}
	}
	for _, c := range cases {
		send(topics[c.Kind], c.Key, c.Value, string(c.Reason))
	}
	big := []byte(`{"event_id":"big","customer_id":"c-big","pad":"` + strings.Repeat("x", 1<<20+100) + `"}`)
	send(s.cfg.Topics.Orders, []byte("c-big"), big, string(decode.ReasonValueTooLarge))
	now := time.Now().Add(-time.Hour).UnixMilli()
	// Records whose dead letters, copied whole, would be over the
	// producer's 1,000,012-byte batch limit, failing every replay of their
	// transaction (issue 18): a 510 KB customer_id on an unsubscribe (key
	// and value both hold it), and a 100 KiB key with an 880 KiB bad value.
	longID := strings.Repeat("c", 510_000)
	unsub := fmt.Appendf(nil, `{"event_id":"u-1","customer_id":%q,"event_time":%d,"type":"UNSUBSCRIBED","campaign_id":"x"}`, longID, now)
	send(s.cfg.Topics.Email, []byte(longID), unsub, string(decode.ReasonFieldTooLong))
	bigKey := []byte(strings.Repeat("k", 100<<10))
	send(s.cfg.Topics.Orders, bigKey, append([]byte(`{"event_id":`), strings.Repeat("x", 880<<10)...), string(decode.ReasonJSONSyntax))
	valid := event.Event{Kind: event.KindOrder, EventID: "after-1", CustomerID: "after-hostile", Time: now,
		OrderType: event.OrderPlaced, OrderID: "o-after", Amount: 12.5, Currency: "EUR", Items: 1}
	send(s.cfg.Topics.Orders, []byte("after-hostile"), codec.AppendEventJSON(nil, &valid), "")

	_, reg := s.serveInProcess(t, s.cfg)
	waitCaughtUp(t, s.cfg.Kafka.Brokers, s.cfg.Kafka.Group, time.Minute, inputs(s.cfg)...)
	waitConfirmed(t, reg)

	dlq := consumeAll(t, s.cfg.Kafka.Brokers, s.cfg.Topics.DLQ)
	if len(dlq) != len(want) {
		t.Errorf("%d dead letters, want %d", len(dlq), len(want))
	}
	for _, r := range dlq {
		var o origin
		o.topic = headerValue(r, "winback.source.topic")
		fmt.Sscan(headerValue(r, "winback.source.partition"), &o.partition)
		fmt.Sscan(headerValue(r, "winback.source.offset"), &o.offset)
		w, ok := want[o]
		if !ok {
			t.Errorf("dead letter for %+v, which was not bad input", o)
			continue
		}
		if got := headerValue(r, "winback.reason"); got != w {
			t.Errorf("%+v: reason %q, want %q (error %q)", o, got, w, headerValue(r, "winback.error"))
		}
		if n := kafka.BatchSize(r); n > kafka.DefaultMaxBatchBytes {
			t.Errorf("%+v: dead letter of %d bytes", o, n)
		}
		if len(r.Key) > kafka.MaxDeadLetterKeyBytes {
			t.Errorf("%+v: dead letter key of %d bytes", o, len(r.Key))
		}
		delete(want, o)
	}
	for o, w := range want {
		t.Errorf("no dead letter for %+v (%s)", o, w)
	}
	if n := counter(t, reg, "winback_dlq_records_total"); int(n) != len(cases)+3-routed {
		t.Errorf("winback_dlq_records_total = %v, want %d", n, len(cases)+3-routed)
	}
	if routed == 0 {
		t.Error("the corpus has no key.missing or key.mismatch case")
	}
	if n := counter(t, reg, "winback_repartitioned_records_total"); int(n) != routed {
		t.Errorf("winback_repartitioned_records_total = %v, want %d (the key.missing and key.mismatch cases)", n, routed)
	}
	db := openCH(t, s.cfg.ClickHouse.DSN)
	var orders uint32
	if err := db.QueryRow(fmt.Sprintf("SELECT orders_total FROM %s.customer_aggregates FINAL WHERE customer_id = 'after-hostile'", s.cfg.ClickHouse.Database)).Scan(&orders); err != nil || orders != 1 {
		t.Errorf("the valid order after the hostile records: orders_total %d, err %v", orders, err)
	}
}
