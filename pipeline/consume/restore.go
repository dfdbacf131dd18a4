package consume

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/lapse"
	"github.com/winback/winback/pipeline/lso"
)

// newTask is a task for partition p with no state yet, reading its inputs
// from pos.
func (r *Runner) newTask(p int32, pos inputPositions) *task {
	t := r.newState(p)
	r.readFrom(t, pos)
	return t
}

// newState is a task for partition p with no state and no inputs yet: a
// restore or a standby fills its state, readFrom sets its inputs.
func (r *Runner) newState(p int32) *task {
	now := r.now()
	t := &task{env: r.env, p: p, eng: lapse.NewEngine(r.cfg.Lapse, 3, now),
		fwdWait: math.MaxInt64, // until the next cycle's barrier says what to wait for
		pend:    pendingSet{key: pendKey, check: checked(parseTriggers)},
		cust:    pendingSet{key: custKey, check: checked(parseIDs)},
		// Known as none: its chunks are written only by a transaction
		// that evicts, so a group without a state TTL never has them
		// (releases before them cannot read them).
		evict: pendingSet{key: evictKey, known: true, check: checked(parseAggregates)}}
	t.eng.KeepDays() // end-of-day rows for customer_daily (TakeClosedDays in advance)
	t.eng.SetTTL(r.cfg.StateTTL)
	t.watchRefits()
	return t
}

// readFrom sets t's input sources at positions pos, as an owned task.
func (r *Runner) readFrom(t *task, pos inputPositions) {
	now := r.now()
	p := t.p
	t.src, t.lastInput = newSources(r.cfg.Topics, p, pos, now), now
	l := strconv.Itoa(int(p))
	for i := range t.src {
		s := &t.src[i]
		if s.topic == "" {
			continue // a topic not read (no erasures topic)
		}
		s.ok = r.m.events.WithLabelValues(s.topic, "ok")
		s.duplicates = r.m.events.WithLabelValues(s.topic, "duplicate")
		s.late = r.m.events.WithLabelValues(s.topic, "late")
		s.lag = r.m.consumerLag.WithLabelValues(s.topic, l)
		s.uncommitted = r.m.consumerUncommitted.WithLabelValues(s.topic, l)
	}
}

// restoreTasks reads partitions parts of the changelog from their start to
// their last stable offset and rebuilds one task per partition; a task of
// which this instance keeps a standby starts from the standby's copy and
// reads only from where it stands (standby.go).
func (r *Runner) restoreTasks(ctx context.Context, parts []int32) (map[int32]*task, error) {
	topic := r.cfg.Topics.State
	began := time.Now()
	r.m.restoring.Add(float64(len(parts)))
	defer r.m.restoring.Sub(float64(len(parts)))

	if err := r.waitStable(ctx, parts); err != nil {
		return nil, err
	}
	starts, err := r.adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("consume: changelog start offsets: %w", err)
	}
	ends, err := r.adm.ListCommittedOffsets(ctx, topic) // last stable offsets
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("consume: changelog end offsets: %w", err)
	}

	// After waitStable: a previous owner's transaction has ended, so the
	// committed input offsets match the changelog.
	pos, err := r.inputPositions(ctx)
	if err != nil {
		return nil, err
	}
	tasks := make(map[int32]*task, len(parts))
	feeds := make(map[int32]*restoreFeed, len(parts))
	warm := make(map[int32]bool, len(parts))
	spans := lso.Spans{topic: {}}
	var wg sync.WaitGroup
	for _, p := range parts {
		s, _ := starts.Lookup(topic, p)
		e, _ := ends.Lookup(topic, p)
		span := lso.Span{Start: s.Offset, End: e.Offset}
		t, next, ok := r.standby.take(p)
		if ok && next >= span.Start && next <= span.End {
			r.readFrom(t, pos)
			span.Start, warm[p] = next, true
		} else {
			t = r.newTask(p, pos)
		}
		tasks[p] = t
		spans[topic][p] = span
		f := &restoreFeed{ch: make(chan []*kgo.Record, 4), records: r.m.restoreRecords.WithLabelValues(strconv.Itoa(int(p)))}
		feeds[p] = f
		wg.Go(func() { f.apply(t, began) })
	}
	err = lso.Read(ctx, r.restore, spans, lso.Options{
		FetchError: func(t string, p int32, err error) error {
			r.log.Warn("consume: changelog fetch error", "topic", t, "partition", p, "err", err)
			return nil // the client retries
		},
	}, func(rec *kgo.Record) error {
		feeds[rec.Partition].add(rec)
		return nil
	})
	for _, f := range feeds {
		f.close()
	}
	wg.Wait()
	if err != nil {
		return nil, err
	}
	for _, p := range parts {
		if err := feeds[p].err; err != nil {
			return nil, configError{err}
		}
	}
	// The inputs' ends again: a restore can take minutes, and an input
	// that was empty when it began must not count as read to its end
	// (noteDrained) with records that came meanwhile.
	ends, err = r.adm.ListCommittedOffsets(ctx, r.inputTopics()...)
	if err != nil {
		return nil, fmt.Errorf("consume: input end offsets: %w", err)
	}
	for _, t := range tasks {
		for i := range t.src {
			if s := &t.src[i]; s.topic != "" {
				if e, ok := ends.Lookup(s.topic, t.p); ok && e.Err == nil {
					s.hwm = max(s.hwm, e.Offset)
				}
			}
		}
	}
	for _, p := range parts {
		d := feeds[p].took
		from := "changelog"
		if warm[p] {
			from = "standby"
		}
		r.m.restoreSeconds.Observe(d.Seconds())
		r.m.restores.WithLabelValues(from).Inc()
		r.log.Info("consume: partition restored", "partition", p, "from", from, "records", feeds[p].n,
			"customers", tasks[p].eng.Len(), "timers", tasks[p].eng.PendingTimers(), "duration", d)
	}
	return tasks, nil
}

