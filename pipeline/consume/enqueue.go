package consume

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/pipeline/decode"
)

// Fetched records go into their task's queues here (decoded, bad ones
// too, wrong-task ones forwarded), and a full queue pauses its partition;
// merge.go applies them in event-time order.

// schemaPrefetcher is a Decoder that looks up writer schemas in a
// registry (*decode.Decoder).
type schemaPrefetcher interface {
	Prefetch(ctx context.Context, value []byte) error
}

// prefetchSchemas looks up the schemas of the fetched records that the
// decoder has not cached. It runs without r.mu, so that a registry outage
// holds up neither readiness, lookups nor rebalances, and it stops
// waiting prefetchGrace after ctx is done (a shutdown, or ClickHouse
// confirming while processing ahead: a healthy registry still answers a
// new id in that time, rather than the held work failing for it). A
// failed lookup is cached briefly by the decoder, and the record's decode
// reports it.
func (r *Runner) prefetchSchemas(ctx context.Context, fetches kgo.Fetches) {
	p, ok := r.dep.Decoder.(schemaPrefetcher)
	if !ok {
		return
	}
	var last []byte // the previous record's schema id
	var pctx context.Context
	cancel := func() {}
	defer func() { cancel() }()
	fetches.EachRecord(func(rec *kgo.Record) {
		v := rec.Value
		if len(v) < 5 || v[0] != 0 || bytes.Equal(v[1:5], last) {
			return
		}
		last = v[1:5]
		if pctx == nil {
			pctx, cancel = graceContext(ctx, prefetchGrace)
		}
		_ = p.Prefetch(pctx, v)
	})
}

// prefetchGrace is how long a schema lookup may go on after its context
// is done.
const prefetchGrace = time.Second

// enqueue decodes a fetch's records into task t's source queue. Bad input
// is queued too, to be dead-lettered in offset order. A valid record in the
// wrong task is forwarded at once (unless a committed transaction already
// forwarded it) and not queued.
func (r *Runner) enqueue(ctx context.Context, t *task, fp kgo.FetchTopicPartition, b barrier) {
	src, kind, _ := r.source(fp.Topic)
	s := &t.src[src]
	now := r.now()
	for _, rec := range fp.Records {
		if rec.Attrs.IsControl() {
			continue // a transaction marker: only its offset counts
		}
		if src == srcRepartition && t.skip.applied(rec.Offset) {
			continue // applied before the commit this task started from (held.go)
		}
		t.lastInput = now
		q := s.add()
		q.off, q.arrive = rec.Offset, rec.Timestamp.UnixMilli()
		if src == srcErasures {
			t.placeErasure(rec, q)
			continue
		}
		k := kind
		if src == srcRepartition {
			var ok bool
			if k, ok = kindOf(rec); !ok {
				q.rec, q.err = rec, &decode.Error{Reason: decode.ReasonFieldInvalid, Field: hdrKind, Err: fmt.Errorf("repartitioned record without a valid %s header", hdrKind)}
				continue
			}
		}
		t.place(src, rec, q, r.dep.Decoder.Decode(ctx, k, rec.Key, rec.Value, &q.ev))
		if q.rec == nil || q.fwd {
			s.maxTime, s.lastEvent = max(s.maxTime, q.ev.Time), now
		}
		if q.fwd {
			if rec.Offset >= t.fwdNext[src] {
				t.forward(q)
				t.fwdNext[src], t.forwarded = rec.Offset+1, true
			}
			s.dropLast()
		}
	}
	if src == srcRepartition {
		// Forwards from several tasks interleave by arrival; the
		// barrier guarantees those up to its time are all here, so
		// in event-time order they apply as the inputs would have.
		sort.Stable(byTime{&s.fifo})
	}
	s.next, s.hwm, s.seen = fp.Records[len(fp.Records)-1].Offset+1, fp.LastStableOffset, now
	if src == srcRepartition && s.next >= t.skip.next {
		t.skip = held{} // read past it: the queue says the rest
	}
	s.lag.Set(float64(max(s.hwm-s.next, 0)))
	s.noteUncommitted(fp)
	r.pause(t, src, b)
}

// ahead reports whether s has read more than fwdHorizon past the active
// forwarding barrier: it waits for the others (pause), and, as its next
// records are later than anything the barrier lets through, it does not
// hold them back either (pick).
func (s *source) ahead(b barrier) bool {
	return b.active && b.until != math.MinInt64 && b.until < math.MaxInt64-fwdHorizon.Milliseconds() &&
		s.maxTime > b.until+fwdHorizon.Milliseconds()
}

// fwdHorizon is how far past the forwarding barrier a task reads its
// inputs (and so forwards) while the barrier is active: it bounds what
// waits in the tasks' repartition queues.
const fwdHorizon = 6 * time.Hour

// pause pauses or resumes the fetching of t's source i: a full queue
// waits for the merge to drain it, and an input that ran too far past the
// forwarding barrier waits for the others. The repartition source is
// never paused: the barrier waits for it to be read.
func (r *Runner) pause(t *task, i int, b barrier) {
	s := &t.src[i]
	want := false
	if i < srcRepartition {
		want = s.len() > maxBuffered || (s.paused && s.len() >= maxBuffered/2) || s.ahead(b)
	}
	if want == s.paused {
		return
	}
	if want {
		r.sess.Client().PauseFetchPartitions(map[string][]int32{s.topic: {t.p}})
	} else {
		r.sess.Client().ResumeFetchPartitions(map[string][]int32{s.topic: {t.p}})
	}
	s.paused = want
}
