package consume

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"sync"
	"time"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/pipeline/event"
)

// txn is the work of the open transaction.
type txn struct {
	mu     sync.Mutex // guards err, which produce callbacks set
	err    error      // the transaction must abort
	trigs  []event.Trigger
	arrive []int64  // arrival (record timestamp, ms) of event-driven triggers
	gone   gone     // customers erased and evicted
	fwd    earliest // event time of the records forwarded to the repartition topic
	// the dead letters, counted in the metrics when the transaction
	// commits, as the dead-letter topic has them: a replay after an abort
	// counts them once
	dead []deadCount
}

// count adds t's dead letters to the metrics.
func (t *txn) count(m *metrics) {
	for _, d := range t.dead {
		m.dlq.WithLabelValues(d.reason).Inc()
		m.events.WithLabelValues(d.topic, "dlq").Inc()
	}
}

// earliest is the least of the event times noted, if any.
type earliest struct {
	set bool
	at  int64
}

func (e *earliest) note(at int64) {
	if !e.set || at < e.at {
		e.set, e.at = true, at
	}
}

// reset empties t for a new transaction, keeping its buffers.
func (t *txn) reset() {
	t.mu.Lock()
	t.err = nil
	t.mu.Unlock()
	t.trigs, t.arrive, t.gone, t.fwd = t.trigs[:0], t.arrive[:0], t.gone.reset(), earliest{}
	t.dead = t.dead[:0]
}

// fail marks the transaction for abort.
func (t *txn) fail(err error) {
	t.mu.Lock()
	t.err = errors.Join(t.err, err)
	t.mu.Unlock()
}

// failure is why the transaction must abort, or nil.
func (t *txn) failure() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// cycle runs one transaction: poll and process until the batch is full or
// CommitInterval has passed, fire timers, wait until ClickHouse has
// confirmed the previous transaction's rows, commit, then start writing
// this transaction's rows to ClickHouse, in the background while the next
// transaction is processed. ClickHouse thus only ever receives committed
// work (truth.go).
func (r *Runner) cycle(ctx context.Context) error {
	if err := r.checkPartitions(ctx); err != nil {
		return err
	}
	if r.sinkDown {
		if err := r.recoverSink(ctx); err != nil || ctx.Err() != nil {
			return err
		}
	}
	r.takeBarrier(ctx, r.boardBarrier())
	start := r.now()
	if err := r.sess.Begin(); err != nil {
		return fmt.Errorf("consume: begin transaction: %w", err)
	}
	r.cur.reset()
	r.budget.Store(int64(r.cfg.MaxPollRecords))
	r.budgeted = true

	if err := r.process(ctx, start.Add(r.cfg.CommitInterval)); err != nil {
		return err
	}
	// From here on the transaction finishes even if ctx is done: a
	// graceful shutdown commits what was processed and writes it to
	// ClickHouse, and gives up ShutdownTimeout after ctx is done.
	fctx, cancel := graceContext(ctx, r.cfg.ShutdownTimeout)
	defer cancel()

	// Erasures: ClickHouse deletes the erased customers' rows once every
	// earlier row is in, before this transaction's rows are added (the
	// delete also drops the pending rows of theirs), and before it
	// commits, so that a crash replays the delete (erase.go).
	if len(r.cur.gone.erased) > 0 {
		err := r.awaitFlush()
		if err == nil {
			ectx, ecancel := context.WithTimeout(fctx, r.cfg.FlushTimeout)
			err = r.eraseRows(ectx)
			ecancel()
		}
		if err != nil {
			r.abortForSink(fctx, err)
			return nil
		}
	}
	g, may := r.followTime(fctx)
	r.mu.Lock()
	r.advance(g, may)
	r.mu.Unlock()
	offsets := r.commitOffsets()

	// The previous transaction's rows must be in ClickHouse before this
	// one commits: then a crash loses at most one committed
	// transaction's rows, which the next restore writes again.
	if err := r.awaitFlush(); err != nil {
		r.abortForSink(fctx, err)
		return nil
	}
	// Flush the producer first, so that a failed produce aborts.
	if err := r.sess.Client().Flush(fctx); err != nil {
		r.fail(fmt.Errorf("flush producer: %w", err))
	}
	txErr := r.cur.failure()
	if txErr != nil {
		r.log.Error("consume: aborting transaction", "err", txErr)
	}
	// From the commit until the sink confirms, ClickHouse may lack rows
	// that Kafka has committed.
	r.m.unconfirmed.Set(1)
	parts, was := r.unconfirm()
	committed, err := r.sess.End(kgo.PreTxnCommitFnContext(fctx, offsets), kgo.TransactionEndTry(txErr == nil))
	if err != nil || !committed {
		r.m.unconfirmed.Set(0) // the sink has nothing of this transaction, and the previous one is confirmed
	}
	if err == nil && !committed {
		// Nothing changed in Kafka: what ClickHouse was confirmed to
		// hold it still holds. (After an error the outcome is unknown,
		// and the next session writes everything again.)
		r.mu.Lock()
		maps.Copy(r.confirmed, was)
		r.mu.Unlock()
	}
	if err != nil {
		r.m.txAborts.Inc()
		r.dropState()
		return fmt.Errorf("consume: end transaction: %w", err)
	}
	if !committed {
		r.m.txAborts.Inc()
		r.log.Info("consume: transaction aborted; rolling it back", "err", txErr)
		r.rollbackState(fctx)
		if txErr != nil {
			// A failed write or an unreachable registry: wait
			// before replaying, doubling up to 30 s.
			r.backoff = min(max(2*r.backoff, 500*time.Millisecond), 30*time.Second)
			select {
			case <-ctx.Done():
			case <-time.After(r.backoff):
			}
		}
		return nil
	}
	r.checkpointTasks() // what an abort of the next transaction returns to (rollback.go)
	// Committed: its rows go to ClickHouse now, in the background.
	deadline := time.Now().Add(r.cfg.FlushTimeout)
	fl, flCancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	flushed, done := r.dep.Sink.StartFlush(fl), make(chan error, 1)
	go func() {
		err := <-flushed
		if err == nil {
			r.m.unconfirmed.Set(0)
		}
		done <- err
	}()
	r.prev = flush{done: done, cancel: flCancel, deadline: deadline, parts: parts}

	r.backoff = 0
	r.m.txCommits.Inc()
	end := r.now()
	for i := range r.cur.trigs {
		t := &r.cur.trigs[i]
		r.m.triggers.WithLabelValues(string(t.Kind), string(t.PrimaryReason), string(t.RecommendedAction), string(t.ValueTier), string(t.Arm())).Inc()
		if _, ok := t.Evidence["budget_delayed_days"]; ok {
			r.m.budgetDelayed.Inc()
		}
	}
	for _, at := range r.cur.arrive {
		r.m.triggerLatency.Observe(math.Max(0, float64(end.UnixMilli()-at)/1000))
	}
	r.m.batchSeconds.Observe(end.Sub(start).Seconds())
	r.cur.gone.count(r.m)
	r.cur.count(r.m)
	return nil
}

