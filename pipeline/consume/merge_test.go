package consume

import (
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// queue builds a source holding events at the given event times, read up
// to next of a partition whose high watermark is hwm.
func queue(next, hwm int64, times ...int64) source {
	s := source{next: next, hwm: hwm, seen: time.Unix(0, 0)}
	for i, t := range times {
		q := s.add()
		q.off, q.ev.Time = int64(i), t
	}
	return s
}

// TestFIFO: a source's queue of decoded records (merge.Queue, whose own
// tests cover its chunks) stays first in, first out, and allocates
// nothing per record once a steady stream runs.
func TestFIFO(t *testing.T) {
	var f fifo
	next, want := int64(0), int64(0)
	round := func() {
		for range 1000 { // four chunks' worth in and out
			f.add().off = next
			next++
		}
		for range 1000 {
			if got := f.pop().off; got != want {
				t.Fatalf("popped %d, want %d", got, want)
			}
			want++
		}
	}
	round()
	// AllocsPerRun counts the whole process's mallocs, so a goroutine left
	// by another test of the package can add one now and then; a queue that
	// allocates does so in every round.
	noisy := 0
	for range 20 {
		if n := testing.AllocsPerRun(1, round); n != 0 {
			noisy++
		}
	}
	if noisy > 2 {
		t.Fatalf("%d of 20 rounds below the peak allocated, want none", noisy)
	}
	if f.len() != 0 || want != next {
		t.Fatalf("drained at %d of %d, len %d", want, next, f.len())
	}
}

func TestPick(t *testing.T) {
	now := time.Unix(0, 0)
	f := func(name string, src [3]source, want []int) {
		t.Helper()
		tk := &task{}
		copy(tk.src[:], src[:])
		tk.src[srcRepartition] = queue(0, 0) // nothing repartitioned
		var got []int
		for {
			i := tk.pick(now, barrier{})
			if i < 0 {
				break
			}
			tk.src[i].pop()
			got = append(got, i)
		}
		if len(got) != len(want) {
			t.Errorf("%s: picked %v, want %v", name, got, want)
			return
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: picked %v, want %v", name, got, want)
				return
			}
		}
	}
	// All caught up: lowest event time first, ties to the lower source.
	f("merge", [3]source{queue(3, 3, 10, 30, 50), queue(2, 2, 20, 30), queue(1, 1, 5)},
		[]int{2, 0, 1, 0, 1, 0})
	// An empty source behind its high watermark holds the others back.
	f("hold", [3]source{queue(2, 2, 10, 20), queue(4, 9), queue(0, 0)}, nil)
	// An empty source that has read everything does not.
	f("caught up", [3]source{queue(2, 2, 10, 20), queue(9, 9), queue(0, 0)}, []int{0, 0})
	// A non-empty source may run ahead until it empties, then holds back.
	f("until empty", [3]source{queue(1, 5, 10), queue(1, 1, 20), queue(0, 0)}, []int{0})
	// Bad input (no event time) leaves at once, in offset order.
	bad := queue(1, 1, 0)
	bad.peek().rec = &kgo.Record{}
	f("bad first", [3]source{queue(1, 1, 10), bad, queue(0, 0)}, []int{1, 0})
}

func TestMayHoldBackUnknownHighWatermark(t *testing.T) {
	s := source{next: -1, hwm: -1, seen: time.Unix(100, 0)}
	if !s.mayHoldBack(time.Unix(100, 0).Add(taskIdle / 2)) {
		t.Error("a source with an unknown position should hold back at first")
	}
	if s.mayHoldBack(time.Unix(100, 0).Add(taskIdle + time.Millisecond)) {
		t.Error("a source with an unknown position should stop holding back after taskIdle")
	}
}

func TestPartitionOfIsMurmur2(t *testing.T) {
	// The lookup API must place a customer where the producers' default
	// partitioner (franz-go's, Kafka's murmur2) put its records.
	k := Partitioner()
	for _, id := range []string{"c000001", "c000002", "customer-42"} {
		a, b := PartitionOf(id, 6), k.Of(id, 6)
		want := int32(kgo.StickyKeyPartitioner(nil).ForTopic("t").Partition(&kgo.Record{Key: []byte(id)}, 6))
		if a != want || b != want {
			t.Errorf("%s: PartitionOf %d, KeyPartitioner %d, franz-go %d", id, a, b, want)
		}
	}
	if k.Of("c", 0) != -1 {
		t.Error("no partitions must give -1")
	}
}

