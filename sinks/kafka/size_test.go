package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/pipeline/decode"
	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/testenv"
)

// TestCheckSizeAgreesWithTheProducer produces records around the limit
// through a real franz-go producer to kfake: every record CheckSize accepts
// is produced, every one it refuses the producer refuses too, with
// MESSAGE_TOO_LARGE. So a record checked by CheckSize can never fail a
// transaction for its size.
func TestCheckSizeAgreesWithTheProducer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	k, err := testenv.StartKafka(ctx, testenv.KafkaOptions{Partitions: 1, Topics: []string{"out"}})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	const limit = 64 << 10
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addr()), kgo.ProducerBatchMaxBytes(limit), kgo.DefaultProduceTopic("out"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	// Records of every shape whose batch size is just below, at and just
	// above the limit: the value is sized to land on the target.
	shapes := []struct {
		name    string
		key     []byte
		headers []kgo.RecordHeader
	}{
		{"no key", nil, nil},
		{"customer key", []byte("c-000042"), nil},
		{"big key", bytes.Repeat([]byte("k"), 20<<10), nil},
		{"headers", []byte("c-1"), []kgo.RecordHeader{{Key: "a", Value: []byte("b")}, {Key: "traceparent", Value: bytes.Repeat([]byte("t"), 300)}}},
	}
	for _, sh := range shapes {
		for _, delta := range []int{-130, -1, 0, 1, 2, 200} {
			rec := &kgo.Record{Key: sh.key, Headers: sh.headers}
			rec.Value = make([]byte, limit-BatchSize(rec)+delta)
			// Varint widths can make the size step by more than one byte.
			for BatchSize(rec) > limit+delta && len(rec.Value) > 0 {
				rec.Value = rec.Value[:len(rec.Value)-1]
			}
			size := BatchSize(rec)
			checked := CheckSize(rec, limit)
			rec.Topic = "out"
			_, perr := cl.ProduceSync(ctx, rec).First()
			t.Logf("%s %+d: batch size %d, CheckSize %v, produce %v", sh.name, delta, size, checked, perr)
			// What CheckSize passes, the producer takes; what the producer
			// refuses, CheckSize refuses. CheckSize may be stricter by the
			// few bytes of framing that newer produce versions save.
			if checked == nil && perr != nil {
				t.Errorf("%s: size %d passes CheckSize but the producer says %v", sh.name, size, perr)
			}
			if perr != nil && !errors.Is(perr, kerr.MessageTooLarge) {
				t.Errorf("%s: producer error %v is not MESSAGE_TOO_LARGE", sh.name, perr)
			}
			if checked != nil && perr == nil && size > limit+4 {
				t.Errorf("%s: size %d fails CheckSize (%v) but the producer took it", sh.name, size, checked)
			}
			if (size <= limit) != (checked == nil) {
				t.Errorf("%s: size %d, limit %d, CheckSize %v", sh.name, size, limit, checked)
			}
			if delta >= 200 && perr == nil {
				t.Errorf("%s: the producer took %d bytes over a limit of %d: the test does not reach the limit", sh.name, size, limit)
			}
		}
	}
}

func TestCheckSizeError(t *testing.T) {
	rec := &kgo.Record{Topic: "winback-dlq", Value: make([]byte, DefaultMaxBatchBytes)}
	err := CheckSize(rec, 0) // the default limit
	var tl *TooLargeError
	if !errors.As(err, &tl) || tl.Topic != "winback-dlq" || tl.Limit != DefaultMaxBatchBytes || tl.Size != BatchSize(rec) {
		t.Fatalf("got %v (%+v)", err, tl)
	}
	if !errors.Is(err, kerr.MessageTooLarge) || !strings.Contains(err.Error(), "winback-dlq") {
		t.Errorf("error %q", err)
	}
	rec.Value = rec.Value[:DefaultMaxBatchBytes-200]
	if err := CheckSize(rec, 0); err != nil {
		t.Errorf("%d-byte value: %v", len(rec.Value), err)
	}
}

