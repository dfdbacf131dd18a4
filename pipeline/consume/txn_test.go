package consume

import (
	"context"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/lapse"
)

// fullSink reports a full batch when told to, or from rows held rows.
type fullSink struct {
	nopSink
	full bool
	rows int
}

func (s *fullSink) NeedsFlush(held int) bool { return s.full || s.rows > 0 && held >= s.rows }

// TestFull: a transaction stops taking input for the first cause that
// holds, in a fixed order; the cache bound counts the customers the
// transaction changed times their average snapshot size, and the batch
// counts the rows the tasks hold (one per changed customer here); the
// records applied end it once the tasks have spent its budget.
func TestFull(t *testing.T) {
	wall := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	later, past := time.Now().Add(time.Hour), time.Now().Add(-time.Millisecond)
	done, cancel := context.WithCancel(t.Context())
	cancel()
	// A task with 10 changed customers, whose snapshots average 100 B.
	eng := lapse.NewEngine(lapse.DefaultConfig(), 3, wall)
	for i := range 10 {
		ev := event.Event{Kind: event.KindOrder, CustomerID: "c" + strconv.Itoa(i), EventID: "o" + strconv.Itoa(i),
			OrderType: event.OrderPlaced, OrderID: "o" + strconv.Itoa(i), Amount: 10, Currency: "EUR", Items: 1, Time: wall.Add(-time.Hour).UnixMilli()}
		eng.Apply(nil, 0, &ev, wall)
	}
	if eng.Dirty() != 10 {
		t.Fatalf("Dirty() = %d after 10 new customers", eng.Dirty())
	}
	for _, c := range []struct {
		name      string
		ctx       context.Context
		failed    bool
		deadline  time.Time
		polled    int
		batchFull bool
		batchRows int
		applied   int // records the tasks applied, of a budget of 5
		cacheMax  int
		holdAll   bool // the forwarding barrier holds everything
		published bool // the task's frontier was published (else: never)
		want      string
	}{
		{name: "taking input", ctx: t.Context(), deadline: later, cacheMax: 1001, want: ""},
		{name: "no cache bound", ctx: t.Context(), deadline: later, want: ""},
		{name: "cache", ctx: t.Context(), deadline: later, cacheMax: 1000, want: "cache"},
		{name: "batch rows", ctx: t.Context(), deadline: later, batchFull: true, cacheMax: 1000, want: "batch_rows"},
		{name: "held rows below a batch", ctx: t.Context(), deadline: later, batchRows: 11, want: ""},
		{name: "held rows fill a batch", ctx: t.Context(), deadline: later, batchRows: 10, want: "batch_rows"},
		{name: "budget left", ctx: t.Context(), deadline: later, applied: 4, want: ""},
		{name: "budget spent", ctx: t.Context(), deadline: later, applied: 5, batchFull: true, want: "max_poll_records"},
		{name: "max poll records", ctx: t.Context(), deadline: later, polled: 50, batchFull: true, want: "max_poll_records"},
		{name: "barrier holds everything: reads on", ctx: t.Context(), deadline: later, polled: 50, holdAll: true, published: true, want: ""},
		{name: "barrier holds everything: interval", ctx: t.Context(), deadline: past, polled: 50, holdAll: true, published: true, want: "interval"},
		{name: "barrier holds everything: publish the frontier", ctx: t.Context(), deadline: later, holdAll: true, want: "barrier"},
		{name: "frontier unpublished, barrier open", ctx: t.Context(), deadline: later, want: ""},
		{name: "interval", ctx: t.Context(), deadline: past, polled: 50, want: "interval"},
		{name: "failed", ctx: t.Context(), failed: true, deadline: past, want: "failed"},
		{name: "shutdown", ctx: done, failed: true, deadline: past, want: "shutdown"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := truthRunner(&fullSink{full: c.batchFull, rows: c.batchRows}, wall)
			r.cfg.MaxPollRecords, r.cfg.CacheMaxBytes = 50, c.cacheMax
			tk := &task{eng: eng, snapBytes: 500, snaps: 5} // its inputs read to their end: frontier known
			if c.published {
				tk.published = &progress{frontier: tk.frontier()}
			}
			r.tasks = map[int32]*task{0: tk}
			if c.holdAll {
				r.barrier = barrier{active: true, until: math.MinInt64}
			}
			if c.applied > 0 {
				r.budget.Store(5)
				r.budgeted = true
				for range c.applied {
					r.spend()
				}
			}
			if c.failed {
				r.fail(context.Canceled)
			}
			if got := r.full(c.ctx, c.polled, c.deadline); got != c.want {
				t.Errorf("full() = %q, want %q", got, c.want)
			}
		})
	}
}

// TestRetakeBarrier: a barrier that holds everything is taken again as
// soon as the board lets something through (the tasks' frontiers have been
// read), and a barrier that lets anything through stays for the
// transaction.
func TestRetakeBarrier(t *testing.T) {
	r := truthRunner(nil, time.Now())
	r.board, r.nparts = newBoard(), 2
	holds := barrier{active: true, until: math.MinInt64}
	r.barrier = holds
	r.board.set(0, progress{frontier: 100})
	r.retakeBarrier(t.Context())
	if r.barrier != holds {
		t.Fatalf("one task of two published: barrier %+v, want it to hold everything still", r.barrier)
	}
	r.board.set(1, progress{frontier: 200})
	r.retakeBarrier(t.Context())
	if want := (barrier{until: math.MaxInt64}); r.barrier != want {
		t.Fatalf("both published, none forwards: barrier %+v, want %+v", r.barrier, want)
	}
	open := barrier{active: true, until: 50}
	r.barrier = open
	r.board.set(1, progress{frontier: math.MinInt64}) // a task restored since
	r.retakeBarrier(t.Context())
	if r.barrier != open {
		t.Fatalf("barrier %+v changed within the transaction, want %+v", r.barrier, open)
	}
}