// process polls and applies records until deadline, MaxPollRecords, a
// failure, ctx is done, or the sink's batch needs a flush.
func (r *Runner) process(ctx context.Context, deadline time.Time) error {
	polled, first := 0, true
	for {
		if cause := r.full(ctx, polled, deadline); cause != "" {
			r.m.txRecords.Observe(float64(polled))
			r.m.txEnds.WithLabelValues(cause).Inc()
			return nil
		}
		n := r.cfg.MaxPollRecords - polled
		if n <= 0 { // the barrier holds everything (full): poll on, a batch at a time
			n = r.cfg.MaxPollRecords
		}
		fetches := r.poll(ctx, deadline, n, first)
		first = false
		if fetches.IsClientClosed() {
			return errors.New("consume: kafka client closed")
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				r.log.Warn("consume: fetch error", "topic", topic, "partition", p, "err", err)
			}
		})
		// Install the tasks whose restore has finished; the fetches of
		// those still restoring are paused (markPending).
		if err := r.restorePending(ctx, false); err != nil {
			return err // a changelog record that cannot be restored
		}
		r.prefetchSchemas(ctx, fetches)
		r.retakeBarrier(ctx)
		r.mu.Lock()
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			if len(fp.Records) == 0 {
				if t := r.tasks[fp.Partition]; t != nil && fp.Err == nil {
					r.noteEnd(t, fp)
				}
				return
			}
			if t := r.tasks[fp.Partition]; t != nil {
				t.fetched = append(t.fetched, fp)
				return
			}
			// Revoked (or re-assigned) while this batch ran, or
			// polled before its partition was paused for the restore:
			// abort rather than commit offsets past records that were
			// not applied.
			r.fail(fmt.Errorf("records of %s/%d arrived for a task this instance does not hold", fp.Topic, fp.Partition))
		})
		// Decoding runs under r.mu and so must not wait for the
		// registry: prefetchSchemas looked the schemas up, and an id
		// still not cached fails its record as registry.unavailable
		// (transient: the transaction aborts and the batch replays).
		dctx, nowait := context.WithCancel(context.WithoutCancel(ctx))
		nowait()
		r.eachTask(func(t *task) {
			for _, fp := range t.fetched {
				r.enqueue(dctx, t, fp, r.barrier)
			}
			clear(t.fetched)
			t.fetched = t.fetched[:0]
			r.drain(t, r.barrier)
		})
		r.mu.Unlock()
		polled += fetches.NumRecords()
	}
}

// full says why the open transaction takes no more input, or "" if it
// does.
func (r *Runner) full(ctx context.Context, polled int, deadline time.Time) string {
	switch {
	case ctx.Err() != nil:
		return "shutdown"
	case r.failed():
		return "failed" // the transaction aborts; no use reading on
	case !time.Now().Before(deadline):
		return "interval"
	case polled >= r.cfg.MaxPollRecords && !r.barrier.holdsAll():
		return "max_poll_records"
	case r.barrier.holdsAll() && r.frontierToPublish():
		return "barrier" // commit it: the barrier waits for it
	}
	rows, bytes, spent := r.held()
	switch {
	case spent:
		return "max_poll_records" // the tasks applied that many
	case r.dep.Sink.NeedsFlush(rows):
		return "batch_rows" // a full ClickHouse batch: commit it
	case r.cfg.CacheMaxBytes > 0 && bytes >= float64(r.cfg.CacheMaxBytes):
		return "cache" // enough changed customers: write them
	}
	return ""
}

// aggregateBytes is what a closed day's aggregate row costs while the
// engine holds it for the commit.
const aggregateBytes = float64(unsafe.Sizeof(event.Aggregate{}))

// held returns the ClickHouse rows the tasks hold for the commit (a row per
// closed customer-day and per changed customer), the bytes of the
// commit's cache (the changed customers' changelog snapshots, their count
// times their average size, and the closed days' rows), and whether
// the tasks have spent the transaction's budget of records.
func (r *Runner) held() (rows int, bytes float64, spent bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.tasks {
		days, dirty := t.eng.ClosedDays(), t.eng.Dirty()
		rows += days + dirty
		bytes += float64(dirty)*t.snapshotSize() + float64(days)*aggregateBytes
	}
	spent = r.budgeted && r.budget.Load() <= 0
	r.m.cacheBytes.Set(bytes)
	return rows, bytes, spent
}
