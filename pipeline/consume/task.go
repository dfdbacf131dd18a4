package consume

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/pipeline/codec"
	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/lapse"
)

// task is partition p of the inputs and the changelog: its engine, its
// queues of fetched records, and its outputs since they were last
// collected. Tasks run in parallel, each touching only itself and the
// shared env.
type task struct {
	*env
	p   int32
	eng *lapse.Engine
	src [nSources]source // orders, email, support, repartition, erasures: buffered in event-time order
	// snapshot bytes and count written or restored, for the state_bytes
	// estimate (average snapshot size × customers)
	snapBytes, snaps int

	// Tasks are processed in parallel: each keeps its own scratch and
	// outputs, which collect moves to the transaction in partition order.
	fetched []kgo.FetchTopicPartition // this poll's, for enqueue
	out     taskOut
	trigBuf []event.Trigger
	arena   arena // changelog records

	lastInput time.Time // wall time of the last input record fetched
	followed  bool      // the watermark followed the pipeline since the last meta record
	published *progress // last progress record produced; nil: none yet

	// Forwarding (route.go): fwdNext is, per input, the offset after the
	// last record forwarded in this task's committed or open
	// transaction, so that a replay does not forward again; fwdWritten
	// what the changelog holds; forwarded that the task ever forwarded.
	fwdNext, fwdWritten [srcRepartition]int64
	forwarded           bool
	// Held repartition records (held.go): skip is what the commit this
	// task started from left queued (records read again past it and
	// not in it are skipped); heldWritten what the changelog holds.
	skip, heldWritten held
	// fwdWait is the repartition partition's last stable offset when the
	// cycle's barrier was taken: the merge waits to have read up to it.
	fwdWait int64

	// State epoch (truth.go): the high 32 bits of every version this task
	// writes. epochKnown: read from the changelog; epochDirty: to be
	// written with the next commit. hadState: the changelog held state.
	epoch                            uint32
	epochKnown, epochDirty, hadState bool
	// What the changelog keeps until ClickHouse has confirmed it
	// (pending.go): this transaction's triggers (JSON), the ids of the
	// customers it changed, and the rows of those it evicted.
	pend, cust, evict pendingSet
	// unknown holds the keys of control records that a later release
	// wrote and this one does not read (restoreControl); dropSent that
	// this transaction deletes them.
	unknown  map[string]bool
	dropSent bool
	// mark is t's bookkeeping at its last commit, for a rollback
	// (rollback.go).
	mark taskMark
}

// taskOut is what a task produced since its outputs were last collected.
type taskOut struct {
	recs   []*kgo.Record
	rows   event.Rows // for ClickHouse; its triggers are counted on commit
	arrive []int64    // arrival (record timestamp, ms) of event-driven triggers
	gone   gone       // customers erased and evicted
	err    error      // the transaction must abort
	fwd    earliest   // event time of the records forwarded
	dead   []deadCount
}

// deadCount is a dead letter, counted on commit.
type deadCount struct{ reason, topic string }

func (o *taskOut) fail(err error) { o.err = errors.Join(o.err, err) }

func (t *task) noteSnapshot(n int) { t.snapBytes += n; t.snaps++ }

// snapshotSize is the average size of t's snapshots written or restored
// (before the first one, a typical size).
func (t *task) snapshotSize() float64 {
	if t.snaps == 0 {
		return 256
	}
	return float64(t.snapBytes) / float64(t.snaps)
}

func (t *task) stateBytes() float64 {
	if t.snaps == 0 {
		return 0
	}
	return t.snapshotSize() * float64(t.eng.Len())
}

// eachTask runs fn on every task, several tasks at once (up to GOMAXPROCS),
// then collects their outputs in partition order, so the records of a
// transaction come out in the same order whatever the scheduling. It runs
// with r.mu held; fn must touch only its task and thread-safe dependencies.
func (r *Runner) eachTask(fn func(t *task)) {
	ts := make([]*task, 0, len(r.tasks))
	for _, t := range r.tasks {
		ts = append(ts, t)
	}
	slices.SortFunc(ts, func(a, b *task) int { return cmp.Compare(a.p, b.p) })
	if workers := min(runtime.GOMAXPROCS(0), len(ts)); workers <= 1 {
		for _, t := range ts {
			fn(t)
		}
	} else {
		var next atomic.Int32
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for i := next.Add(1) - 1; int(i) < len(ts); i = next.Add(1) - 1 {
					fn(ts[i])
				}
			})
		}
		wg.Wait()
	}
	for _, t := range ts {
		r.collect(t)
	}
}

