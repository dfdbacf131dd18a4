package consume

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/lapse"
	"github.com/winback/winback/pipeline/window"
	"github.com/winback/winback/sinks/kafka"
)

func TestProgressRecord(t *testing.T) {
	for _, g := range []progress{{wm: math.MinInt64}, {wm: 0, caughtUp: true}, {wm: 1765000000000}, {wm: -5, caughtUp: true}} {
		got, err := parseProgress(g.appendBinary(nil))
		if err != nil || got != g {
			t.Errorf("round trip of %+v: %+v, %v", g, got, err)
		}
	}
	for _, bad := range [][]byte{nil, {1}, {2, 0, 0}, {1, 0x80}, {1, 2, 7}, {1, 2, 0, 0}} {
		if _, err := parseProgress(bad); err == nil {
			t.Errorf("parseProgress(%v) accepted corrupt input", bad)
		}
	}
	for _, p := range []int32{0, 1, 4095} {
		if got, ok := parseProgressKey(progressKey(p)); !ok || got != p {
			t.Errorf("key of task %d: %d, %v", p, got, ok)
		}
	}
	if _, ok := parseProgressKey([]byte("\x00meta")); ok {
		t.Error("a foreign key parsed as a task")
	}
	// The floor has a record of its own, whose key a release that reads
	// only task keys does not take for one.
	for _, p := range []int32{0, 1, 4095} {
		if _, ok := parseProgressKey(floorKey(p)); ok {
			t.Errorf("floor key of task %d parses as a task key", p)
		}
		if got, ok := parseFloorKey(floorKey(p)); !ok || got != p {
			t.Errorf("floor key of task %d: %d, %v", p, got, ok)
		}
		if _, ok := parseFloorKey(progressKey(p)); ok {
			t.Errorf("task key of %d parses as a floor key", p)
		}
	}
	for _, f := range []int64{math.MinInt64, -1, 0, 1765000000000, math.MaxInt64} {
		if got, err := parseFloor(appendFloor(nil, f)); err != nil || got != f {
			t.Errorf("floor %d round trip: %d, %v", f, got, err)
		}
	}
	for _, bad := range [][]byte{nil, {1}, {2, 0}, {1, 0x80}, {1, 2, 0}} {
		if _, err := parseFloor(bad); err == nil {
			t.Errorf("parseFloor(%v) accepted corrupt input", bad)
		}
	}
}

func TestPipelineTime(t *testing.T) {
	const none = math.MinInt64
	done := func(wm int64) progress { return progress{wm: wm, caughtUp: true, floor: none} }
	for _, c := range []struct {
		name  string
		tasks map[int32]progress
		want  int64
		ok    bool
	}{
		{"nothing yet", nil, 0, false},
		{"no watermark anywhere", map[int32]progress{0: done(none)}, 0, false},
		{"the most advanced task", map[int32]progress{0: done(100), 1: done(300)}, 300, true},
		// A task still reading may deliver older events: it holds the
		// rest back, to its watermark or its floor, whichever is less.
		{"held back by a task with input left", map[int32]progress{0: done(100), 1: done(300), 2: {wm: 150, floor: none}}, 150, true},
		{"held back to its floor, below its watermark", map[int32]progress{0: done(300), 1: {wm: 250, floor: 120}}, 120, true},
		{"held back to its watermark, below its floor", map[int32]progress{0: done(300), 1: {wm: 250, floor: 280}}, 250, true},
		{"a forwarder: a floor and no watermark", map[int32]progress{0: done(300), 1: {wm: none, floor: 200}}, 200, true},
		{"a caught-up task without a watermark holds nothing", map[int32]progress{0: done(300), 1: done(none)}, 300, true},
		// Input of no known age: nothing may be followed.
		{"input left, neither watermark nor floor", map[int32]progress{0: done(300), 1: {wm: none, floor: none}}, 0, false},
	} {
		got, ok := pipelineTime(c.tasks)
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("%s: pipelineTime = %d, %v; want %d, %v", c.name, got, ok, c.want, c.ok)
		}
	}

	b := newBoard()
	b.set(0, progress{wm: 500, caughtUp: true})
	b.set(1, progress{wm: 400})
	b.setFloor(1, 350)
	snap := b.snapshot()
	if snap[0].floor != none || snap[1].floor != 350 {
		t.Errorf("snapshot floors %d, %d; want none (never published) and 350", snap[0].floor, snap[1].floor)
	}
	b.forget(1)
	if snap := b.snapshot(); len(snap) != 1 {
		t.Errorf("a forgotten task is still on the board: %+v", snap)
	}
	b.set(1, progress{wm: 400})
	if snap := b.snapshot(); snap[1].floor != none {
		t.Errorf("a forgotten task's floor came back: %d", snap[1].floor)
	}
}

