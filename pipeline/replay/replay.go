package replay

import (
	"context"
	"runtime"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/winback/winback/pipeline/btyd"
	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/lapse"
	"github.com/winback/winback/pipeline/merge"
)

// Result is what one task's replay produced.
type Result struct {
	Triggers []event.Trigger
	// Orders are the orders applied (PLACED, CANCELLED and REFUNDED; not
	// duplicates).
	Orders []*event.Event
	Stats  lapse.Stats
	Engine *lapse.Engine // nil: the task had no events
	// After are the PLACED orders at or after the replay's until, not
	// applied.
	After []*event.Event
}

// Replay applies the input's events through one lapse.Engine per task with
// cfg, the tasks in parallel, and returns each task's result (by task).
// Events at or after the event time until (Unix ms) are not applied;
// math.MaxInt64 replays everything. A model, if not nil, is handed to
// every engine first. The results do not depend on the parallelism, and
// an Input can be replayed again.
func (in *Input) Replay(ctx context.Context, cfg lapse.Config, until int64, model *btyd.Params) ([]Result, error) {
	start := time.UnixMilli(in.First)
	// Past the newest event applied by the idle timeout: every source is
	// idle, so each task's watermark reaches that event less the lateness.
	end := time.UnixMilli(min(in.Last, until-1)).Add(cfg.IdleTimeout + time.Second)
	results := make([]Result, len(in.tasks))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i := range in.tasks {
		if len(in.tasks[i].streams) == 0 {
			continue
		}
		g.Go(func() error {
			return in.tasks[i].replay(gctx, cfg, start, end, until, model, &results[i])
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return results, nil
}

// replay applies the task's events in merge order (each). Events at or
// after until are not applied (their placed orders go to out.After).
func (t *task) replay(ctx context.Context, cfg lapse.Config, start, end time.Time, until int64, model *btyd.Params, out *Result) error {
	eng := lapse.NewEngine(cfg, 3, start)
	if model != nil {
		eng.SetPurchaseModel(*model)
	}
	var trigs []event.Trigger
	var wall int64 = -1 << 63
	err := t.each(ctx, func(src int, ev *event.Event) {
		if ev.Time >= until {
			if ev.Kind == event.KindOrder && ev.OrderType == event.OrderPlaced {
				out.After = append(out.After, ev)
			}
			return
		}
		wall = max(wall, ev.Time) // the wall clock never goes back
		var dup bool
		trigs, dup, _ = eng.Apply(trigs, src, ev, time.UnixMilli(wall))
		if ev.Kind == event.KindOrder && !dup {
			out.Orders = append(out.Orders, ev)
		}
	})
	if err != nil {
		return err
	}
	out.Triggers = eng.Advance(trigs, end)
	out.Stats = eng.Stats()
	out.Engine = eng
	return nil
}

// each calls fn with the task's events in the pipeline's merge order
// (merge.Pick): the stream head with the smallest event time first, ties
// to the lower source and then the lower input partition, each stream in
// input order. Every stream is read to its end, so an empty one waits for
// nothing.
func (t *task) each(ctx context.Context, fn func(src int, ev *event.Event)) error {
	slices.SortFunc(t.streams, func(a, b *stream) int {
		if a.src != b.src {
			return a.src - b.src
		}
		return int(a.part) - int(b.part)
	})
	heads := make([]int, len(t.streams))
	lanes := make([]merge.Lane, len(t.streams))
	for n := 0; ; n++ {
		if n%65536 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		for i, s := range t.streams {
			lanes[i] = merge.Lane{Len: len(s.evs) - heads[i]}
			if lanes[i].Len > 0 {
				lanes[i].Head = merge.Key{Time: s.evs[heads[i]].Time, Rank: s.src}
			}
		}
		i := merge.Pick(lanes)
		if i < 0 {
			return nil
		}
		s := t.streams[i]
		heads[i]++
		fn(s.src, &s.evs[heads[i]-1])
	}
}
