package consume

import (
	"context"
	"encoding/json"
	"math"
	"slices"
)

// An aborted transaction (a failed produce, an unreachable registry, a
// transaction the group fenced) changed the tasks' state in memory but
// nothing in Kafka: franz-go's GroupTransactSession.End rewinds the
// consumer to the group's committed offsets, and the changelog still holds
// the committed state. Restoring every task from the changelog would cost
// seconds per million customers; instead each task takes back what the
// transaction did (rollbackTask): its engine returns to the checkpoint
// taken at the last commit (lapse's undo log, which kept the customers the
// transaction touched), its own bookkeeping to the copy taken then, and
// its sources restart at the committed offsets, as a restored task's do.
// The sink's batch is discarded (Sink.Discard) as before.
//
// A task is restored from the changelog as before (dropState) when the
// rollback cannot be trusted to give the committed state:
//   - the outcome of the transaction is unknown (End returned an error;
//     the session is started over anyway);
//   - ClickHouse has not confirmed the task's last committed transaction
//     (a restore writes those rows again: resync), which also covers a task
//     restored during the aborted transaction;
//   - the engine cannot roll back: no checkpoint yet (no commit since the
//     task was installed), or its undo log outgrew undoLimit;
//   - the committed offsets could not be read.
//
// A transaction that refitted a task's purchase model rolls back too: the
// engine has every customer repriced under the committed model, as a
// restore does. A task revoked during the transaction has no task to roll
// back: it is restored when it is assigned again, as before.

// undoLimit bounds one task's undo log. The log keeps one snapshot per
// customer the transaction changed, and state.cache_max_bytes already ends
// a transaction once the changed customers' snapshots reach it (summed
// over the instance's tasks), so twice that bounds it with room for the
// timers that the commit fires past the check; without a cache bound,
// 128 MiB.
func undoLimit(cacheMaxBytes int) int {
	if cacheMaxBytes <= 0 {
		return 128 << 20
	}
	return 2 * cacheMaxBytes
}

// taskMark is a task's bookkeeping at its last commit (its engine keeps
// its own checkpoint).
type taskMark struct {
	ok                               bool // taken: the task committed since it was installed
	fwdNext, fwdWritten              [srcRepartition]int64
	forwarded                        bool
	held                             held
	epoch                            uint32
	epochKnown, epochDirty, hadState bool
	pending                          [3]pendingMark // of pendingSets, in order
	published                        *progress
	snapBytes, snaps                 int
}

type pendingMark struct {
	items  []json.RawMessage
	chunks int
	known  bool
}

func markPending(m *pendingMark, s *pendingSet) {
	m.items = append(m.items[:0], s.items...)
	m.chunks, m.known = s.chunks, s.known
}

func (m *pendingMark) restore(s *pendingSet) {
	s.items = append(s.items[:0], m.items...)
	s.chunks, s.known, s.restored = m.chunks, m.known, nil
}

// checkpoint marks t's state as committed: what rollbackTask returns to.
// It runs with r.mu held, after a commit.
func (t *task) checkpoint() {
	t.eng.SetUndoLimit(undoLimit(t.cfg.CacheMaxBytes))
	t.eng.Checkpoint()
	m := &t.mark
	m.fwdNext, m.fwdWritten, m.forwarded = t.fwdNext, t.fwdWritten, t.forwarded
	m.held = t.heldWritten
	m.epoch, m.epochKnown, m.epochDirty, m.hadState = t.epoch, t.epochKnown, t.epochDirty, t.hadState
	for i, s := range t.pendingSets() {
		markPending(&m.pending[i], s)
	}
	if t.dropSent { // committed: deleted
		t.unknown, t.dropSent = nil, false
	}
	m.published = t.published
	m.snapBytes, m.snaps = t.snapBytes, t.snaps
	m.ok = true
}

// checkpointTasks marks every task's state as committed.
func (r *Runner) checkpointTasks() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.tasks {
		t.checkpoint()
	}
}

// rollbackTask returns t to its last commit, its sources to the committed
// offsets pos, and reports whether it could; if not, t is to be restored.
// It runs with r.mu held.
func (r *Runner) rollbackTask(t *task, pos inputPositions) bool {
	if !t.mark.ok || !t.eng.Rollback() {
		return false
	}
	for i := range t.src {
		if s := &t.src[i]; s.paused {
			r.sess.Client().ResumeFetchPartitions(map[string][]int32{s.topic: {t.p}})
		}
	}
	r.readFrom(t, pos) // as a restored task: the queues empty, at the committed offsets
	clear(t.fetched)
	t.fetched = t.fetched[:0]
	m := &t.mark
	t.fwdNext, t.fwdWritten, t.forwarded = m.fwdNext, m.fwdWritten, m.forwarded
	t.skip, t.heldWritten = m.held, m.held // the sources restart at the committed offsets
	t.epoch, t.epochKnown, t.epochDirty, t.hadState = m.epoch, m.epochKnown, m.epochDirty, m.hadState
	for i, s := range t.pendingSets() {
		m.pending[i].restore(s)
	}
	t.dropSent = false // aborted: the next commit deletes them
	t.published = m.published
	t.snapBytes, t.snaps = m.snapBytes, m.snaps
	t.followed, t.fwdWait = false, math.MaxInt64
	t.gauges(r.now())
	return true
}

// Why a task is restored from the changelog after an abort
// (winback_abort_restores_total).
const (
	restoreUnknown     = "outcome_unknown"
	restoreUnconfirmed = "unconfirmed"
	restoreUndo        = "undo_log"
	restorePositions   = "positions"
)

// dropState forgets every task after an abort whose outcome is unknown,
// and the aborted transaction's ClickHouse rows: the session rewound to
// the committed offsets, and the changelog holds the matching state,
// which the restores write to ClickHouse again.
func (r *Runner) dropState() {
	r.dep.Sink.Discard()
	r.mu.Lock()
	defer r.mu.Unlock()
	for p := range r.owned {
		if r.tasks[p] != nil {
			r.m.abortRestores.WithLabelValues(restoreUnknown).Inc()
		}
		r.dropTask(p)
		r.markPending(r.sess.Client(), p)
	}
	r.ready = false
}

// rollbackState takes back an aborted transaction: each task rolls back
// in memory where it can (rollbackTask) and is restored from the changelog
// where it cannot; the sink forgets the transaction's rows.
func (r *Runner) rollbackState(ctx context.Context) {
	r.dep.Sink.Discard()
	pos, err := r.inputPositions(ctx)
	if err != nil {
		r.log.Warn("consume: cannot read the committed offsets to roll back; restoring from the changelog", "err", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var rolled, restored []int32
	for p := range r.owned {
		t := r.tasks[p]
		if t == nil {
			continue // pending: restored anyway
		}
		why := ""
		switch g, ok := r.confirmed[p]; {
		case err != nil:
			why = restorePositions
		case !ok || g != r.gen[p]:
			why = restoreUnconfirmed
		case !r.rollbackTask(t, pos):
			why = restoreUndo
		}
		if why == "" {
			rolled = append(rolled, p)
			r.m.abortRollbacks.Inc()
			continue
		}
		restored = append(restored, p)
		r.m.abortRestores.WithLabelValues(why).Inc()
		r.dropTask(p)
		r.markPending(r.sess.Client(), p)
	}
	r.ready = len(r.pending) == 0
	slices.Sort(rolled)
	slices.Sort(restored)
	r.log.Info("consume: transaction aborted; tasks rolled back in memory, others restored from the changelog",
		"rolled_back", rolled, "restored", restored)
}