// TestPublish: a task writes its progress record and its floor record
// each only when what it carries changed.
func TestPublish(t *testing.T) {
	wall := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	tk := truthRunner(nopSink{}, wall).newTask(1, inputPositions{})
	for i := range tk.src {
		tk.src[i].hwm, tk.src[i].next = 0, 0 // read to the end
	}
	for _, c := range []struct {
		name   string
		change func()
		want   []string
	}{
		{"the first", func() {}, []string{taskPrefix, floorPrefix}},
		{"nothing changed", func() {}, nil},
		{"the floor changed", func() { tk.src[0].maxTime, tk.src[0].lastEvent = wall.UnixMilli(), wall }, []string{floorPrefix}},
		{"the rest changed", func() { tk.forwarded = true }, []string{taskPrefix}},
		{"both changed", func() { tk.forwarded, tk.src[0].maxTime = false, tk.src[0].maxTime+1 }, []string{taskPrefix, floorPrefix}},
	} {
		c.change()
		tk.publish()
		var got []string
		for _, rec := range tk.out.recs {
			if rec.Topic == "pr" {
				got = append(got, string(rec.Key[:len(rec.Key)-4]))
			}
		}
		tk.out.recs = nil
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: published %q, want %q", c.name, got, c.want)
		}
	}
}

// nopSink and idTriggers stand in for ClickHouse and the trigger
// encoding; follow's tests read what the task produced.
type nopSink struct{}

func (nopSink) Add(*event.Rows)                         {}
func (nopSink) Erase(context.Context, []string) error   { return nil }
func (nopSink) NeedsFlush(int) bool                     { return false }
func (nopSink) StartFlush(context.Context) <-chan error { return nil }
func (nopSink) Discard()                                {}

type idTriggers struct{}

func (idTriggers) Encode(dst []byte, t *event.Trigger) ([]byte, error) {
	return append(dst, t.TriggerID...), nil
}

// testOutputs makes trigger records on topic "t" whose value is the
// trigger id, and dead letters on "dlq".
var testOutputs = &kafka.Output{Triggers: "t", DLQ: "dlq", Encoder: idTriggers{}}