// TestCommitOffsets checks the rewrite of a transaction's offset commit:
// each input partition commits its first unapplied record as of the call,
// never more than the client would, and a partition without a task commits
// nothing.
func TestCommitOffsets(t *testing.T) {
	r := &Runner{env: &env{}, tasks: map[int32]*task{}}
	orders := queue(12, 20, 100, 200) // offsets 0 and 1 queued, unapplied
	orders.at(0).off, orders.at(1).off = 10, 11
	orders.topic = "orders"
	email := source{topic: "email", next: 7, hwm: 7} // everything fetched was applied
	support := source{topic: "support", next: -1, hwm: -1}
	r.tasks[0] = &task{p: 0, src: [nSources]source{orders, email, support, {topic: "repartition", next: -1, hwm: -1}}}
	r.tasks[1] = &task{p: 1, src: [nSources]source{{topic: "orders", next: 3}, {topic: "email", next: 9}, {topic: "support", next: 0}, {topic: "repartition", next: -1}}}

	rewrite := r.commitOffsets()
	// Processing ahead after the call changes nothing in the rewrite.
	r.tasks[0].src[0].pop()
	r.tasks[0].src[1].next = 50

	part := func(p int32, off int64) kmsg.TxnOffsetCommitRequestTopicPartition {
		pp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		pp.Partition, pp.Offset, pp.LeaderEpoch = p, off, 5
		return pp
	}
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.Topics = []kmsg.TxnOffsetCommitRequestTopic{
		{Topic: "orders", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{part(0, 30), part(1, 2), part(2, 40)}},
		{Topic: "email", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{part(0, 50)}},
		{Topic: "support", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{part(0, 4), part(7, 4)}},
	}
	if err := rewrite(req); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tp := range req.Topics {
		for _, pp := range tp.Partitions {
			got = append(got, fmt.Sprintf("%s/%d@%d epoch %d", tp.Topic, pp.Partition, pp.Offset, pp.LeaderEpoch))
		}
	}
	want := []string{
		"orders/0@10 epoch -1", // the queue's head
		"orders/1@2 epoch 5",   // the client's offset is lower: kept
		"email/0@7 epoch -1",   // empty queue: after the last record fetched, as of the call
	}
	// orders/2 and support/7 have no task, support/0 no position: dropped.
	if !slices.Equal(got, want) {
		t.Errorf("rewritten commit\n got %q\nwant %q", got, want)
	}
}

// TestPickBarrier: while the forwarding barrier is active, nothing after
// its time is applied, and nothing at all before the repartition source
// has read what was committed when it was taken; bad input still leaves.
func TestPickBarrier(t *testing.T) {
	now := time.Unix(0, 0)
	tk := &task{}
	tk.src[0], tk.src[1], tk.src[2] = queue(2, 2, 10, 20), queue(1, 1, 15), queue(0, 0)
	tk.src[srcRepartition] = queue(3, 3)
	tk.fwdWait = 3
	var got []int
	for i := tk.pick(now, barrier{active: true, until: 15}); i >= 0; i = tk.pick(now, barrier{active: true, until: 15}) {
		tk.src[i].pop()
		got = append(got, i)
	}
	if !slices.Equal(got, []int{0, 1}) {
		t.Errorf("picked %v up to 15, want [0 1]", got)
	}
	tk.fwdWait = 4 // a forward committed but not read yet
	if i := tk.pick(now, barrier{active: true, until: 100}); i >= 0 {
		t.Errorf("picked %d before the repartition source read what the barrier saw", i)
	}
	if i := tk.pick(now, barrier{until: 100}); i != 0 {
		t.Errorf("inactive barrier: picked %d, want 0", i)
	}
}

// TestDropLastAndSort: dropLast takes back the last add across chunk
// boundaries; byTime orders a queue by event time, bad input first, ties
// in arrival order.
func TestDropLastAndSort(t *testing.T) {
	var f fifo
	for i := range 300 {
		f.add().off = int64(i)
	}
	f.dropLast()
	for range 44 {
		f.dropLast()
	}
	if f.len() != 255 || f.at(254).off != 254 || f.minOffset() != 0 {
		t.Fatalf("after dropping: len %d, last %d", f.len(), f.at(f.len()-1).off)
	}
	f.add().off = 1000
	if f.len() != 256 || f.at(255).off != 1000 {
		t.Fatalf("add after dropLast: len %d, last %d", f.len(), f.at(255).off)
	}
	var g fifo
	for i, tm := range []int64{30, 10, 20, 10, 5} {
		q := g.add()
		q.off, q.ev.Time = int64(i), tm
	}
	g.add().rec = &kgo.Record{} // bad input: no time
	g.at(5).off = 5
	sort.Stable(byTime{&g})
	var offs []int64
	for g.len() > 0 {
		offs = append(offs, g.pop().off)
	}
	if want := []int64{5, 4, 1, 3, 2, 0}; !slices.Equal(offs, want) {
		t.Errorf("sorted offsets %v, want %v", offs, want)
	}
}