// restoreFeed hands one task's changelog records, in offset order and in
// batches, to the goroutine that restores the task, so that an instance's
// tasks restore in parallel while the client fetches.
type restoreFeed struct {
	ch      chan []*kgo.Record
	batch   []*kgo.Record
	records prometheus.Counter
	// Set by apply: the records applied, the first error, the time from
	// the restore's start to the last record applied.
	n    int
	err  error
	took time.Duration
}

const restoreBatch = 256

func (f *restoreFeed) add(rec *kgo.Record) {
	f.batch = append(f.batch, rec)
	if len(f.batch) == restoreBatch {
		f.ch <- f.batch
		f.batch = make([]*kgo.Record, 0, restoreBatch)
	}
}

func (f *restoreFeed) close() {
	if len(f.batch) > 0 {
		f.ch <- f.batch
	}
	close(f.ch)
}

// apply restores t from the feed's batches until it is closed. After an
// error it reads on without applying, so that the reader never blocks.
func (f *restoreFeed) apply(t *task, began time.Time) {
	for batch := range f.ch {
		for _, rec := range batch {
			if f.err == nil {
				f.err = t.restoreRecord(rec)
			}
		}
		f.n += len(batch)
		f.records.Add(float64(len(batch)))
	}
	f.took = time.Since(began)
}

// restoreRecord applies one changelog record to t. A record that cannot
// be restored is an error: skipping it would lose state silently.
func (t *task) restoreRecord(rec *kgo.Record) error {
	var err error
	key := string(rec.Key)
	switch {
	case rec.Value == nil && controlKey(key):
		delete(t.unknown, key) // a commit dropped it (dropUnknown)
	case rec.Value == nil:
		// A tombstone. winback deletes only customers: erased or evicted
		// (lapse forget.go).
		t.eng.Forget(key)
	case key == metaKey:
		err = t.eng.RestoreMeta(rec.Value)
		t.hadState = true
	case key == fwdKey:
		if t.fwdNext, err = parseForwarded(rec.Value); err == nil {
			t.fwdWritten, t.forwarded = t.fwdNext, true
		}
	case key == heldKey:
		if t.skip, err = parseHeld(rec.Value); err == nil {
			t.heldWritten = t.skip
		}
	case key == epochKey:
		if t.epoch, err = parseEpoch(rec.Value); err == nil {
			t.epochKnown = true
		}
	case controlKey(key):
		err = t.restoreControl(rec)
	default:
		err = t.eng.RestoreCustomer(key, rec.Value)
		if err == nil {
			t.noteSnapshot(len(rec.Value))
			t.hadState = true
		}
	}
	if err != nil {
		return &RestoreError{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Key: strconv.Quote(key), Err: err}
	}
	return nil
}

