package gen_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/winback/winback/gen"
	"github.com/winback/winback/pipeline/codec"
	"github.com/winback/winback/pipeline/decode"
	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/testenv"
)

// notFound is a registry that knows no schema.
type notFound struct{}

func (notFound) SchemaByID(context.Context, int) (string, error) {
	return "", fmt.Errorf("registry says: %w", decode.ErrSchemaNotFound)
}

// newDecoder returns a decoder whose clock is the end of g's data, so that
// generated event times are not in its future.
func newDecoder(g *gen.Generator, reg decode.Registry) *decode.Decoder {
	_, to := g.Range()
	return decode.NewDecoder(reg, decode.Options{Now: func() time.Time { return to }})
}

// TestMalformedReachDLQ checks every record against pipeline/decode: valid
// records (JSON and Avro) decode to the event generated, and every
// malformed record is rejected with its kind's reason.
func TestMalformedReachDLQ(t *testing.T) {
	ctx := context.Background()
	g := newGen(t, gen.Config{Customers: 200, Days: 90, Seed: 5, MalformedShare: 0.05})
	fake := srfake.New()
	defer fake.Close()
	cl, err := sr.NewClient(sr.URLs(fake.URL()))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := codec.NewEventEncoder(ctx, cl, gen.DefaultTopics().Kinds())
	if err != nil {
		t.Fatal(err)
	}
	dec := newDecoder(g, decode.SchemaRegistry(cl))
	decNoIDs := newDecoder(g, notFound{})
	kinds := map[string]int{}
	valid := 0
	var got event.Event
	var buf []byte
	err = g.Each(func(r *gen.Record) error {
		key := []byte(r.Event.CustomerID)
		if r.Malformed != nil {
			d := dec
			if r.MalformedKind == gen.MalformedAvroUnknownSchema {
				d = decNoIDs
			}
			kinds[r.MalformedKind]++
			err := d.Decode(ctx, r.Kind, key, r.Malformed, &got)
			reason, ok := decode.ReasonOf(err)
			if want := gen.MalformedReason(r.MalformedKind); !ok || reason != want {
				return fmt.Errorf("malformed %s %q: got %v, want reason %s", r.MalformedKind, r.Malformed, err, want)
			}
			return nil
		}
		valid++
		buf = codec.AppendEventJSON(buf[:0], &r.Event)
		if err := dec.Decode(ctx, r.Kind, key, buf, &got); err != nil {
			return fmt.Errorf("JSON of %+v: %w", r.Event, err)
		}
		if got != r.Event {
			return fmt.Errorf("JSON round trip: got %+v, want %+v", got, r.Event)
		}
		if buf, err = enc.Avro(buf[:0], &r.Event); err != nil {
			return err
		}
		if err := dec.Decode(ctx, r.Kind, key, buf, &got); err != nil {
			return fmt.Errorf("Avro of %+v: %w", r.Event, err)
		}
		if got != r.Event {
			return fmt.Errorf("Avro round trip: got %+v, want %+v", got, r.Event)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d valid records, malformed: %v", valid, kinds)
	if valid < 10000 {
		t.Errorf("only %d valid records", valid)
	}
	for _, k := range gen.MalformedKinds() {
		if kinds[k] == 0 {
			t.Errorf("no %s record", k)
		}
		if gen.MalformedReason(k) == "" {
			t.Errorf("%s has no reason", k)
		}
	}
}

// TestProduce produces a small stream to kfake with every encoding and
// reads it back: the counts per topic match, every record of a customer is
// on the partition murmur2 gives its key in all three topics, and the
// values decode as Produce says they were encoded.
func TestProduce(t *testing.T) {
	topics := gen.Topics{Orders: "o", Email: "e", Support: "s"}
	for _, encoding := range []gen.Encoding{gen.EncodingAvro, gen.EncodingJSON, gen.EncodingMixed} {
		t.Run(string(encoding), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			k := testenv.NewKafka(t, topics.Orders, topics.Email, topics.Support)
			reg := testenv.NewRegistry(t)
			rcl, err := sr.NewClient(sr.URLs(reg.URL()))
			if err != nil {
				t.Fatal(err)
			}
			enc, err := codec.NewEventEncoder(ctx, rcl, topics.Kinds())
			if err != nil {
				t.Fatal(err)
			}
			g := newGen(t, gen.Config{Customers: 60, Days: 45, Seed: 9, MalformedShare: 0.02, DuplicateShare: 0.02})
			cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addr()))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			var calls []int
			st, err := gen.Produce(ctx, g, cl, topics, enc, encoding, func(n int) { calls = append(calls, n) })
			if err != nil {
				t.Fatal(err)
			}
			if len(calls) == 0 || calls[len(calls)-1] != st.Records {
				t.Errorf("progress calls %v, want the last to be %d", calls, st.Records)
			}
			t.Logf("%+v", st)
			if st.Malformed == 0 || st.Duplicates == 0 {
				t.Errorf("stats %+v: no malformed or duplicate records", st)
			}
			switch encoding {
			case gen.EncodingAvro:
				if st.JSON != 0 || st.Avro == 0 {
					t.Errorf("avro: %d Avro, %d JSON", st.Avro, st.JSON)
				}
			case gen.EncodingJSON:
				if st.Avro != 0 || st.JSON == 0 {
					t.Errorf("json: %d Avro, %d JSON", st.Avro, st.JSON)
				}
			case gen.EncodingMixed:
				if d := st.Avro - st.JSON; d < -st.Duplicates-1 || d > st.Duplicates+1 {
					t.Errorf("mixed: %d Avro, %d JSON", st.Avro, st.JSON)
				}
			}
			if st.Avro+st.JSON+st.Malformed != st.Records {
				t.Errorf("stats do not add up: %+v", st)
			}

			cons, err := kgo.NewClient(kgo.SeedBrokers(k.Addr()), kgo.ConsumeTopics(topics.Orders, topics.Email, topics.Support),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			if err != nil {
				t.Fatal(err)
			}
			defer cons.Close()
			dec := newDecoder(g, decode.SchemaRegistry(rcl))
			ref := kgo.StickyKeyPartitioner(nil)
			byTopic := map[string]int{}
			var avro, malformed int
			var ev event.Event
			for n := 0; n < st.Records; {
				fs := cons.PollFetches(ctx)
				if err := fs.Err0(); err != nil {
					t.Fatalf("after %d of %d records: %v", n, st.Records, err)
				}
				fs.EachRecord(func(r *kgo.Record) {
					n++
					byTopic[r.Topic]++
					if want := int32(ref.ForTopic(r.Topic).Partition(r, int(testenv.DefaultPartitions))); r.Partition != want {
						t.Errorf("%s key %s on partition %d, murmur2 gives %d", r.Topic, r.Key, r.Partition, want)
					}
					kind := map[string]event.Kind{topics.Orders: event.KindOrder, topics.Email: event.KindEmail, topics.Support: event.KindSupport}[r.Topic]
					if err := dec.Decode(ctx, kind, r.Key, r.Value, &ev); err != nil {
						malformed++
						return
					}
					if len(r.Value) > 0 && r.Value[0] == 0 {
						avro++
					}
				})
			}
			for kind, topic := range map[string]string{"order": topics.Orders, "email": topics.Email, "support": topics.Support} {
				if byTopic[topic] != st.ByKind[kind] {
					t.Errorf("topic %s: read %d records, produced %d", topic, byTopic[topic], st.ByKind[kind])
				}
			}
			if malformed != st.Malformed || avro != st.Avro {
				t.Errorf("read back %d malformed and %d Avro records, produced %d and %d", malformed, avro, st.Malformed, st.Avro)
			}
		})
	}
}

func TestProduceErrors(t *testing.T) {
	ctx := context.Background()
	g := newGen(t, gen.Config{Customers: 5, Days: 10})
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	f := func(topics gen.Topics, enc gen.AvroEncoder, encoding gen.Encoding) {
		t.Helper()
		if _, err := gen.Produce(ctx, g, cl, topics, enc, encoding, nil); !errors.Is(err, gen.ErrConfig) {
			t.Errorf("%v %v: got %v, want a config error", topics, encoding, err)
		}
	}
	f(gen.DefaultTopics(), nil, "protobuf")
	f(gen.DefaultTopics(), nil, gen.EncodingAvro)
	f(gen.DefaultTopics(), nil, gen.EncodingMixed)
	f(gen.Topics{Orders: "o", Email: "e"}, nil, gen.EncodingJSON)

	// A cancelled context stops Produce with the context's error.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := gen.Produce(cctx, g, cl, gen.DefaultTopics(), nil, gen.EncodingJSON, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v", err)
	}
}

func TestParseEncoding(t *testing.T) {
	for _, s := range []string{"avro", "json", "mixed"} {
		if e, err := gen.ParseEncoding(s); err != nil || string(e) != s {
			t.Errorf("%s: %v %v", s, e, err)
		}
	}
	if _, err := gen.ParseEncoding("AVRO"); err == nil {
		t.Error("AVRO accepted")
	}
}