// TestHostileDeadLetters makes the dead letters of the records in issue 18
// that used to stall an instance for good: each must fit the producer's
// default limit, keep its source coordinates, and say what was cut.
func TestHostileDeadLetters(t *testing.T) {
	d := decode.NewDecoder(nil, decode.Options{})
	decodeErr := func(kind event.Kind, key, value []byte) error {
		var ev event.Event
		err := d.Decode(context.Background(), kind, key, value, &ev)
		if err == nil {
			t.Fatal("decoded a hostile record")
		}
		return err
	}
	now := time.Now().UnixMilli()
	longID := strings.Repeat("c", 510_000)
	unsub := fmt.Appendf(nil, `{"event_id":"e-1","customer_id":%q,"event_time":%d,"type":"UNSUBSCRIBED","campaign_id":"x"}`, longID, now)
	badValue := append([]byte(`{"event_id":`), bytes.Repeat([]byte("x"), 880<<10)...)
	manyHeaders := make([]kgo.RecordHeader, 5000)
	for i := range manyHeaders {
		manyHeaders[i] = kgo.RecordHeader{Key: "h" + strconv.Itoa(i), Value: bytes.Repeat([]byte("v"), 10)}
	}
	const valueCap = 900 << 10 // the default dlq_max_value_bytes
	cases := []struct {
		name     string
		src      *kgo.Record
		kind     event.Kind
		reason   decode.Reason
		keyCut   bool
		valueCut bool
	}{
		{"510 KB customer_id on an unsubscribe", &kgo.Record{Key: []byte(longID), Value: unsub}, event.KindEmail, decode.ReasonFieldTooLong, true, false},
		{"100 KiB key, 880 KiB bad value", &kgo.Record{Key: bytes.Repeat([]byte("k"), 100<<10), Value: badValue}, event.KindOrder, decode.ReasonJSONSyntax, true, false},
		{"1 MiB bad value, 100 KiB key", &kgo.Record{Key: bytes.Repeat([]byte("k"), 100<<10), Value: append(badValue, make([]byte, 170<<10)...)}, event.KindOrder, decode.ReasonValueTooLarge, true, true},
		{"5000 headers", &kgo.Record{Key: []byte("c-1"), Value: badValue, Headers: manyHeaders}, event.KindOrder, decode.ReasonJSONSyntax, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := c.src
			src.Topic, src.Partition, src.Offset, src.Timestamp = "email-events", 5, 123456, time.UnixMilli(now)
			err := decodeErr(c.kind, src.Key, src.Value)
			if r, _ := decode.ReasonOf(err); r != c.reason {
				t.Fatalf("reason %s, want %s (%v)", r, c.reason, err)
			}
			if BatchSize(src) <= DefaultMaxBatchBytes && len(src.Headers) == 0 {
				t.Fatalf("the source record (%d bytes) is not too big as a copy", BatchSize(src))
			}
			dl := DeadLetterRecord("winback-dlq", src, err, valueCap)
			if err := CheckSize(dl, DefaultMaxBatchBytes); err != nil {
				t.Fatal(err)
			}
			if n := BatchSize(dl); n > valueCap+DeadLetterOverhead {
				t.Errorf("batch size %d over the value cap + DeadLetterOverhead %d", n, valueCap+DeadLetterOverhead)
			}
			for k, want := range map[string]string{
				HeaderReason:          string(c.reason),
				HeaderSourceTopic:     "email-events",
				HeaderSourcePartition: "5",
				HeaderSourceOffset:    "123456",
			} {
				if got := header(t, dl, k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if c.keyCut {
				if len(dl.Key) != MaxDeadLetterKeyBytes || !bytes.HasPrefix(src.Key, dl.Key) || header(t, dl, HeaderSourceKeySize) != strconv.Itoa(len(src.Key)) {
					t.Errorf("key %d bytes, key_size %q", len(dl.Key), header(t, dl, HeaderSourceKeySize))
				}
			} else if !bytes.Equal(dl.Key, src.Key) {
				t.Errorf("key changed: %q", dl.Key)
			}
			if c.valueCut {
				if len(dl.Value) != valueCap || header(t, dl, HeaderSourceSize) != strconv.Itoa(len(src.Value)) {
					t.Errorf("value %d bytes, size %q", len(dl.Value), header(t, dl, HeaderSourceSize))
				}
			} else if !bytes.Equal(dl.Value, src.Value) {
				t.Errorf("value changed: %d bytes of %d", len(dl.Value), len(src.Value))
			}
			if len(src.Headers) > 0 {
				// The first source headers are kept, in order, as many as
				// fit MaxDeadLetterHeaderBytes; the count of the others is
				// in a header.
				dropped, _ := strconv.Atoi(header(t, dl, HeaderSourceHeadersDropped))
				kept := len(src.Headers) - dropped
				if dropped <= 0 || kept <= 0 {
					t.Fatalf("%d of %d headers dropped", dropped, len(src.Headers))
				}
				size := 0
				for i, h := range dl.Headers[len(dl.Headers)-kept:] {
					if h.Key != src.Headers[i].Key {
						t.Fatalf("kept header %d is %s, want %s", i, h.Key, src.Headers[i].Key)
					}
					size += len(h.Key) + len(h.Value) + 2
				}
				if size > MaxDeadLetterHeaderBytes || size+len(src.Headers[kept].Key)+len(src.Headers[kept].Value)+2 <= MaxDeadLetterHeaderBytes {
					t.Errorf("kept %d headers of %d bytes; the cap is %d", kept, size, MaxDeadLetterHeaderBytes)
				}
			}
			if header(t, dl, HeaderTruncated) != "true" {
				t.Error("no winback.truncated")
			}
			// The ClickHouse row is bounded the same way.
			row := DeadLetter(src, err, time.Now())
			if len(row.Key) > MaxDeadLetterKeyBytes || row.Size != len(src.Value) || row.Offset != 123456 {
				t.Errorf("row key %d bytes, size %d, offset %d", len(row.Key), row.Size, row.Offset)
			}
		})
	}
}
