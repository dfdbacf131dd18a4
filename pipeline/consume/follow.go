package consume

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// A quiet task follows the pipeline's event time (progress.go). What
// it follows must not run ahead of records still on their way to it: a
// steady customer whose orders wait in another task's input, or in a
// transaction on their way through the repartition topic, would
// otherwise look lapsed and get a false WINBACK (then a RECOVERED) when
// they arrive. The published progress is as old as each task's last
// commit (or older: the board is read behind), so at the end of a
// transaction in which a task of this instance may follow, followTime
// reads the board, then lists the group's committed offsets and the
// inputs' last stable and end offsets. A task with records past its
// committed offsets, or an end offset past the last stable one (a
// transaction still open or its markers not yet written, as happens
// partition by partition after a commit), has input left: it holds the
// pipeline's time back to its watermark and floor (or, with neither,
// nobody follows); a task of this instance with input left does not
// follow. The time is also held below the records this instance
// forwarded in the open transaction.

// followListTimeout bounds the offset listings of followTime; without
// them no task follows in that transaction.
const followListTimeout = 5 * time.Second

// followTime returns the event time that this instance's quiet tasks may
// follow at the end of the open transaction, and which of them may (none
// when may is empty). It lists offsets only when a task is quiet (caught
// up and idle for lapse.idle_timeout) and behind the most advanced
// watermark.
func (r *Runner) followTime(ctx context.Context) (at int64, may map[int32]bool) {
	now := r.now()
	// The board before the offsets: any record a task committed as
	// applied in it was in its input before they were listed.
	tasks := r.board.snapshot()
	r.mu.Lock()
	hi, quiet := int64(math.MinInt64), false
	for _, g := range tasks {
		hi = max(hi, g.wm)
	}
	for _, t := range r.tasks {
		hi = max(hi, t.eng.Watermark())
	}
	for _, t := range r.tasks {
		quiet = quiet || (t.quiet(now) && t.eng.Watermark() < hi)
	}
	r.mu.Unlock()
	if !quiet {
		return 0, nil
	}
	lctx, cancel := context.WithTimeout(ctx, followListTimeout)
	in, err := r.listInputs(lctx)
	cancel()
	if err != nil {
		if !r.followFailed {
			r.log.Warn("consume: quiet tasks do not follow the pipeline's event time until the offsets can be listed", "err", err)
		}
		r.followFailed = true
		return 0, nil
	}
	r.followFailed = false

	// The inputs that carry event time: all but the erasures.
	events := []string{r.cfg.Topics.Orders, r.cfg.Topics.Email, r.cfg.Topics.Support, r.cfg.Topics.Repartition}
	r.mu.Lock()
	defer r.mu.Unlock()
	for p := range tasks {
		if int(p) >= r.nparts {
			delete(tasks, p) // a task of an earlier partition count
		}
	}
	may = map[int32]bool{}
	for p := range int32(r.nparts) {
		if t := r.tasks[p]; t != nil {
			// Fresher than what it committed.
			done := t.caughtUp()
			for i := range t.src {
				if s := &t.src[i]; s.topic != "" {
					done = done && in.through(s.topic, p, s.next)
				}
			}
			tasks[p] = progress{wm: t.eng.Watermark(), caughtUp: done, floor: t.floor(now)}
			may[p] = done && t.quiet(now)
			continue
		}
		done := true
		for _, topic := range events {
			done = done && in.through(topic, p, in.next(topic, p))
		}
		g, ok := tasks[p]
		switch {
		case ok:
			g.caughtUp = done
			tasks[p] = g
		case !done:
			// Input and no progress at all: nothing is known of it.
			tasks[p] = progress{wm: math.MinInt64, floor: math.MinInt64}
		}
		if g := tasks[p]; r.cfg.StrictPartitioning && g.wm == math.MinInt64 && g.floor == math.MinInt64 {
			// Nothing is forwarded: a task with no event read holds
			// nobody's customers back.
			delete(tasks, p)
		}
	}
	g, ok := pipelineTime(tasks)
	if !ok {
		r.noteUnknownAge(tasks)
		return 0, nil
	}
	r.followWaits = false
	if r.barrier.active {
		// Records still on their way through the repartition topic may
		// be as old as the barrier.
		g = min(g, r.barrier.until)
	}
	if r.cur.fwd.set {
		// Forwarded in the open transaction: not readable yet.
		g = min(g, r.cur.fwd.at-1)
	}
	return g, may
}

// noteUnknownAge logs, once until quiet tasks follow again, the first
// task that holds them back with input of no known age, so that an
// operator whose quiet partitions stopped firing finds why.
func (r *Runner) noteUnknownAge(tasks map[int32]progress) {
	if r.followWaits {
		return
	}
	for _, p := range slices.Sorted(maps.Keys(tasks)) {
		if g := tasks[p]; !g.caughtUp && g.wm == math.MinInt64 && g.floor == math.MinInt64 {
			r.followWaits = true
			r.log.Warn("consume: quiet tasks wait to follow the pipeline's event time: a partition has records to apply and no event read yet (only bad input so far, a task not yet restored, or one of a release before 2026-12-07)",
				"partition", p)
			return
		}
	}
}

// listedInputs are the inputs' positions and high watermarks, as
// followTime lists them.
type listedInputs struct {
	inputPositions
	hwms kadm.ListedOffsets // past the last stable offset while a transaction is open
}

// listInputs lists the inputs' positions (inputPositions), then their high
// watermarks.
func (r *Runner) listInputs(ctx context.Context) (listedInputs, error) {
	pos, err := r.inputPositions(ctx)
	if err != nil {
		return listedInputs{}, err
	}
	hwms, err := r.adm.ListEndOffsets(ctx, r.inputTopics()...)
	if err != nil {
		return listedInputs{}, fmt.Errorf("consume: input high watermarks: %w", err)
	}
	return listedInputs{pos, hwms}, nil
}

// through reports whether partition p of topic, read up to next, has
// nothing left: next is at its last stable offset, and its end offset is
// no further (no transaction open on it, no commit markers pending). A
// partition not listed has input left, as far as anyone knows.
func (in listedInputs) through(topic string, p int32, next int64) bool {
	lso, ok := in.ends.Lookup(topic, p)
	end, ok2 := in.hwms.Lookup(topic, p)
	if !ok || !ok2 || lso.Err != nil || end.Err != nil || next < 0 {
		return false
	}
	return next >= lso.Offset && end.Offset <= lso.Offset
}

// pipelineTime returns the pipeline's event time from every task's
// progress: the largest watermark, held back by every task that still
// has input to read (its records may be older) to its watermark or its
// floor, whichever is less (a task whose input all goes to other tasks
// has only a floor; one whose watermark is an idle input's, or was
// followed, may have forwarded records older than it). A task with input
// to read and neither says nothing of how old its records are: ok is
// false, as it is when no task has a watermark.
func pipelineTime(tasks map[int32]progress) (t int64, ok bool) {
	hi, lo := int64(math.MinInt64), int64(math.MaxInt64)
	for _, g := range tasks {
		hi = max(hi, g.wm)
		if g.caughtUp {
			continue
		}
		if g.wm == math.MinInt64 && g.floor == math.MinInt64 {
			return 0, false
		}
		for _, b := range [2]int64{g.wm, g.floor} {
			if b != math.MinInt64 {
				lo = min(lo, b)
			}
		}
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
