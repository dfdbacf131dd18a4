package consume

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/pipeline/event"
)

// TestFollowTime checks, against a real broker's offsets, what a quiet
// task of this instance may follow: the board's most advanced watermark,
// held back by a task of another instance with input past its committed
// offsets (to its watermark or floor; with neither, not at all), by
// records this instance forwarded in the open transaction, and by the
// forwarding barrier; and that a quiet task whose own input grew since
// its last fetch, or has a transaction open on it, does not follow.
func TestFollowTime(t *testing.T) {
	cl, adm := fakeKafka(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topics := Topics{Orders: "o", Email: "e", Support: "s", Repartition: "rp", Erasures: "x", State: "st", Progress: "pr"}
	if _, err := adm.CreateTopics(ctx, 3, 1, nil, "o", "e", "s", "rp", "x"); err != nil {
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
	var logs bytes.Buffer
	r.log = slog.New(slog.NewTextHandler(&logs, nil))
	r.cfg.Topics, r.cfg.Group, r.adm, r.nparts = topics, "g", adm, 3
	r.board = newBoard()
	// Task 0 is this instance's: quiet, read to the end of empty inputs,
	// at event time 100.
	tk := &task{env: r.env, p: 0, eng: r.newState(0).eng}
	tk.eng.Follow(nil, 100, wall)
	for i, topic := range []string{"o", "e", "s", "rp", "x"} {
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
		got, may := r.followTime(ctx)
		if ok := may[0]; ok != wantOK || (ok && got != want) {
			t.Errorf("%s: followTime = %d, %v; want %d, %v", name, got, ok, want, wantOK)
		}
	}
	commit("o", 1, 0) // the group exists (kfake answers GROUP_ID_NOT_FOUND before)
	check("every input read", 300, true)
	// Task 2 has records it has not committed as applied: they may be
	// as old as its floor, below its watermark.
	produce("e", 2, 2)
	check("task 2 has input left", 150, true)
	commit("e", 2, 2)
	check("task 2 applied it", 300, true)
	// A board older than the offsets: what the task published when it
	// still had input does not hold anybody back once it applied it.
	r.board.set(2, progress{wm: 200})
	check("task 2 published before it applied its input", 300, true)
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
	check("input of a task with no progress, again", 0, false)
	if n := strings.Count(logs.String(), "quiet tasks wait to follow"); n != 1 || !strings.Contains(logs.String(), "partition=2") {
		t.Errorf("want one warning naming partition 2 for the task of unknown age, got %d:\n%s", n, logs.String())
	}
	r.cfg.StrictPartitioning = true
	check("the same, with nothing forwarded (strict)", 300, true)
	r.cfg.StrictPartitioning = false
	commit("rp", 2, 1)
	check("that input applied", 300, true)
	r.board.set(2, progress{wm: math.MinInt64, caughtUp: true})
	r.board.setFloor(2, math.MinInt64)
	produce("s", 2, 1)
	check("input of a task with neither watermark nor floor", 0, false)
	commit("s", 2, 1)

	// Forwarded by this instance in the open transaction: not readable
	// by their task yet.
	src := &kgo.Record{Topic: "o", Partition: 0, Value: []byte("x")}
	tk.forward(&queued{rec: src, ev: event.Event{CustomerID: "c", Time: 120}})
	if !tk.out.fwd.set || tk.out.fwd.at != 120 {
		t.Fatalf("forward noted %+v, want event time 120", tk.out.fwd)
	}
	r.cur.fwd.note(tk.out.fwd.at)
	tk.out = taskOut{}
	check("records forwarded in the open transaction", 119, true)
	r.cur.reset()
	r.barrier = barrier{active: true, until: 110}
	check("the forwarding barrier", 110, true)
	r.barrier = barrier{}

	// A transaction open on the quiet task's repartition partition (an
	// instance forwarding to it, or a commit whose markers are not all
	// written yet): records may be coming, so it does not follow.
	txn, err := kgo.NewClient(kgo.SeedBrokers(cl.OptValue(kgo.SeedBrokers).([]string)...), kgo.TransactionalID("fwd"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txn.ProduceSync(ctx, &kgo.Record{Topic: "rp", Partition: 0, Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	check("a transaction open on its input", 0, false)
	if err := txn.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	// An input that is not listed (its topic gone): nobody knows.
	tk.src[srcErasures] = source{topic: "no-such-topic", next: 0, hwm: 0}
	check("an input of its that cannot be listed", 0, false)
	tk.src[srcErasures] = source{topic: "x", next: 0, hwm: 0}
	check("the aborted transaction not read yet", 0, false)
	tk.src[srcRepartition].next = 2 // fetched: its marker, after the record it aborted
	check("the aborted transaction read", 300, true)

	// The quiet task's own input grew since it last fetched: it is not
	// caught up, and holds the others back to its watermark.
	produce("o", 0, 3)
	if got, may := r.followTime(ctx); may[0] {
		t.Errorf("the quiet task may follow to %d though its input grew", got)
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