// collect moves t's outputs to the open transaction.
func (r *Runner) collect(t *task) {
	o := &t.out
	if o.err != nil {
		r.fail(o.err)
	}
	for _, rec := range o.recs {
		r.produce(rec)
	}
	r.dep.Sink.Add(&o.rows)
	r.cur.trigs = append(r.cur.trigs, o.rows.Triggers...)
	r.cur.arrive = append(r.cur.arrive, o.arrive...)
	r.cur.gone.add(&o.gone)
	r.cur.dead = append(r.cur.dead, o.dead...)
	if o.fwd.set {
		r.cur.fwd.note(o.fwd.at)
	}
	clear(o.recs)
	o.rows.Reset()
	*o = taskOut{recs: o.recs[:0], rows: o.rows, arrive: o.arrive[:0], gone: o.gone.reset(), dead: o.dead[:0]}
}

// deadLetter sends rec, which failed with err, to the dead-letter topic and
// its row to ClickHouse.
func (t *task) deadLetter(rec *kgo.Record, err error) {
	if rec.Topic == t.cfg.Topics.Repartition {
		rec = origin(rec)
	}
	out, row := t.dep.Outputs.DeadLetter(rec, err, t.now())
	t.out.dead = append(t.out.dead, deadCount{row.Reason, rec.Topic})
	t.out.rows.DeadLetters = append(t.out.rows.DeadLetters, row)
	t.out.recs = append(t.out.recs, out)
}

// emit sends a trigger of task t; arrive is the arrival of the event that
// made it due, or -1 for a timer.
func (t *task) emit(tr *event.Trigger, arrive int64) {
	rec, err := t.dep.Outputs.Trigger(tr)
	if err != nil {
		t.out.fail(err)
		return
	}
	raw, err := json.Marshal(tr)
	if err != nil {
		t.out.fail(fmt.Errorf("encode trigger %s for the changelog: %w", tr.TriggerID, err))
		return
	}
	t.pend.items = append(t.pend.items, raw)
	t.out.recs = append(t.out.recs, rec)
	t.out.rows.Triggers = append(t.out.rows.Triggers, *tr)
	if arrive >= 0 {
		t.out.arrive = append(t.out.arrive, arrive)
	}
}

// produce sends rec in the open transaction.
func (r *Runner) produce(rec *kgo.Record) {
	// A record the producer refuses would fail this transaction and every
	// replay of it; inputs are bounded so that none is, and this says so
	// loudly if one slips through.
	if err := r.dep.Outputs.Fits(rec, 0); err != nil {
		r.fail(fmt.Errorf("consume: %w", err))
		return
	}
	r.sess.Produce(context.Background(), rec, func(rec *kgo.Record, err error) {
		if err != nil {
			r.fail(fmt.Errorf("produce to %s: %w", rec.Topic, err))
		}
	})
}

// advance has the tasks that may (followTime) follow the pipeline's
// event time g, fires each task's timers, then writes the changed
// customers to the changelog and the sink. It runs with r.mu held.
func (r *Runner) advance(g int64, may map[int32]bool) {
	now := r.now()
	r.eachTask(func(t *task) { t.advance(g, may[t.p], r.barrier, now) })
	r.m.cacheBytes.Set(0) // every changed customer is written
}

