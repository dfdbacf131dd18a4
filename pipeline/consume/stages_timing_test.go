package consume

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/winback/winback/gen"
	"github.com/winback/winback/pipeline/codec"
	"github.com/winback/winback/pipeline/decode"
	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/lapse"
)

// avroStream is a generated stream encoded as producers send it: each
// valid record (duplicates included, malformed ones left out) as
// Confluent-framed Avro, keyed by customer id. Keys and values sit back to
// back in one arena, so millions of records cost the GC nothing to scan.
type avroStream struct {
	arena []byte
	recs  []avroRec
	dec   *decode.Decoder
	now   time.Time // wall time after the stream's end
}

type avroRec struct {
	off    uint32 // key, then value
	keyLen uint8
	kind   event.Kind
	valLen uint16
}

func (s *avroStream) record(i int) (k event.Kind, key, val []byte) {
	r := &s.recs[i]
	key = s.arena[r.off : r.off+uint32(r.keyLen)]
	v := r.off + uint32(r.keyLen)
	return r.kind, key, s.arena[v : v+uint32(r.valLen)]
}

var (
	streamOnce sync.Once
	stream     *avroStream
	streamErr  error
)

// benchStream returns the stream of BenchmarkDecodeApply, built once per
// process so that -count does not generate it again.
func benchStream(b *testing.B, customers, days int) *avroStream {
	b.Helper()
	streamOnce.Do(func() { stream, streamErr = newAvroStream(customers, days) })
	if streamErr != nil {
		b.Fatal(streamErr)
	}
	return stream
}

func newAvroStream(customers, days int) (*avroStream, error) {
	ctx := context.Background()
	g, err := gen.New(gen.Config{Customers: customers, Days: days, Seed: 1})
	if err != nil {
		return nil, err
	}
	// The registry is only needed to hand out the schema ids and for the
	// decoder's first lookup of each; the decoder caches its plans.
	fake := srfake.New()
	cl, err := sr.NewClient(sr.URLs(fake.URL()))
	if err != nil {
		return nil, err
	}
	enc, err := codec.NewEventEncoder(ctx, cl, gen.DefaultTopics().Kinds())
	if err != nil {
		return nil, err
	}
	_, end := g.Range()
	s := &avroStream{now: end.Add(time.Hour)}
	s.dec = decode.NewDecoder(decode.SchemaRegistry(cl), decode.Options{Now: func() time.Time { return s.now }})
	err = g.Each(func(r *gen.Record) error {
		if r.Malformed != nil {
			return nil
		}
		off := len(s.arena)
		s.arena = append(s.arena, r.Event.CustomerID...)
		if s.arena, err = enc.Avro(s.arena, &r.Event); err != nil {
			return err
		}
		n := len(r.Event.CustomerID)
		s.recs = append(s.recs, avroRec{off: uint32(off), keyLen: uint8(n), kind: r.Kind, valLen: uint16(len(s.arena) - off - n)})
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Look every schema up once, then the registry can go.
	var ev event.Event
	for _, k := range []event.Kind{event.KindOrder, event.KindEmail, event.KindSupport} {
		for i := range s.recs {
			if s.recs[i].kind == k {
				kind, key, val := s.record(i)
				if err := s.dec.Decode(ctx, kind, key, val, &ev); err != nil {
					return nil, err
				}
				break
			}
		}
	}
	fake.Close()
	return s, nil
}

var sourceOf = [...]int{event.KindOrder: lapse.SourceOrders, event.KindEmail: lapse.SourceEmail, event.KindSupport: lapse.SourceSupport}

// BenchmarkDecodeApply is "decode + window + signals" of one task, the
// way the runner does it: the real decoder turns a fetch's worth of
// Confluent-framed Avro records into events in a task queue (enqueue), and
// they are popped and applied to a lapse.Engine in order (drain), with the
// customer state of the next events probed ahead (probe=true) or not. One
// op is one record. The stream is 60 days of gen's archetypes over 100k
// customers (about 4.5M records, 0.1 % duplicates); the first 45 days are
// applied before the timer starts, so the customers have a history, and
// the last 15 days (about 1.1M records) are measured. If they run out, the
// engine is rebuilt with the timer stopped. The sinks and the changelog
// are left out; TakeDirty runs every 4096 records, as the runner takes the
// changed customers after each batch.
func BenchmarkDecodeApply(b *testing.B) {
	for _, probe := range []bool{false, true} {
		b.Run(fmt.Sprintf("probe=%t", probe), func(b *testing.B) { benchDecodeApply(b, probe) })
	}
}

func benchDecodeApply(b *testing.B, probe bool) {
	const customers, days, warmDays = 100_000, 60, 45
	const fetch = 1024 // records per fetched partition
	s := benchStream(b, customers, days)
	ctx := context.Background()
	warmEnd := gen.DefaultStart.Add(warmDays * 24 * time.Hour).UnixMilli()
	var (
		eng  *lapse.Engine
		q    fifo
		out  []event.Trigger
		i    int
		kind []event.Kind // of the queued records
	)
	enqueue := func() {
		kind = kind[:0]
		for end := min(i+fetch, len(s.recs)); i < end; i++ {
			k, key, val := s.record(i)
			if err := s.dec.Decode(ctx, k, key, val, &q.add().ev); err != nil {
				b.Fatal(err)
			}
			kind = append(kind, k)
		}
	}
	// apply applies the next queued event and reports its event time.
	apply := func(j int) int64 {
		e := q.pop()
		if probe {
			probeAhead(eng, &q)
		}
		out, _, _ = eng.Apply(out[:0], sourceOf[kind[j]], &e.ev, s.now)
		if (i-q.len())&4095 == 0 {
			eng.TakeDirty(func(*lapse.Customer) {})
		}
		return e.ev.Time
	}
	reset := func() {
		eng = lapse.NewEngine(lapse.DefaultConfig(), 3, s.now)
		q, i = fifo{}, 0
		for t := int64(0); t < warmEnd; {
			enqueue()
			for j := range kind {
				t = apply(j)
			}
		}
	}
	reset()
	b.ReportAllocs()
	j := 0
	for b.Loop() {
		if q.len() == 0 {
			if i == len(s.recs) {
				b.StopTimer()
				reset()
				b.StartTimer()
			}
			enqueue()
			j = 0
		}
		apply(j)
		j++
	}
	b.ReportMetric(float64(eng.Len()), "customers")
}
