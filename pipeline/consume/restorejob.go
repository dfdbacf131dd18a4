package consume

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// restoreJob is a restore of the partitions in gen (each with the
// assignment generation it was started for) running in the background.
type restoreJob struct {
	gen    map[int32]uint64
	cancel context.CancelFunc
	done   chan struct{} // closed when tasks and err are set
	tasks  map[int32]*task
	err    error
}

// restorePending installs the tasks of a finished background restore and
// starts one for the assigned partitions that still have no task. It
// returns at once unless wait is set; then it returns when every pending
// partition is restored, or a restore failed, or ctx is done. Only a
// configError (a changelog record that cannot be restored) is returned
// without wait: another failure is logged and the restore starts again a
// second later.
//
// The cycle does not wait: the partitions being restored are paused
// (markPending), so the instance's other tasks go on committing. Until a
// restored task has fetched some of its input, its progress says nothing
// about what it forwards, and the forwarding barrier holds (board.barrier).
// The restore reads the changelog without holding r.mu, so lookups and the
// group's callbacks go on meanwhile.
func (r *Runner) restorePending(ctx context.Context, wait bool) error {
	for {
		if j := r.restoring; j != nil {
			if wait {
				select {
				case <-j.done:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			select {
			case <-j.done:
			default:
				return nil // still reading
			}
			r.restoring = nil
			if err := r.install(j); err != nil {
				var ce configError
				if wait || errors.As(err, &ce) {
					return err
				}
				r.log.Warn("consume: restore failed; retrying in a second", "err", err)
				r.restoreAfter = time.Now().Add(time.Second)
			}
		}
		if !wait && time.Now().Before(r.restoreAfter) {
			return nil
		}
		if started := r.startRestore(ctx); !started || !wait {
			return nil
		}
	}
}

// startRestore starts restoring, in the background, every assigned
// partition without a task; false if there is none.
func (r *Runner) startRestore(ctx context.Context) bool {
	r.mu.Lock()
	parts := make([]int32, 0, len(r.pending))
	gen := make(map[int32]uint64, len(r.pending))
	for p := range r.pending {
		parts = append(parts, p)
		gen[p] = r.gen[p]
	}
	r.mu.Unlock()
	if len(parts) == 0 {
		return false
	}
	slices.Sort(parts)
	jctx, cancel := context.WithCancel(ctx)
	j := &restoreJob{gen: gen, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(j.done)
		j.tasks, j.err = r.restoreTasks(jctx, parts)
	}()
	r.restoring = j
	return true
}

// install makes the tasks of finished restore j the owned tasks and
// resumes their fetches, unless their partition was revoked or re-assigned
// meanwhile: that restore is stale, and the partition's next one runs.
func (r *Runner) install(j *restoreJob) error {
	if j.err != nil {
		return j.err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for p, t := range j.tasks {
		if !r.pending[p] || r.gen[p] != j.gen[p] {
			continue
		}
		r.tasks[p] = t
		delete(r.pending, p)
		r.sess.Client().ResumeFetchPartitions(r.inputPartitions(p))
		trigs, ids, evicted, all := t.finishRestore()
		if g, ok := r.confirmed[p]; !ok || g != r.gen[p] {
			r.resync(t, trigs, ids, evicted, all)
		}
		t.gauges(r.now())
	}
	r.ready = len(r.pending) == 0
	return nil
}

// stopRestore cancels the background restore, if any, and waits for it.
func (r *Runner) stopRestore() {
	if j := r.restoring; j != nil {
		j.cancel()
		<-j.done
		r.restoring = nil
	}
}

// markPending records that owned partition p has no task yet and pauses
// its inputs on cl until its restore is installed; kgo drops what it had
// buffered of them and fetches it again on resume. It runs with r.mu held.
func (r *Runner) markPending(cl *kgo.Client, p int32) {
	r.pending[p] = true
	cl.PauseFetchPartitions(r.inputPartitions(p))
}

// inputPartitions is partition p of every input topic.
func (r *Runner) inputPartitions(p int32) map[string][]int32 {
	m := map[string][]int32{}
	for _, topic := range r.inputTopics() {
		m[topic] = []int32{p}
	}
	return m
}

// inputTopics are the topics the session consumes.
func (r *Runner) inputTopics() []string {
	inputs := []string{r.cfg.Topics.Orders, r.cfg.Topics.Email, r.cfg.Topics.Support, r.cfg.Topics.Repartition}
	if r.cfg.Topics.Erasures != "" {
		inputs = append(inputs, r.cfg.Topics.Erasures)
	}
	return inputs
}

// poll polls up to n records until deadline, or sooner (pollDeadline)
// or when an assignment needs one (onAssigned wakes it). first: the
// transaction's first poll.
func (r *Runner) poll(ctx context.Context, deadline time.Time, n int, first bool) kgo.Fetches {
	pollCtx, cancel := context.WithDeadline(ctx, r.pollDeadline(deadline, first))
	defer cancel()
	r.mu.Lock()
	r.wake = cancel
	r.mu.Unlock()
	fetches := r.sess.PollRecords(pollCtx, n)
	r.mu.Lock()
	r.wake = nil
	r.mu.Unlock()
	return fetches
}

// pollDeadline is when the next poll gives up: the transaction's deadline,
// or sooner while a restore runs in the background, whose tasks' inputs
// are paused until it is installed after a poll; while the forwarding
// barrier holds everything, which is taken again after a poll
// (retakeBarrier); and on a transaction's first poll when records wait in
// the queues, which are applied after it. A poll with nothing new to fetch
// would otherwise wait out the whole commit interval.
func (r *Runner) pollDeadline(deadline time.Time, first bool) time.Time {
	r.mu.Lock()
	short := len(r.pending) > 0 || r.barrier.holdsAll()
	for _, t := range r.tasks {
		for i := range t.src {
			short = short || first && t.src[i].len() > 0
		}
	}
	r.mu.Unlock()
	if at := time.Now().Add(shortPoll); short && at.Before(deadline) {
		return at
	}
	return deadline
}

// shortPoll is how long a poll waits when pollDeadline cuts it short.
const shortPoll = 50 * time.Millisecond