// advance follows the pipeline's event time g (when ok) if t is quiet,
// fires t's due timers, and writes what changed in the transaction to
// t's outputs: each changed customer's snapshot and aggregate row once,
// however many events it had, the closed days, the evicted customers'
// tombstones, the meta, and t's progress.
func (t *task) advance(g int64, ok bool, b barrier, now time.Time) {
	t.noteDrained(b)
	t.follow(g, ok, now)
	trigs := t.eng.Advance(t.trigBuf[:0], now)
	for i := range trigs {
		t.emit(&trigs[i], -1)
	}
	t.trigBuf = trigs[:0]
	// One row per closed day and per changed customer: room for them at
	// once, not by doubling through a backlog's catch-up.
	t.out.rows.Aggregates = slices.Grow(t.out.rows.Aggregates, t.eng.ClosedDays()+t.eng.Dirty())
	t.eng.TakeClosedDays(func(a *event.Aggregate) { t.stamp(a); t.out.rows.Aggregates = append(t.out.rows.Aggregates, *a) })
	// Evicted customers' tombstones before the changed customers'
	// snapshots: an id evicted and seen again is a new customer.
	changed := t.evicted()
	t.eng.TakeDirty(func(c *lapse.Customer) {
		changed = true
		rec := t.arena.record()
		rec.Topic, rec.Partition = t.cfg.Topics.State, t.p
		rec.Key = t.arena.bytes(func(b []byte) []byte { return append(b, c.ID()...) })
		rec.Value = t.arena.bytes(func(b []byte) []byte { return t.eng.AppendSnapshot(b, c) })
		t.noteSnapshot(len(rec.Value))
		t.out.recs = append(t.out.recs, rec)
		t.out.rows.Aggregates = append(t.out.rows.Aggregates, c.Aggregate(t.eng))
		t.stamp(&t.out.rows.Aggregates[len(t.out.rows.Aggregates)-1])
		t.cust.items = append(t.cust.items, t.arena.bytes(func(b []byte) []byte { return codec.AppendJSONString(b, c.ID()) }))
	})
	if t.eng.TakeMetaDirty() || changed || t.followed {
		t.out.recs = append(t.out.recs, &kgo.Record{Topic: t.cfg.Topics.State, Partition: t.p, Key: []byte(metaKey), Value: t.eng.AppendMeta(nil)})
		t.followed = false
	}
	if t.epochDirty {
		t.out.recs = append(t.out.recs, &kgo.Record{Topic: t.cfg.Topics.State, Partition: t.p, Key: []byte(epochKey), Value: appendEpoch(nil, t.epoch)})
		t.epochDirty = false
	}
	t.dropUnknown()
	for _, s := range t.pendingSets() {
		if s.due() {
			recs, err := s.records(t.cfg.Topics.State, t.p)
			if err != nil {
				t.out.fail(err)
			}
			t.out.recs = append(t.out.recs, recs...)
		}
	}
	if s := &t.src[srcRepartition]; s.topic != "" {
		if h := heldNow(s, &t.skip); !h.equal(t.heldWritten) {
			t.out.recs = append(t.out.recs, &kgo.Record{Topic: t.cfg.Topics.State, Partition: t.p, Key: []byte(heldKey), Value: appendHeld(nil, h)})
			t.heldWritten = h
		}
	}
	if t.fwdNext != t.fwdWritten {
		t.out.recs = append(t.out.recs, &kgo.Record{Topic: t.cfg.Topics.State, Partition: t.p, Key: []byte(fwdKey), Value: appendForwarded(nil, t.fwdNext)})
		t.fwdWritten = t.fwdNext
	}
	t.publish()
	t.gauges(now)
}

// dropUnknown deletes the control records that a later release wrote
// (restoreControl), until a commit has deleted them (checkpoint).
func (t *task) dropUnknown() {
	if len(t.unknown) == 0 || t.dropSent {
		return
	}
	for _, k := range slices.Sorted(maps.Keys(t.unknown)) {
		t.out.recs = append(t.out.recs, &kgo.Record{Topic: t.cfg.Topics.State, Partition: t.p, Key: []byte(k)})
	}
	t.dropSent = true
}

func (t *task) gauges(now time.Time) {
	l := strconv.Itoa(int(t.p))
	t.m.customers.WithLabelValues(l).Set(float64(t.eng.Len()))
	t.m.timers.WithLabelValues(l).Set(float64(t.eng.PendingTimers()))
	t.m.stateBytes.WithLabelValues(l).Set(t.stateBytes())
	t.modelGauges()
	if wm := t.eng.Watermark(); wm != math.MinInt64 {
		t.m.watermark.WithLabelValues(l).Set(float64(wm) / 1000)
		t.m.eventTimeLag.WithLabelValues(l).Set(float64(now.UnixMilli()-wm) / 1000)
	}
}