// controlKey reports whether changelog key k is winback's own rather than
// a customer's: those start with a NUL, and customer ids hold no control
// characters (decode refuses them).
func controlKey(k string) bool { return strings.HasPrefix(k, "\x00") }

// restoreControl restores a control record that is a pending set's chunk,
// and notes any other: a later release wrote it, one that this release
// may be rolled back from. Reading on without it is safe only as long as
// nothing stale of it is left for that release to find when it is rolled
// forward again, so the next commit deletes it (dropUnknown). A customer
// snapshot of a later format, by contrast, stops the restore: skipping it
// would lose the customer.
func (t *task) restoreControl(rec *kgo.Record) error {
	for _, s := range t.pendingSets() {
		if i, ok := s.chunk(rec.Key); ok {
			raw, err := s.restore(i, rec.Value)
			if err == nil {
				err = s.check(raw)
			}
			return err
		}
	}
	if t.unknown == nil {
		t.unknown = map[string]bool{}
	}
	t.unknown[string(rec.Key)] = true
	return nil
}

// finishRestore settles t's epoch and what ClickHouse may lack once its
// changelog is read: it returns the last transaction's triggers and the
// ids of the customers it changed, to write again, and all when the
// changelog does not say which customers (written by an older winback).
// A task whose changelog held no state starts a new epoch (the wall
// clock's second), recorded with its first commit; state written before
// epochs existed keeps epoch 0, the versions it has in ClickHouse.
func (t *task) finishRestore() (trigs []event.Trigger, ids []string, evicted []event.Aggregate, all bool) {
	if !t.epochKnown {
		if !t.hadState {
			t.epoch = uint32(t.now().Unix())
		}
		t.epochDirty = true
	}
	all = t.hadState && !t.cust.known
	if len(t.unknown) > 0 {
		keys := slices.Sorted(maps.Keys(t.unknown))
		t.log.Warn("consume: the changelog holds records of a later winback release that this one does not read; its next commit deletes them (docs/production.md, Upgrades)",
			"partition", t.p, "records", len(keys), "keys", fmt.Sprintf("%q", keys[:min(len(keys), 8)]))
	}
	// Both were checked when read.
	trigs, _ = parseTriggers(t.pend.finish())
	ids, _ = parseIDs(t.cust.finish())
	evicted, _ = parseAggregates(t.evict.finish())
	return trigs, ids, evicted, all
}

// waitStable waits until no transaction is open on partitions parts of the
// changelog (last stable offset = high watermark). An open transaction
// there belongs to a previous owner that died mid-batch: the broker aborts
// it within its transaction timeout (at once if the owner restarts with
// the same transactional id). Reading past a stable offset that it holds
// back would miss later committed state, so the restore waits for it, as
// the group's offset fetch does (RequireStable).
func (r *Runner) waitStable(ctx context.Context, parts []int32) error {
	topic := r.cfg.Topics.State
	deadline := time.Now().Add(2*r.cfg.TransactionTimeout + 10*time.Second)
	logged := false
	for {
		hw, err := r.adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = hw.Error()
		}
		var lso kadm.ListedOffsets
		if err == nil {
			lso, err = r.adm.ListCommittedOffsets(ctx, topic)
			if err == nil {
				err = lso.Error()
			}
		}
		if err != nil {
			return fmt.Errorf("consume: changelog offsets: %w", err)
		}
		var open []int32
		for _, p := range parts {
			h, _ := hw.Lookup(topic, p)
			l, _ := lso.Lookup(topic, p)
			if l.Offset < h.Offset {
				open = append(open, p)
			}
		}
		if len(open) == 0 {
			if logged {
				r.log.Info("consume: changelog transactions settled", "partitions", parts)
			}
			return nil
		}
		if !logged {
			r.log.Info("consume: waiting for a previous owner's open transaction on the changelog to end", "partitions", open)
			logged = true
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("consume: changelog partitions %v still have an open transaction after %s; is another instance using this group's transactional id?", open, 2*r.cfg.TransactionTimeout+10*time.Second)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
