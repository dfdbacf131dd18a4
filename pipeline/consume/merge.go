package consume

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/pipeline/decode"
	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/lapse"
	"github.com/winback/winback/pipeline/merge"
)

// A task reads three input partitions, and fetches return them in whatever
// interleaving the network gives. Applying events in that order would make
// a customer's signals depend on it, and a replay after a crash could then
// emit different triggers. So each task buffers its sources and applies
// events in event-time order (ties: source, then offset) with the pure
// merge of pipeline/merge (shared with backtest and evaluate), the way
// Kafka Streams picks the lowest timestamp among a task's partition heads.
// An empty source holds the others back while it may still have earlier
// data: until it has fetched up to the last stable offset it last saw,
// from its own fetches or from any fetch that answered its partition
// without records (noteEnd, Kafka Streams' KIP-695 rule). Data that the
// broker did not have yet cannot be waited for; an event that comes after
// its customer's later days still lands in its own day's customer_daily
// row (lapse's lateDay).
//
// This file has the sources, their queues and the drain; enqueue.go fills
// the queues (and pauses full ones), and heads.go starts the sources and
// commits, for each input partition, its first unapplied record, so that
// buffered records are read again after a crash.

const (
	// taskIdle bounds how long an empty source whose high watermark is
	// unknown holds the others back.
	taskIdle    = 10 * time.Second
	maxBuffered = 20000 // per source: past this, fetching of the partition pauses
)

type queued struct {
	ev     event.Event // an erasure's: CustomerID, and Time (its timestamp)
	erase  bool        // an erasure request (erase.go)
	rec    *kgo.Record // set for bad input, to dead-letter
	err    error       // why it is bad
	fwd    bool        // rec is valid but in the wrong task: forward it
	off    int64
	arrive int64 // record timestamp, Unix ms
	probe  lapse.Probe
}

type source struct {
	fifo
	topic  string
	next   int64 // offset after the last record fetched; -1 unknown
	hwm    int64 // last stable offset at the last fetch (read_committed's end); -1 unknown
	seen   time.Time
	paused bool
	// maxTime is the newest event time fetched (math.MinInt64: none), the
	// task's forwarding frontier on this source; lastEvent is the wall
	// time of the last valid record fetched (task.floor).
	maxTime   int64
	lastEvent time.Time
	// the partition's series of winback_events_total and
	// winback_consumer_lag_records, looked up once
	ok, duplicates, late prometheus.Counter
	lag, uncommitted     prometheus.Gauge
}

// fifo is a source's queue of decoded records: a merge.Queue, which
// allocates nothing once at its peak size (bounded by the pause at
// maxBuffered plus a fetch), under the names this package uses.
type fifo struct{ q merge.Queue[queued] }

func (f *fifo) len() int         { return f.q.Len() }
func (f *fifo) add() *queued     { return f.q.Add() } // a zero entry, to fill in place
func (f *fifo) dropLast()        { f.q.DropLast() }   // takes back the last add
func (f *fifo) peek() *queued    { return f.q.Peek() }
func (f *fifo) at(i int) *queued { return f.q.At(i) }
func (f *fifo) pop() *queued     { return f.q.Pop() } // valid until the next add

// minOffset returns the lowest offset queued, for the repartition queue,
// which is kept in event-time order (an input queue's head has it).
func (f *fifo) minOffset() int64 {
	off := f.peek().off
	for i := 1; i < f.len(); i++ {
		off = min(off, f.at(i).off)
	}
	return off
}

// byTime sorts a queue by event time, then input kind; bad input (no
// event time) goes first. Stable: ties keep their arrival order.
type byTime struct{ f *fifo }

func (b byTime) Len() int { return b.f.len() }
func (b byTime) Less(i, j int) bool {
	x, y := b.f.at(i), b.f.at(j)
	if (x.rec != nil) != (y.rec != nil) {
		return x.rec != nil
	}
	if x.ev.Time != y.ev.Time {
		return x.ev.Time < y.ev.Time
	}
	return lapse.SourceOf(x.ev.Kind) < lapse.SourceOf(y.ev.Kind)
}
func (b byTime) Swap(i, j int) {
	x, y := b.f.at(i), b.f.at(j)
	*x, *y = *y, *x
}

// probeDistance is where in a queue probeAhead takes each step of an
// event's lapse.Probe: the head (the next event of the source to apply)
// takes its last step, the event 7 places behind it its first. The steps
// are spaced out so that each one's prefetches have arrived, while other
// events were applied, by the time the next step reads them.
var probeDistance = [lapse.ProbeSteps]int{7, 3, 1, 0}

// probeAhead advances the probes of the events in f that eng will apply
// soon; the runner calls it after each pop, so every event meets each
// distance once. Bad input is not applied and is left alone.
func probeAhead(eng *lapse.Engine, f *fifo) {
	n := f.len()
	for _, d := range probeDistance {
		if d < n {
			if q := f.at(d); q.rec == nil {
				eng.Probe(&q.probe, q.ev.CustomerID)
			}
		}
	}
}

// mayHoldBack reports whether an empty source may still deliver an event
// earlier than the others' heads (merge.Position.Waits): it has not
// fetched up to the high watermark it last saw. Only a source whose high
// watermark is unknown (no fetch and no listing yet) stops holding back
// after taskIdle.
func (s *source) mayHoldBack(now time.Time) bool {
	return s.len() == 0 && merge.Position{Next: s.next, End: s.hwm, Seen: s.seen}.Waits(now, taskIdle)
}