// TestFollow: a quiet task follows the pipeline's event time only when it
// is caught up and idle, never past wall clock + skew, and a wall clock
// that runs on without input (an outage) fires nothing new.
func TestFollow(t *testing.T) {
	day := 24 * time.Hour
	t0 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	wall := t0.Add(120 * day)
	cfg := lapse.DefaultConfig()
	newRunner := func() *Runner {
		return &Runner{env: &env{cfg: Config{Lapse: cfg, MaxFutureSkew: 5 * time.Minute, Topics: Topics{State: "st", Progress: "pr"}},
			dep: Deps{Sink: nopSink{}, Outputs: testOutputs}, m: newMetrics(nil), now: func() time.Time { return wall }}}
	}
	// A weekly buyer whose eight orders end on day 49: lapse due within
	// weeks after that.
	newTask := func(r *Runner) *task {
		tk := &task{env: r.env, p: 0, eng: lapse.NewEngine(cfg, 3, wall.Add(-time.Hour))}
		for i := range 8 {
			ev := event.Event{Kind: event.KindOrder, EventID: string(rune('a' + i)), CustomerID: "quiet", Time: t0.Add(time.Duration(7*i) * day).UnixMilli(),
				OrderType: event.OrderPlaced, OrderID: string(rune('a' + i)), Amount: 20, Currency: "EUR", Items: 1}
			tk.eng.Apply(nil, lapse.SourceOrders, &ev, wall.Add(-time.Hour))
		}
		// The silent inputs stop holding the task's watermark back; it
		// stands at its last order (minus the allowed lateness).
		if trigs := tk.eng.Advance(nil, wall); len(trigs) != 0 {
			t.Fatalf("the task's own time fired %d triggers", len(trigs))
		}
		for i := range tk.src {
			tk.src[i] = queue(10, 10) // read to the last stable offset
		}
		tk.lastInput = wall.Add(-cfg.IdleTimeout - time.Second)
		return tk
	}
	lapses := func(tk *task) int {
		n := 0
		for _, rec := range tk.out.recs {
			if rec.Topic == "t" {
				n++
			}
		}
		return n
	}
	pipeline := t0.Add(110 * day).UnixMilli() // far past the lapse

	r := newRunner()
	tk := newTask(r)
	tk.follow(pipeline, true, wall)
	if lapses(tk) != 1 || !tk.followed || tk.eng.Watermark() != pipeline {
		t.Fatalf("caught up and idle: %d triggers, followed %v, watermark %d; want 1, true, %d", lapses(tk), tk.followed, tk.eng.Watermark(), pipeline)
	}
	// Nothing new while the pipeline's time stands still, however long the
	// wall clock runs (an outage of every input).
	for _, later := range []time.Duration{10 * time.Minute, 30 * day} {
		wall := wall.Add(later)
		r.now = func() time.Time { return wall }
		tk.follow(pipeline, true, wall)
		if lapses(tk) != 1 {
			t.Fatalf("after %v of silence: %d triggers, want still 1", later, lapses(tk))
		}
	}

	for _, c := range []struct {
		name string
		prep func(*task)
		g    int64
		ok   bool
	}{
		{"input within the idle timeout", func(tk *task) { tk.lastInput = wall.Add(-time.Second) }, pipeline, true},
		{"a queue not empty", func(tk *task) { tk.src[1] = queue(10, 10, t0.UnixMilli()) }, pipeline, true},
		{"behind the last stable offset", func(tk *task) { tk.src[2] = queue(4, 10) }, pipeline, true},
		{"no pipeline time", func(*task) {}, 0, false},
		{"pipeline time behind the task", func(*task) {}, t0.UnixMilli(), true},
	} {
		r := newRunner()
		tk := newTask(r)
		c.prep(tk)
		before := tk.eng.Watermark()
		tk.follow(c.g, c.ok, wall)
		if lapses(tk) != 0 || tk.followed || tk.eng.Watermark() != before {
			t.Errorf("%s: followed (%d triggers, watermark %d → %d)", c.name, lapses(tk), before, tk.eng.Watermark())
		}
	}

	// A pipeline time in the future (a producer's clock) is cut to wall
	// clock + skew.
	r = newRunner()
	tk = newTask(r)
	tk.follow(wall.Add(30*day).UnixMilli(), true, wall)
	if want := wall.Add(r.cfg.MaxFutureSkew).UnixMilli(); tk.eng.Watermark() != want {
		t.Errorf("watermark %d after following a future time, want wall + skew %d", tk.eng.Watermark(), want)
	}
}

func TestBarrier(t *testing.T) {
	const inf, none = math.MaxInt64, math.MinInt64
	f := func(name string, n int, tasks map[int32]progress, want barrier) {
		t.Helper()
		b := newBoard()
		for p, g := range tasks {
			b.set(p, g)
		}
		if got := b.barrier(n); got != want {
			t.Errorf("%s: barrier %+v, want %+v", name, got, want)
		}
	}
	f("nobody published", 2, nil, barrier{active: true, until: none})
	f("one of two published", 2, map[int32]progress{0: {frontier: inf, forwarded: true}}, barrier{active: true, until: none})
	f("everyone read everything: the forwards are still to be read", 2, map[int32]progress{0: {frontier: inf, forwarded: true}, 1: {frontier: inf}}, barrier{active: true, until: inf})
	f("everyone read everything, nobody forwards", 2, map[int32]progress{0: {frontier: inf}, 1: {frontier: inf}}, barrier{until: inf})
	f("the slowest fetch position", 3, map[int32]progress{0: {frontier: 500}, 1: {frontier: inf, forwarded: true}, 2: {frontier: 300}}, barrier{active: true, until: 300})
	f("nobody forwards: no barrier", 3, map[int32]progress{0: {frontier: 500}, 1: {frontier: inf}, 2: {frontier: 300}}, barrier{until: inf})
	f("a task that has fetched nothing does not know yet", 2, map[int32]progress{0: {frontier: 500}, 1: {frontier: none}}, barrier{active: true, until: none})
	f("nor does one that forwarded and fetched nothing since", 2, map[int32]progress{0: {frontier: 500}, 1: {frontier: none, forwarded: true}}, barrier{active: true, until: none})
	f("a task of an earlier partition count is ignored", 2, map[int32]progress{0: {frontier: 9, forwarded: true}, 1: {frontier: inf}, 5: {frontier: 7}}, barrier{active: true, until: 9})
}

