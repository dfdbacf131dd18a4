package consume

import (
	"context"
	"math"
	"time"
)

// A quiet task follows the pipeline's event time (progress.go). What
// it follows must not run ahead of records still on their way to it: a
// steady customer whose orders wait in another task's input, or in this
// instance's open transaction on their way through the repartition topic,
// would otherwise look lapsed and get a false WINBACK (then a RECOVERED)
// when they arrive. The published progress is as old as each task's last
// commit, so at the end of a transaction in which a task of this instance
// may follow, followTime reads the board, then the group's committed
// offsets and the inputs' last stable offsets: a task with input past its
// committed offsets holds the pipeline's time back at its watermark or
// floor (or, with neither, at nothing known: no task follows), and so do
// the records this instance forwarded in the open transaction.

// followListTimeout bounds the offset listings of followTime; without
// them no task follows in that transaction.
const followListTimeout = 5 * time.Second

// followTime returns the event time that this instance's quiet tasks may
// follow at the end of the open transaction, and false when none may. It
// lists the group's committed offsets and the inputs' ends only when a
// task is quiet (caught up and idle for lapse.idle_timeout).
func (r *Runner) followTime(ctx context.Context) (int64, bool) {
	now := r.now()
	r.mu.Lock()
	quiet := false
	for _, t := range r.tasks {
		quiet = quiet || t.quiet(now)
	}
	r.mu.Unlock()
	if !quiet {
		return 0, false
	}
	// The board before the offsets: any record a task committed as
	// applied in it was in its input before they were listed.
	tasks := r.board.snapshot()
	lctx, cancel := context.WithTimeout(ctx, followListTimeout)
	pos, err := r.inputPositions(lctx)
	cancel()
	if err != nil {
		r.log.Warn("consume: quiet tasks do not follow the pipeline's event time in this transaction", "err", err)
		return 0, false
	}
	events := []string{r.cfg.Topics.Orders, r.cfg.Topics.Email, r.cfg.Topics.Support, r.cfg.Topics.Repartition}
	r.mu.Lock()
	defer r.mu.Unlock()
	for p := range tasks {
		if int(p) >= r.nparts {
			delete(tasks, p) // a task of an earlier partition count
		}
	}
	for p := range int32(r.nparts) {
		if t := r.tasks[p]; t != nil {
			// Fresher than what it committed, and its ends as listed.
			for i := range t.src {
				if e, ok := pos.ends.Lookup(t.src[i].topic, p); ok && e.Err == nil {
					t.src[i].noteEnd(e.Offset, now)
				}
			}
			tasks[p] = progress{wm: t.eng.Watermark(), caughtUp: t.caughtUp(), floor: t.floor(now)}
			continue
		}
		unread := false
		for _, topic := range events {
			if topic != "" {
				u, ok := pos.unread(topic, p)
				unread = unread || u || !ok
			}
		}
		g, ok := tasks[p]
		switch {
		case ok && unread:
			g.caughtUp = false
			tasks[p] = g
		case ok:
			g.caughtUp = true
			tasks[p] = g
		case unread:
			// Input and no progress at all: nothing is known of it.
			tasks[p] = progress{wm: math.MinInt64, floor: math.MinInt64}
		}
	}
	g, ok := pipelineTime(tasks)
	if !ok {
		return 0, false
	}
	if r.barrier.active {
		// Records still on their way through the repartition topic may
		// be as old as the barrier.
		g = min(g, r.barrier.until)
	}
	if r.cur.fwd.set {
		// Forwarded in the open transaction: not readable yet.
		g = min(g, r.cur.fwd.at-1)
	}
	return g, true
}

// unread reports whether partition p of topic holds records past the
// group's committed offset (the log start before any commit), as listed
// in pos; ok is false when pos lacks either offset.
func (pos inputPositions) unread(topic string, p int32) (unread, ok bool) {
	end, ok := pos.ends.Lookup(topic, p)
	if !ok || end.Err != nil {
		return false, false
	}
	if c, ok := pos.committed.Lookup(topic, p); ok && c.Err == nil && c.At >= 0 {
		return end.Offset > c.At, true
	}
	st, ok := pos.starts.Lookup(topic, p)
	if !ok || st.Err != nil {
		return false, false
	}
	return end.Offset > st.Offset, true
}

// pipelineTime returns the pipeline's event time from every task's
// progress: the largest watermark, held back by every task that still
// has input to read (its records may be older) to its watermark or,
// without one (its input all goes to other tasks), its floor. A task with
// input to read and neither says nothing of how old its records are: ok
// is false, as it is when no task has a watermark.
func pipelineTime(tasks map[int32]progress) (t int64, ok bool) {
	hi, lo := int64(math.MinInt64), int64(math.MaxInt64)
	for _, g := range tasks {
		hi = max(hi, g.wm)
		if g.caughtUp {
			continue
		}
		b := g.wm
		if b == math.MinInt64 {
			b = g.floor
		}
		if b == math.MinInt64 {
			return 0, false
		}
		lo = min(lo, b)
	}
	if hi == math.MinInt64 {
		return 0, false
	}
	return min(hi, lo), true
}

// quiet reports whether t may follow the pipeline's event time at now:
// caught up, and no input for the idle timeout.
func (t *task) quiet(now time.Time) bool {
	idle := t.cfg.Lapse.IdleTimeout
	return idle > 0 && t.caughtUp() && now.Sub(t.lastInput) >= idle
}

// follow raises t's watermark to the pipeline's event time g (when ok)
// if t is quiet, and fires the timers that fall due. It runs in advance,
// with r.mu held.
func (t *task) follow(g int64, ok bool, now time.Time) {
	if !ok || !t.quiet(now) {
		return
	}
	g = min(g, now.Add(t.cfg.MaxFutureSkew).UnixMilli())
	if g <= t.eng.Watermark() {
		return
	}
	trigs := t.eng.Follow(t.trigBuf[:0], g, now)
	for i := range trigs {
		t.emit(&trigs[i], -1)
	}
	t.trigBuf = trigs[:0]
	t.followed = true
	t.m.follows.Inc()
}

// floor returns the event time at or after which t expects the records
// still to come on its inputs at now (progress.floor): as its watermark
// would be if it applied every valid record it read, the least newest
// event time of the inputs that delivered one within the idle timeout
// (of all of them when none did, the greatest), minus the allowed
// lateness.
func (t *task) floor(now time.Time) int64 {
	idle := t.cfg.Lapse.IdleTimeout
	active, newest := int64(math.MaxInt64), int64(math.MinInt64)
	for i := range srcRepartition {
		s := &t.src[i]
		if s.maxTime == math.MinInt64 {
			continue
		}
		newest = max(newest, s.maxTime)
		if idle <= 0 || now.Sub(s.lastEvent) < idle {
			active = min(active, s.maxTime)
		}
	}
	f := active
	if f == math.MaxInt64 {
		f = newest
	}
	if f == math.MinInt64 {
		return math.MinInt64
	}
	return max(f-t.cfg.Lapse.AllowedLateness.Milliseconds(), math.MinInt64+1)
}
