package consume

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkRoute is what a record costs winback on the direct path and
// through the repartition topic, one op per record, on Confluent Avro
// records of a generated stream: direct = decode and queue in its own
// task; repartitioned = decode, forward (build the record with its
// headers) at the task that fetched it, then decode again and queue, in
// event-time order, at the customer's task. The Kafka write and read of
// the forwarded record are not in it (the end-to-end harness has the
// broker's share).
func BenchmarkRoute(b *testing.B) {
	s, err := newAvroStream(2000, 30)
	if err != nil {
		b.Fatal(err)
	}
	const fetch = 1024
	ctx := context.Background()
	newRunner := func(nparts int) *Runner {
		return &Runner{env: &env{
			cfg: Config{Topics: Topics{Orders: "orders", Email: "email-events", Support: "support-events", Repartition: "rep"}},
			dep: Deps{Decoder: s.dec, Outputs: testOutputs}, m: newMetrics(nil), now: func() time.Time { return s.now },
			keys: Partitioner(), nparts: nparts,
		}}
	}
	newTask := func(r *Runner, p int32) *task {
		t := &task{env: r.env, p: p}
		for i, topic := range []string{"orders", "email-events", "support-events", "rep"} {
			t.src[i] = source{topic: topic, next: 0, hwm: 0}
			t.src[i].lag = r.m.consumerLag.WithLabelValues(topic, "0")
		}
		return t
	}
	topicOf := map[int]string{0: "orders", 1: "email-events", 2: "support-events"}
	// fetches groups the stream's records by topic, as fetches come.
	fetches := func(p int32) []kgo.FetchTopicPartition {
		var out []kgo.FetchTopicPartition
		cur := map[string]*kgo.FetchTopicPartition{}
		for i := range s.recs {
			k, key, val := s.record(i)
			topic := topicOf[sourceOf[k]]
			fp := cur[topic]
			if fp == nil || len(fp.Records) == fetch {
				if fp != nil {
					out = append(out, *fp)
				}
				fp = &kgo.FetchTopicPartition{Topic: topic}
				fp.Partition = p
				cur[topic] = fp
			}
			fp.Records = append(fp.Records, &kgo.Record{Topic: topic, Partition: p, Offset: int64(len(fp.Records)), Key: key, Value: val})
		}
		for _, fp := range cur {
			out = append(out, *fp)
		}
		return out
	}
	drain := func(t *task) {
		for i := range t.src {
			for t.src[i].len() > 0 {
				t.src[i].pop()
			}
		}
	}

	b.Run("path=direct", func(b *testing.B) {
		r := newRunner(1) // one partition: every record is in its task
		t := newTask(r, 0)
		fs := fetches(0)
		b.ReportAllocs()
		n, i := 0, 0
		for b.Loop() {
			if n == 0 {
				fp := fs[i%len(fs)]
				i++
				r.enqueue(ctx, t, fp, barrier{})
				n = len(fp.Records)
				drain(t)
			}
			n--
		}
	})
	b.Run("path=repartitioned", func(b *testing.B) {
		// Records fetched on the wrong partition of two: all of them
		// forwarded to the customer's task, which reads them back.
		r := newRunner(2)
		origin, home := newTask(r, 0), newTask(r, 1)
		var fs []kgo.FetchTopicPartition
		for _, fp := range fetches(0) {
			var keep []*kgo.Record
			for _, rec := range fp.Records {
				if PartitionOf(string(rec.Key), 2) == 1 {
					keep = append(keep, rec)
				}
			}
			fp.Records = keep
			if len(keep) > 0 {
				fs = append(fs, fp)
			}
		}
		b.ReportAllocs()
		n, i := 0, 0
		for b.Loop() {
			if n == 0 {
				fp := fs[i%len(fs)]
				i++
				origin.fwdNext = [srcRepartition]int64{}
				r.enqueue(ctx, origin, fp, barrier{})
				back := kgo.FetchTopicPartition{Topic: "rep"}
				back.Partition = 1
				for j, rec := range origin.out.recs {
					rec.Offset = int64(j)
					back.Records = append(back.Records, rec)
				}
				origin.out.recs = origin.out.recs[:0]
				r.enqueue(ctx, home, back, barrier{})
				n = len(fp.Records)
				drain(home)
			}
			n--
		}
	})
}