func TestForwardedRecord(t *testing.T) {
	for _, next := range [][srcRepartition]int64{{}, {1, 0, 99}, {1 << 40, 5, 0}} {
		got, err := parseForwarded(appendForwarded(nil, next))
		if err != nil || got != next {
			t.Errorf("round trip of %v: %v, %v", next, got, err)
		}
	}
	for _, bad := range [][]byte{nil, {2, 0, 0, 0}, {1, 0, 0}, {1, 0, 0, 0, 0}, {1, 1, 0, 0}} {
		if _, err := parseForwarded(bad); err == nil {
			t.Errorf("parseForwarded(%v) accepted corrupt input", bad)
		}
	}
}

// TestNoteDrained: an input that never delivered an event holds the
// task's event time back until it is read to its end, and the repartition
// source is too, with nothing pending behind the forwarding barrier; then
// the orders alone move it, with no idle timeout to wait for.
func TestNoteDrained(t *testing.T) {
	wall := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	cfg := lapse.DefaultConfig()
	order := event.Event{Kind: event.KindOrder, EventID: "o-1", CustomerID: "c", Time: wall.Add(-48 * time.Hour).UnixMilli(),
		OrderType: event.OrderPlaced, OrderID: "o-1", Amount: 20, Currency: "EUR", Items: 1}
	moved := order.Time - cfg.AllowedLateness.Milliseconds()
	for _, c := range []struct {
		name    string
		email   source // orders: read to the end; support: empty, read
		rep     source
		fwdWait int64
		b       barrier
		want    int64
	}{
		{"every other input read to its end", queue(0, 0), queue(5, 5), 0, barrier{}, moved},
		{"e-mail end unknown", queue(-1, -1), queue(5, 5), 0, barrier{}, window.NoWatermark},
		{"e-mail not read to its end", queue(0, 3), queue(5, 5), 0, barrier{}, window.NoWatermark},
		{"e-mail records queued", queue(3, 3, order.Time), queue(5, 5), 0, barrier{}, window.NoWatermark},
		{"repartition not read to its end", queue(0, 0), queue(2, 5), 0, barrier{}, window.NoWatermark},
		{"forwards pending behind the barrier", queue(0, 0), queue(5, 5), 7, barrier{active: true, until: order.Time}, window.NoWatermark},
		{"forwards read", queue(0, 0), queue(7, 7), 7, barrier{active: true, until: order.Time}, moved},
	} {
		t.Run(c.name, func(t *testing.T) {
			tk := &task{eng: lapse.NewEngine(cfg, 3, wall), fwdWait: c.fwdWait}
			tk.src[lapse.SourceOrders] = queue(1, 1)
			tk.src[lapse.SourceEmail] = c.email
			tk.src[lapse.SourceSupport] = queue(4, 4)
			tk.src[srcRepartition] = c.rep
			ev := order
			tk.eng.Apply(nil, lapse.SourceOrders, &ev, wall)
			tk.noteDrained(c.b)
			tk.eng.Advance(nil, wall.Add(time.Second)) // well inside the idle timeout
			if got := tk.eng.Watermark(); got != c.want {
				t.Fatalf("watermark %d, want %d", got, c.want)
			}
		})
	}
}
