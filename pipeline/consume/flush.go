package consume

// The ClickHouse side of the transaction cycle: the write of a committed
// transaction's rows runs while the next transaction is processed, and a
// ClickHouse that does not answer costs one aborted transaction, not a
// rebalance (truth.go has why ClickHouse only ever sees committed work).

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// flush is the ClickHouse write of a committed transaction's rows: done
// sends its outcome (nil done: none is under way), parts are the
// partitions (and their generations) the transaction held.
type flush struct {
	done     <-chan error
	cancel   context.CancelFunc
	deadline time.Time
	parts    map[int32]uint64
}

// abortForSink aborts the open transaction because ClickHouse did not
// answer within the flush timeout (err), and has the next cycle wait for
// it with no transaction open (recoverSink), so that a slow ClickHouse
// costs one aborted transaction and no rebalance.
func (r *Runner) abortForSink(ctx context.Context, err error) {
	r.log.Warn("consume: ClickHouse did not answer in time; aborting this transaction and waiting for ClickHouse with none open",
		"err", err, "flush_timeout", r.cfg.FlushTimeout)
	r.m.txAborts.Inc()
	if _, endErr := r.sess.End(ctx, kgo.TryAbort); endErr != nil {
		r.dropState()
	} else {
		r.rollbackState(ctx)
	}
	r.sinkDown = true
}

// awaitFlush waits for the ClickHouse write of the last committed
// transaction's rows and returns its outcome. It waits FlushTimeout from
// the write's start at most, even if the driver is slow to give up (a
// connect to a frozen server); the write then goes on in the background
// until it ends, and the sink's next flush waits for it.
func (r *Runner) awaitFlush() error {
	if r.prev.done == nil {
		return nil
	}
	defer func() { r.prev.cancel(); r.prev = flush{} }()
	timer := time.NewTimer(time.Until(r.prev.deadline))
	defer timer.Stop()
	select {
	case err := <-r.prev.done:
		if err == nil {
			r.mu.Lock()
			maps.Copy(r.confirmed, r.prev.parts)
			r.mu.Unlock()
		}
		return err
	case <-timer.C:
		return fmt.Errorf("consume: ClickHouse did not confirm within the flush timeout (%s)", r.cfg.FlushTimeout)
	}
}

// unconfirm returns the partitions (and their generations) of the
// transaction about to commit, and marks them as not confirmed by
// ClickHouse until its rows are; was is what they were.
func (r *Runner) unconfirm() (parts, was map[int32]uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	parts = make(map[int32]uint64, len(r.tasks))
	was = map[int32]uint64{}
	for p := range r.tasks {
		parts[p] = r.gen[p]
		if g, ok := r.confirmed[p]; ok {
			was[p] = g
			delete(r.confirmed, p)
		}
	}
	return parts, was
}

// recoverSink runs between transactions after ClickHouse failed to confirm
// a committed transaction's rows: it restores the tasks (which gives the
// sink their rows again) and writes those rows, retrying until ClickHouse
// confirms or ctx is done. No transaction is open meanwhile, so an outage
// of any length costs one aborted transaction and no rebalance: the
// group's heartbeats go on.
func (r *Runner) recoverSink(ctx context.Context) error {
	if err := r.restorePending(ctx, true); err != nil {
		var ce configError
		if errors.As(err, &ce) {
			return err
		}
		r.log.Warn("consume: restore failed; it is retried in the next transaction", "err", err)
	}
	for ctx.Err() == nil {
		if err := <-r.dep.Sink.StartFlush(ctx); err != nil {
			r.log.Warn("consume: ClickHouse still unavailable; waiting with no transaction open", "err", err)
			continue
		}
		r.sinkDown = false
		r.m.unconfirmed.Set(0)
		r.log.Info("consume: ClickHouse confirmed the restored rows; resuming")
		return nil
	}
	return nil
}