// noteEnd takes the end offset of one of t's input partitions from a
// fetch that brought none of its records: the broker answers every
// partition of a fetch with its last stable offset, also when it returns
// none of its records (they did not fit, or came after the response was
// cut). Until the source has read up to it, it holds the others back
// (mayHoldBack): Kafka Streams' rule (KIP-695, max.task.idle.ms = 0) of
// never processing ahead of an input that the broker shows has data not
// yet fetched. It costs no request: the end offset comes with the fetch
// that brought the other inputs' records, and is noted before they are
// applied.
func (r *Runner) noteEnd(t *task, fp kgo.FetchTopicPartition) {
	src, _, ok := r.source(fp.Topic)
	if !ok {
		return
	}
	t.src[src].noteEnd(fp.LastStableOffset, r.now())
	t.src[src].noteUncommitted(fp)
}

// noteUncommitted sets s's gauge of records behind an open transaction.
func (s *source) noteUncommitted(fp kgo.FetchTopicPartition) {
	if s.uncommitted != nil && fp.LastStableOffset >= 0 {
		s.uncommitted.Set(float64(max(fp.HighWatermark-fp.LastStableOffset, 0)))
	}
}

func (s *source) noteEnd(lso int64, now time.Time) {
	if lso < 0 {
		return // not answered (an old broker): keep what is known
	}
	s.hwm, s.seen = lso, now
	if s.lag != nil {
		s.lag.Set(float64(max(s.hwm-s.next, 0)))
	}
}

// drain applies t's buffered events in event-time order for as long as no
// source may still deliver an earlier one, and the open transaction's
// budget (max_poll_records) lasts: records that waited in the queues over several polls
// (while an input held the merge back) are spread over transactions of at
// most max_poll_records, and stay queued, uncommitted, until applied.
func (r *Runner) drain(t *task, b barrier) {
	now := r.now()
	t.noteDrained(b)
	for {
		i := t.pick(now, b)
		if i < 0 || !r.spend() {
			break
		}
		s := &t.src[i]
		q := s.pop()
		probeAhead(t.eng, &s.fifo)
		if q.erase {
			t.erase(q)
			s.ok.Inc()
			continue
		}
		if q.rec != nil {
			if reason, ok := decode.ReasonOf(q.err); ok && reason.Transient() {
				// The record may be fine (the registry is down):
				// abort and replay later rather than dead-letter it.
				t.out.fail(fmt.Errorf("%s/%d@%d: %w", q.rec.Topic, q.rec.Partition, q.rec.Offset, q.err))
				return
			}
			t.deadLetter(q.rec, q.err)
			continue
		}
		trigs, dup, late := t.eng.Apply(t.trigBuf[:0], lapse.SourceOf(q.ev.Kind), &q.ev, now)
		switch {
		case dup:
			r.m.duplicates.Inc()
			s.duplicates.Inc()
		case late:
			r.m.lateEvents.Inc()
			s.late.Inc()
		default:
			s.ok.Inc()
		}
		for j := range trigs {
			t.emit(&trigs[j], q.arrive)
		}
		t.trigBuf = trigs[:0]
	}
	for i := range t.src {
		r.pause(t, i, b)
	}
}

// spend takes one record from the open transaction's budget (shared by
// the tasks, which drain in parallel); false when it is spent.
func (r *Runner) spend() bool {
	return !r.budgeted || r.budget.Add(-1) >= 0
}

// dropTask forgets task p and its buffers; fetching resumes at the
// committed offsets. It runs with r.mu held.
func (r *Runner) dropTask(p int32) {
	t := r.tasks[p]
	if t == nil {
		return
	}
	for i := range t.src {
		if t.src[i].paused {
			r.sess.Client().ResumeFetchPartitions(map[string][]int32{t.src[i].topic: {p}})
		}
	}
	delete(r.tasks, p)
}

// pick returns the source whose head is to be applied now, or -1
// (merge.Pick). Ties in event time go to the lower input kind (orders,
// email, support, then erasures), whether the event came directly or
// through the repartition topic. While the forwarding barrier b is
// active, nothing is applied before the repartition source has read what
// was committed when b was taken, and no event after b.until.
func (t *task) pick(now time.Time, b barrier) int {
	if t.forwardsPending(b) {
		return -1
	}
	var lanes [nSources]merge.Lane
	for i := range t.src {
		s := &t.src[i]
		if lanes[i].Len = s.len(); lanes[i].Len == 0 {
			// An input paused for running ahead of the barrier would
			// otherwise hold its task back until the barrier passes it,
			// and the barrier may be this task's own other input,
			// waiting for the merge to drain it: a deadlock. (The
			// repartition source is never paused; fwdWait covers it.)
			lanes[i].Wait = s.mayHoldBack(now) && (i == srcRepartition || !s.ahead(b))
			continue
		}
		h := s.peek()
		lanes[i].Head = merge.Key{Time: h.ev.Time, Rank: h.rank(), Bad: h.rec != nil}
	}
	i := merge.Pick(lanes[:])
	if i >= 0 && b.active && !lanes[i].Head.Bad && lanes[i].Head.Time > b.until {
		return -1
	}
	return i
}
