package consume

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestFollowTime checks, against a real broker's offsets, what a quiet
// task of this instance may follow: the board's most advanced watermark,
// held back by a task of another instance with input past its committed
// offsets (to its watermark or floor; with neither, not at all), by
// records this instance forwarded in the open transaction, and by the
// forwarding barrier; and that a quiet task whose own input grew since
// its last fetch no longer counts as caught up.
func TestFollowTime(t *testing.T) {
	cl, adm := fakeKafka(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topics := Topics{Orders: "o", Email: "e", Support: "s", Repartition: "rp", State: "st", Progress: "pr"}
	if _, err := adm.CreateTopics(ctx, 3, 1, nil, "o", "e", "s", "rp"); err != nil {
		t.Fatal(err)
	}
	produce := func(topic string, p int32, n int) {
		t.Helper()
		for range n {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: p, Value: []byte("x")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	commit := func(topic string, p int32, at int64) {
		t.Helper()
		var os kadm.Offsets
		os.Add(kadm.Offset{Topic: topic, Partition: p, At: at, LeaderEpoch: -1})
		if err := adm.CommitAllOffsets(ctx, "g", os); err != nil {
			t.Fatal(err)
		}
	}

	wall := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	r := truthRunner(nil, wall)
	r.cfg.Topics, r.cfg.Group, r.adm, r.nparts = topics, "g", adm, 3
	r.board = newBoard()
	// Task 0 is this instance's: quiet, read to the end of empty inputs.
	tk := &task{env: r.env, p: 0, eng: r.newState(0).eng}
	for i, topic := range []string{"o", "e", "s", "rp"} {
		tk.src[i] = source{topic: topic, next: 0, hwm: 0, maxTime: math.MinInt64}
	}
	tk.lastInput = wall.Add(-r.cfg.Lapse.IdleTimeout)
	r.tasks = map[int32]*task{0: tk}
	// Tasks 1 and 2 are another instance's.
	r.board.set(1, progress{wm: 300, caughtUp: true})
	r.board.set(2, progress{wm: 200, caughtUp: true})
	r.board.setFloor(2, 150)

	check := func(name string, want int64, wantOK bool) {
		t.Helper()
		got, ok := r.followTime(ctx)
		if ok != wantOK || (ok && got != want) {
			t.Errorf("%s: followTime = %d, %v; want %d, %v", name, got, ok, want, wantOK)
		}
	}
	commit("o", 1, 0) // the group exists (kfake answers GROUP_ID_NOT_FOUND before)
	check("every input read", 300, true)
	// Task 2 has records it has not committed as applied: they may be
	// as old as its watermark.
	produce("e", 2, 2)
	check("task 2 has input left", 200, true)
	commit("e", 2, 2)
	check("task 2 applied it", 300, true)
	// A task whose input all goes to other tasks has no watermark: its
	// floor says how old its next records may be.
	r.board.set(2, progress{wm: math.MinInt64, caughtUp: true})
	produce("o", 2, 1)
	check("a forwarder has input left", 150, true)
	commit("o", 2, 1)
	// Records on a partition whose task published nothing: no age known.
	r.board.forget(2)
	produce("rp", 2, 1)
	check("input of a task with no progress", 0, false)
	commit("rp", 2, 1)
	check("that input applied", 300, true)
	r.board.setFloor(2, math.MinInt64)
	produce("s", 2, 1)
	check("input of a task with neither watermark nor floor", 0, false)
	commit("s", 2, 1)

	// Forwarded by this instance in the open transaction: not readable
	// by their task yet.
	r.cur.fwd.note(120)
	check("records forwarded in the open transaction", 119, true)
	r.cur.reset()
	r.barrier = barrier{active: true, until: 110}
	check("the forwarding barrier", 110, true)
	r.barrier = barrier{}

	// The quiet task's own input grew since it last fetched: it is not
	// caught up, holds the others back to its watermark and does not
	// follow.
	produce("o", 0, 3)
	check("this instance's task has input left, no watermark", 0, false)
	if tk.caughtUp() || tk.quiet(wall) {
		t.Error("the quiet task still counts as caught up after its input grew")
	}
	if got, ok := r.followTime(ctx); ok {
		t.Errorf("no task is quiet, yet followTime = %d", got)
	}
}

// TestFloor: a task's floor is what its watermark would be if it applied
// every valid record it read: the least newest event time of the inputs
// active within the idle timeout (of all, the greatest, when every one is
// idle), minus the allowed lateness; none before any event.
func TestFloor(t *testing.T) {
	wall := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	r := truthRunner(nil, wall)
	idle, late := r.cfg.Lapse.IdleTimeout, r.cfg.Lapse.AllowedLateness.Milliseconds()
	tk := &task{env: r.env}
	for i := range tk.src {
		tk.src[i].maxTime = math.MinInt64
	}
	if f := tk.floor(wall); f != math.MinInt64 {
		t.Fatalf("no event read: floor %d, want none", f)
	}
	set := func(i int, at int64, ago time.Duration) { tk.src[i].maxTime, tk.src[i].lastEvent = at, wall.Add(-ago) }
	set(0, 5000, time.Second)
	set(1, 3000, time.Second)
	set(srcRepartition, 100, time.Second) // forwarded to it: not its input's age
	if f, want := tk.floor(wall), 3000-late; f != want {
		t.Errorf("two active inputs: floor %d, want %d", f, want)
	}
	set(2, 1000, idle) // silent for the idle timeout: holds nothing
	if f, want := tk.floor(wall), 3000-late; f != want {
		t.Errorf("an idle input: floor %d, want %d", f, want)
	}
	set(0, 5000, 2*idle)
	set(1, 3000, 2*idle)
	if f, want := tk.floor(wall), 5000-late; f != want {
		t.Errorf("every input idle: floor %d, want the newest, %d", f, want)
	}
}
