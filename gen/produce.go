package gen

import (
	"context"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/pipeline/codec"
	"github.com/winback/winback/pipeline/event"
)

// Encoding says how Produce encodes valid records.
type Encoding string

const (
	// EncodingAvro is Confluent-framed Avro (magic 0, schema id, body).
	EncodingAvro Encoding = "avro"
	// EncodingJSON is codec.AppendEventJSON's JSON.
	EncodingJSON Encoding = "json"
	// EncodingMixed alternates: even records (counting every record of the
	// stream from 0) Avro, odd records JSON. A duplicate is encoded like
	// the record it repeats.
	EncodingMixed Encoding = "mixed"
)

// ParseEncoding checks an encoding name.
func ParseEncoding(s string) (Encoding, error) {
	switch e := Encoding(s); e {
	case EncodingAvro, EncodingJSON, EncodingMixed:
		return e, nil
	}
	return "", &ConfigError{"Encoding", fmt.Sprintf("%q; use avro, json or mixed", s)}
}

// Topics names the three input topics.
type Topics struct{ Orders, Email, Support string }

// DefaultTopics are winback's default input topic names.
func DefaultTopics() Topics {
	return Topics{Orders: "orders", Email: "email-events", Support: "support-events"}
}

// For returns the topic of kind k, or "".
func (t Topics) For(k event.Kind) string {
	switch k {
	case event.KindOrder:
		return t.Orders
	case event.KindEmail:
		return t.Email
	case event.KindSupport:
		return t.Support
	}
	return ""
}

// Kinds maps each topic to its kind, as codec.NewEventEncoder wants it
// inverted: kind → topic.
func (t Topics) Kinds() map[event.Kind]string {
	return map[event.Kind]string{event.KindOrder: t.Orders, event.KindEmail: t.Email, event.KindSupport: t.Support}
}

// AvroEncoder encodes an event as Confluent-framed Avro;
// *codec.EventEncoder is one.
type AvroEncoder interface {
	Avro(dst []byte, ev *event.Event) ([]byte, error)
}

// Source is a stream of records: a *Generator, or one filtered by its
// caller (the benchmark keeps the e-mail of only some customers).
type Source interface {
	Each(fn func(r *Record) error) error
}

// progressEvery is how many records Produce hands to the client between
// two progress calls.
const progressEvery = 10_000

// Produce writes g's records (a *Generator or any Source) to the three topics, keyed by customer_id:
// valid records (and duplicates) encoded per encoding, with enc for Avro
// (enc may be nil with EncodingJSON) and codec.AppendEventJSON for JSON;
// malformed records raw. It returns once every record is acknowledged,
// or at the first error (from the client, enc or ctx).
//
// Co-partitioning by customer_id needs client's partitioner to hash keys
// like Kafka's Java client (murmur2): kgo's default partitioner and
// kgo.StickyKeyPartitioner(nil) both do. Produce does not override it.
//
// progress, if not nil, is called from Produce's goroutine with the number
// of records handed to the client so far, every 10 000 records and once
// at the end with the total acknowledged.
func Produce(ctx context.Context, g Source, client *kgo.Client, topics Topics, enc AvroEncoder, encoding Encoding, progress func(n int)) (Stats, error) {
	var st Stats
	if _, err := ParseEncoding(string(encoding)); err != nil {
		return st, err
	}
	if encoding != EncodingJSON && enc == nil {
		return st, &ConfigError{"Encoding", fmt.Sprintf("%s needs an Avro encoder", encoding)}
	}
	for _, k := range []event.Kind{event.KindOrder, event.KindEmail, event.KindSupport} {
		if topics.For(k) == "" {
			return st, &ConfigError{"Topics", fmt.Sprintf("no topic for %v events", k)}
		}
	}

	var (
		mu       sync.Mutex
		firstErr error
	)
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			if firstErr == nil {
				firstErr = fmt.Errorf("gen: producing to %s: %w", r.Topic, err)
			}
			mu.Unlock()
		}
	}
	failed := func() error {
		mu.Lock()
		defer mu.Unlock()
		return firstErr
	}

	n := 0
	var lastValue []byte
	var lastAvro bool
	err := g.Each(func(r *Record) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec := &kgo.Record{Topic: topics.For(r.Kind), Key: []byte(r.Event.CustomerID)}
		switch {
		case r.Malformed != nil:
			rec.Value = rawValue(r.Malformed)
		case r.Duplicate:
			// The same bytes again, as a retrying producer sends them.
			rec.Value = lastValue
			if lastAvro {
				st.Avro++
			} else {
				st.JSON++
			}
		default:
			avro := encoding == EncodingAvro || (encoding == EncodingMixed && n%2 == 0)
			if avro {
				v, err := enc.Avro(nil, &r.Event)
				if err != nil {
					return fmt.Errorf("gen: encoding %s as Avro: %w", r.Event.EventID, err)
				}
				rec.Value = v
				st.Avro++
			} else {
				rec.Value = codec.AppendEventJSON(nil, &r.Event)
				st.JSON++
			}
			lastValue, lastAvro = rec.Value, avro
		}
		client.Produce(ctx, rec, promise)
		st.add(r)
		n++
		if n%progressEvery == 0 {
			if err := failed(); err != nil {
				return err
			}
			if progress != nil {
				progress(n)
			}
		}
		return nil
	})
	if ferr := client.Flush(ctx); ferr != nil && err == nil {
		err = fmt.Errorf("gen: flushing: %w", ferr)
	}
	if perr := failed(); perr != nil && err == nil {
		err = perr
	}
	if err == nil && progress != nil {
		progress(n)
	}
	return st, err
}

// rawValue copies a malformed record's bytes, never to nil: an empty value
// is not a null value (a tombstone, which some consumers skip).
func rawValue(b []byte) []byte { return append(make([]byte, 0, len(b)), b...) }