// TestNoteEnd: a fetch that brings e-mail records and none of the orders
// partition's, while the broker's answer shows the orders partition has
// records past the task's position, holds the e-mails back until the
// orders are read (KIP-695); an answer showing it caught up lets them go.
func TestNoteEnd(t *testing.T) {
	now := time.Unix(50, 0)
	r := &Runner{env: &env{
		cfg: Config{Topics: Topics{Orders: "orders", Email: "email-events", Support: "support-events", Repartition: "rep"}},
		now: func() time.Time { return now },
	}}
	for _, tc := range []struct {
		name string
		lso  int64
		want int // the source picked first: -1 none
	}{
		{"orders behind", 9, -1},
		{"orders caught up", 4, 1},
		{"not answered", -1, 1},
	} {
		tk := &task{}
		tk.src[0] = queue(4, 4)                // orders: read to the end last seen
		tk.src[1] = queue(3, 3, 100, 200, 300) // e-mails fetched now
		tk.src[2] = queue(0, 0)
		tk.src[srcRepartition] = queue(0, 0)
		if i := tk.pick(now, barrier{}); i != 1 {
			t.Fatalf("%s: before the answer, picked %d, want the e-mails", tc.name, i)
		}
		r.noteEnd(tk, kgo.FetchTopicPartition{Topic: "orders", FetchPartition: kgo.FetchPartition{Partition: 0, LastStableOffset: tc.lso}})
		if i := tk.pick(now, barrier{}); i != tc.want {
			t.Errorf("%s: picked %d, want %d", tc.name, i, tc.want)
		}
		if tc.want < 0 {
			// The orders arrive: they go first.
			o := &tk.src[0]
			for off := int64(4); off < 9; off++ {
				q := o.add()
				q.off, q.ev.Time = off, 50+off
			}
			o.next = 9
			if i := tk.pick(now, barrier{}); i != 0 {
				t.Errorf("%s: with the orders read, picked %d, want the orders", tc.name, i)
			}
		}
	}
	// A topic that is not an input changes nothing.
	tk := &task{}
	tk.src[1] = queue(3, 3, 100)
	r.noteEnd(tk, kgo.FetchTopicPartition{Topic: "other", FetchPartition: kgo.FetchPartition{LastStableOffset: 7}})
	if tk.src[0].hwm != 0 || tk.src[1].hwm != 3 {
		t.Errorf("a foreign topic moved an end offset: %d, %d", tk.src[0].hwm, tk.src[1].hwm)
	}
}

// TestPickAheadOfBarrier: an empty input that ran more than fwdHorizon
// past the active barrier (so it is paused, with records left to read)
// does not hold back the task's other inputs up to the barrier. It did,
// and when the barrier was the task's other input (its queue full and
// paused, waiting for the merge), the task could stop for good.
func TestPickAheadOfBarrier(t *testing.T) {
	now := time.Unix(0, 0)
	h := fwdHorizon.Milliseconds()
	for _, tc := range []struct {
		name    string
		maxTime int64 // the empty orders source's newest fetched event
		want    int
	}{
		{"ahead of the barrier: paused, does not hold back", 100 + h + 1, 1},
		{"within the horizon: holds back", 100 + h, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tk := &task{}
			tk.src[0] = queue(5, 9) // empty, 4 records left to read
			tk.src[0].maxTime = tc.maxTime
			tk.src[1], tk.src[2], tk.src[srcRepartition] = queue(3, 9, 50, 60), queue(0, 0), queue(0, 0)
			b := barrier{active: true, until: 100}
			if ahead := tk.src[0].ahead(b); ahead != (tc.want >= 0) {
				t.Fatalf("ahead = %v", ahead)
			}
			if i := tk.pick(now, b); i != tc.want {
				t.Errorf("picked %d, want %d", i, tc.want)
			}
		})
	}
	// The repartition source is never paused: while it has records left
	// to read it holds back, however far it reads.
	tk := &task{}
	tk.src[0], tk.src[1], tk.src[2] = queue(0, 0, 50), queue(0, 0), queue(0, 0)
	tk.src[srcRepartition] = queue(2, 9)
	tk.src[srcRepartition].maxTime = 100 + h + 1
	if i := tk.pick(now, barrier{active: true, until: 100}); i != -1 {
		t.Errorf("repartition source with records left: picked %d, want -1", i)
	}
}
